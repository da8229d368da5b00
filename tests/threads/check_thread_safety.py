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
import time

FOLDERS = ("base", "storage", "catalog", "auth", "server", "sdk")
ANALYSIS = ["-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta",
            "-Werror=thread-safety", "-Werror=thread-safety-beta"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


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


def clang(clangxx, flags, source, cwd):
    r = subprocess.run([clangxx] + ANALYSIS + flags + [source], cwd=cwd,
                       capture_output=True, text=True)
    return r.returncode, r.stderr


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

    def one(rel):
        e = units[rel]
        return rel, clang(clangxx, analysis_flags(e.get("command") or shlex.join(e["arguments"])),
                          os.path.join(root, rel), e["directory"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for rel, (rc, err) in pool.map(one, sorted(units)):
            if rc != 0:
                bad.append(f"{rel}:\n{err}")
    for b in bad:
        print(b)
    print(f"thread-safety: {len(units)} files, {len(bad)} failing, "
          f"{time.monotonic() - start:.1f} s with {jobs} jobs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
