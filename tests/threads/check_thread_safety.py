"""Clang's thread-safety analysis over the production code.

Every production .cc file (base/ storage/ catalog/ auth/ server/ sdk/) that
includes base/mutex.h, directly or through the repository's own headers, is
compiled by clang++ -fsyntax-only with -Wthread-safety -Wthread-safety-beta
as errors, using that file's defines, include paths and language standard
from the build's compile_commands.json (the build's other flags are g++'s:
warnings, sanitizers and optimisation do not matter to the analysis). Then
two fixtures prove the check bites: clang must reject a read of a
GUARDED_BY member without its lock, and a lock order that contradicts an
ACQUIRED_AFTER.

Most of a file's time in clang's front end is parsing the same third-party
and standard headers (httplib, nlohmann/json, spdlog: 4-8 s a server file).
So the files that share their flags share one clang precompiled header of
the heavy headers they include (the build's own precompiled header is g++'s,
which clang refuses); a file that does not analyse cleanly with it is
analysed again without it, and only that answer counts.

usage: check_thread_safety.py <repository root> <build dir> [jobs]
Exit code 0 when every file passes and both fixtures are rejected."""
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

FOLDERS = ("base", "storage", "catalog", "auth", "server", "sdk")
ANALYSIS = ["-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta",
            "-Werror=thread-safety", "-Werror=thread-safety-beta"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SYSTEM_INCLUDE = re.compile(r'^\s*#\s*include\s+<([^>]+)>', re.M)
# What a shared precompiled header may hold: the standard headers most files
# use, and the heavy third-party ones a file of the group includes (directly
# or through the repository's headers), in this order.
PCH_STANDARD = ["algorithm", "atomic", "chrono", "cstdint", "cstdio", "cstring",
                "functional", "map", "memory", "optional", "set", "string",
                "string_view", "utility", "vector"]
PCH_HEAVY = ["sqlite3.h", "nlohmann/json.hpp", "spdlog/spdlog.h", "httplib.h",
             "toml++/toml.h", "CLI/CLI.hpp"]
PCH_MIN_FILES = 4  # fewer files than this do not repay the header's build


def includes_mutex(root, path, memo):
    """Whether path (relative to root) includes base/mutex.h, transitively
    through headers of the repository (includes are rooted at root)."""
    if path in memo:
        return memo[path]
    memo[path] = False  # include cycles end here
    try:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    for inc in INCLUDE.findall(text):
        if inc == "base/mutex.h" or includes_mutex(root, inc, memo):
            memo[path] = True
            break
    return memo[path]


def system_includes(root, path, memo):
    """The <...> headers path (relative to root) includes, directly or
    through headers of the repository."""
    if path in memo:
        return memo[path]
    memo[path] = set()  # include cycles end here
    try:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return memo[path]
    found = set(SYSTEM_INCLUDE.findall(text))
    for inc in INCLUDE.findall(text):
        found |= system_includes(root, inc, memo)
    memo[path] = found
    return found


def sources_of(root, entry):
    """The repository files (relative to root) an entry of
    compile_commands.json compiles: its file, or the files a unity build's
    batch (CMake's Unity/unity_N_cxx.cxx, BRANCHDB_UNITY) includes, each
    analysed alone with the batch's flags."""
    path = os.path.abspath(os.path.join(entry["directory"], entry["file"]))
    if os.sep + "Unity" + os.sep not in path:
        return [os.path.relpath(path, root)]
    with open(path, encoding="utf-8", errors="replace") as f:
        return [os.path.relpath(inc, root) for inc in
                re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M)]


def analysis_flags(command):
    """The flags of a compile command that matter to clang's front end."""
    args = shlex.split(command)
    keep, i = [], 1
    while i < len(args):
        a = args[i]
        if a in ("-I", "-isystem", "-iquote", "-D", "-include"):
            # Not the build's precompiled header (CMake's cmake_pch.hxx, whose
            # .gch is g++'s, which clang refuses): each file includes what it uses.
            if not (a == "-include" and args[i + 1].endswith("cmake_pch.hxx")):
                keep += [a, args[i + 1]]
            i += 2
            continue
        if a.startswith(("-I", "-isystem", "-iquote", "-D", "-std=")):
            keep.append(a)
        i += 1
    return keep


def clang(clangxx, flags, source, cwd, pch=None):
    extra = ["-include-pch", pch] if pch else []
    r = subprocess.run([clangxx] + ANALYSIS + flags + extra + [source], cwd=cwd,
                       capture_output=True, text=True)
    return r.returncode, r.stderr


