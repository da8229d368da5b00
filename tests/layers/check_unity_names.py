#!/usr/bin/env python3
"""Internal names of a unity library defined in two of its files.

A unity build (cmake/pch.cmake, BRANCHDB_UNITY) compiles a library's .cc
files in batches, one translation unit each, so every file of a batch shares
one anonymous namespace and one file scope. Two files that each define the
same internal name (a type or variable in an anonymous namespace, a
function there with the same parameters, or a `static` one) then fail to
compile, but only when a batch happens to hold both: the batches move when a
file is added, and the test build (a compiler launcher turns unity off) never
sees it; CI's clean build does. This check finds every such pair whatever the
batches are.

Usage: check_unity_names.py ROOT
"""
import re
import sys

from sources import report, sources

# Libraries built with branchdb_unity_build (their CMakeLists.txt calls it).
UNITY_FOLDERS = ["server", "sdk/cli", "catalog", "auth", "cluster"]

_TOKEN = re.compile(
    r'R"(?P<delim>[^(\s]{0,16})\((?:.|\n)*?\)(?P=delim)"'  # raw string
    r'|"(?:\\.|[^"\\\n])*"'                                  # string
    r"|'(?:\\.|[^'\\\n])*'"                                  # character
    r"|//[^\n]*"                                             # line comment
    r"|/\*(?:.|\n)*?\*/"                                     # block comment
    r"|^\s*#[^\n]*(?:\\\n[^\n]*)*",                          # preprocessor line
    re.M)


def strip(text):
    """The code without comments, literals and preprocessor lines (a literal
    becomes "" so that its braces and semicolons do not count)."""
    return _TOKEN.sub(lambda m: '""' if m.group(0)[:1] in "R\"'" else " ", text)


_TYPE = re.compile(r"\b(?:struct|class|union|enum(?:\s+class)?)\s+(\w+)\s*(?:final\s*)?(?::[^{]*)?$")
_FUNC = re.compile(r"(\w+)\s*\(")


def declared(stmt, end):
    """(kind, key) of what a statement at namespace scope defines, or None.
    stmt: its text up to `end` ('{' opening a body, or ';')."""
    s = " ".join(stmt.split())
    s = re.sub(r"^template\s*<.*?>\s*", "", s)
    if end == "{":
        m = _TYPE.search(s)
        if m:
            return ("type", m.group(1))
        if re.search(r"^(namespace|extern)\b", s) or "=" in s.split("(")[0]:
            return var_name(s)
        m = _FUNC.search(strip_templates(s))
        if m and s.rstrip().endswith((")", "const", "noexcept", "override")) or (
                m and "->" in s):
            params = s[s.find("(", m.start(1)):]
            return ("function", m.group(1) + re.sub(r"\s+", "", params))
        return var_name(s)
    m = re.match(r"^using\s+(\w+)\s*=\s*(.*)$", s)
    if m:  # an alias may be repeated, with the same target only
        return ("alias", m.group(1) + "=" + re.sub(r"\s+", "", m.group(2)))
    if re.match(r"^(using|namespace)\b", s):
        return None  # a using-declaration or namespace alias may be repeated
    if "(" in strip_templates(s).split("=")[0]:
        return None  # a function declaration (its definition is what counts)
    if re.match(r"^(struct|class|union|enum)\b[^=]*$", s):
        return None  # a forward declaration
    return var_name(s)


def strip_templates(s):
    while True:
        t = re.sub(r"<[^<>]*>", "", s)
        if t == s:
            return t
        s = t


def var_name(s):
    head = strip_templates(re.split(r"[={]", s)[0]).strip()
    head = re.sub(r"\[[^\]]*\]$", "", head).strip()
    m = re.search(r"(\w+)$", head)
    return ("variable", m.group(1)) if m and len(head.split()) >= 2 else None


def internal_names(code):
    """Yields (kind, key) of every name code defines with internal linkage at
    namespace scope: directly in an anonymous namespace, or `static`."""
    scopes = ["file"]  # "file", "named", "anonymous", "other"
    stmt = ""
    for ch in code:
        if ch == "{":
            s = " ".join(stmt.split())
            m = re.search(r"\bnamespace\s*([\w:]*)\s*$", s)
            at_namespace = scopes[-1] in ("file", "named", "anonymous")
            if m:
                scopes.append("named" if m.group(1) else "anonymous")
            else:
                if at_namespace and (scopes[-1] == "anonymous" or re.match(r"^static\b", s)):
                    d = declared(re.sub(r"^static\s+", "", s), "{")
                    if d:
                        yield d
                scopes.append("other")
            stmt = ""
        elif ch == "}":
            scopes.pop()
            stmt = ""
        elif ch == ";":
            s = " ".join(stmt.split())
            if scopes[-1] in ("file", "named", "anonymous") and s and (
                    scopes[-1] == "anonymous" or re.match(r"^static\b", s)):
                d = declared(re.sub(r"^static\s+", "", s), ";")
                if d:
                    yield d
            stmt = ""
        else:
            stmt += ch


def main(root):
    seen = {}
    files = 0
    for folder in UNITY_FOLDERS:
        for rel, lines in sources(root, folder):
            if not rel.endswith(".cc"):
                continue
            files += 1
            for kind, key in set(internal_names(strip("\n".join(lines)))):
                seen.setdefault((folder, kind, key), []).append(rel)
    aliases = {}
    for (folder, kind, key), paths in seen.items():
        if kind == "alias":
            aliases.setdefault((folder, key.split("=")[0]), set()).update(paths)
    bad = [f"{kind} {key.split('(')[0]} defined in {' and '.join(paths)}: one unity batch "
           f"may hold both (rename one)"
           for (_, kind, key), paths in sorted(seen.items())
           if len(paths) > 1 and kind != "alias"]
    # An alias repeated with the same target is fine; with two targets it is not.
    bad += [f"alias {name} defined with different targets in {' and '.join(sorted(paths))}: "
            f"one unity batch may hold two (rename one)"
            for (folder, name), paths in sorted(aliases.items())
            if len({k for (f, kind, k) in seen if f == folder and kind == "alias"
                    and k.split("=")[0] == name}) > 1]
    # The unity libraries hold fewer files than the repository-wide floor.
    return report("unity names", root, files, bad, "internal names defined twice", min_files=20)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
