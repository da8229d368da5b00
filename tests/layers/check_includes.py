#!/usr/bin/env python3
"""Every folder includes only its own headers and those of the layers below it
(docs/architecture.md). Exits 1, naming each offending line, when one does not.

  base/     <- storage/ (and storage/vfs/) <- catalog/ <- server/
  base/     <- auth/                                    <- server/
  base/     <- objstore/ (the S3 client)                <- server/
  base/     <- cluster/ (etcd, membership, ownership)   <- server/
  sdk/      includes no branchdb folder but its own (it talks HTTP only)
  server/main.cc, the binary, may also include sdk/cli/ (the CLI it runs).
tests/ and bench/ may include anything.
"""
import os
import re
import sys

from sources import report, sources

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))

# folder -> the top-level folders its sources may include from.
ALLOWED = {
    "base": {"base"},
    "storage": {"base", "storage"},
    "auth": {"base", "auth"},
    "objstore": {"base", "objstore"},
    "catalog": {"base", "storage", "catalog"},
    "cluster": {"base", "cluster"},
    "server": {"base", "storage", "auth", "catalog", "objstore", "cluster", "server"},
    "sdk": {"sdk"},
}
EXCEPTIONS = {"server/main.cc": {"sdk"}}
FOLDERS = set(ALLOWED) | {"tests", "bench"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    bad, files = [], 0
    for layer, allowed in ALLOWED.items():
        for rel, lines in sources(ROOT, layer):
            ok = allowed | EXCEPTIONS.get(rel, set())
            for lineno, line in enumerate(lines, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                top = m.group(1).split("/", 1)[0]
                if top in FOLDERS and top not in ok:
                    bad.append(f"{rel}:{lineno}: {layer}/ includes {m.group(1)}, "
                               f"from a layer it may not use ({', '.join(sorted(ok))})")
            files += 1
    return report("check_includes", ROOT, files, bad, "includes across layers")

if __name__ == "__main__":
    sys.exit(main())