def build_pch(clangxx, flags, cwd, headers, out):
    """Precompiles headers with flags into out; its path, or None when clang
    refuses (the group is then analysed without one)."""
    header = out[:-len(".pch")]
    with open(header, "w", encoding="utf-8") as f:
        f.write("".join(f"#include <{h}>\n" for h in headers))
    r = subprocess.run([clangxx, "-x", "c++-header"] + flags + [header, "-o", out],
                       cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"thread-safety: no precompiled header for {len(headers)} headers "
              f"(clang exit {r.returncode}), analysing without:\n{r.stderr[:2000]}")
        return None
    return out


def group_pchs(clangxx, root, units, workdir, jobs):
    """Per set of flags shared by at least PCH_MIN_FILES files, a
    precompiled header of the standard headers and of the heavy headers
    those files include: {flags tuple: path or None}."""
    memo, groups = {}, {}
    for rel, (flags, _) in units.items():
        groups.setdefault(tuple(flags), []).append(rel)
    todo = []
    for n, (flags, rels) in enumerate(sorted(groups.items())):
        if len(rels) < PCH_MIN_FILES:
            continue
        used = set().union(*(system_includes(root, rel, memo) for rel in rels))
        headers = PCH_STANDARD + [h for h in PCH_HEAVY if h in used]
        cwd = units[rels[0]][1]
        todo.append((flags, headers, cwd, os.path.join(workdir, f"group{n}.h.pch")))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        built = pool.map(lambda t: build_pch(clangxx, list(t[0]), t[2], t[1], t[3]), todo)
        return {t[0]: path for t, path in zip(todo, built)}


def check_fixtures(clangxx, root):
    """Each fixture must be rejected with its thread-safety error."""
    here = os.path.dirname(os.path.abspath(__file__))
    flags = ["-std=c++20", "-I" + root]
    bad = []
    for name, expect in (("fixture_unguarded_read.cc", "requires holding mutex"),
                         ("fixture_lock_order.cc", "must be acquired before")):
        rc, err = clang(clangxx, flags, os.path.join(here, name), here)
        if rc == 0 or expect not in err:
            bad.append(f"{name}: clang did not reject it with '{expect}' "
                       f"(exit {rc}):\n{err}")
    return bad


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    root, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    clangxx = shutil.which("clang++")
    if clangxx is None:
        print("thread-safety: clang++ not found: it is a build dependency "
              "(scripts/install-deps.sh installs Debian's clang)")
        return 1
    db_path = os.path.join(build, "compile_commands.json")
    try:
        with open(db_path, encoding="utf-8") as f:
            db = json.load(f)
    except OSError as e:
        print(f"thread-safety: cannot read {db_path} ({e}): configure the build "
              "with CMAKE_EXPORT_COMPILE_COMMANDS (the top CMakeLists.txt sets it)")
        return 1

    memo, units = {}, {}
    for entry in db:
        for rel in sources_of(root, entry):
            if (rel.endswith(".cc") and rel.split(os.sep)[0] in FOLDERS
                    and includes_mutex(root, rel, memo)):
                units.setdefault(rel, entry)  # one command per file is enough
    if len(units) < 20:
        print(f"thread-safety: only {len(units)} files include base/mutex.h: "
              f"wrong root ({root}) or build dir ({build})?")
        return 1

    start = time.monotonic()
    bad = check_fixtures(clangxx, root)
    units = {rel: (analysis_flags(e.get("command") or shlex.join(e["arguments"])),
                   e["directory"]) for rel, e in units.items()}
    with tempfile.TemporaryDirectory(prefix="thread-safety-") as workdir:
        pchs = group_pchs(clangxx, root, units, workdir, jobs)

        def one(rel):
            flags, cwd = units[rel]
            pch = pchs.get(tuple(flags))
            rc, err = clang(clangxx, flags, os.path.join(root, rel), cwd, pch)
            if rc != 0 and pch:
                rc, err = clang(clangxx, flags, os.path.join(root, rel), cwd)
            return rel, (rc, err)

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for rel, (rc, err) in pool.map(one, sorted(units)):
                if rc != 0:
                    bad.append(f"{rel}:\n{err}")
    for b in bad:
        print(b)
    shared = sum(1 for flags, _ in units.values() if pchs.get(tuple(flags)))
    print(f"thread-safety: {len(units)} files ({shared} with a shared precompiled "
          f"header), {len(bad)} failing, {time.monotonic() - start:.1f} s with {jobs} jobs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
