"""What tests/layers' checks share: the repository's C++ sources by folder,
and the report every check prints."""
import os


def sources(root, folder):
    """(path relative to root, list of lines) of each .h/.cc file under folder."""
    for dirpath, _, names in os.walk(os.path.join(root, folder)):
        for name in sorted(names):
            if name.endswith((".h", ".cc")):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    yield os.path.relpath(path, root), f.read().split("\n")


def report(check, root, files, bad, what, min_files=50):
    """Prints the offenders and a summary; the exit code (1 when any, or when
    fewer than min_files were read: root must be wrong)."""
    if files < min_files:
        print(f"{check}: only {files} files found under {root}: wrong root?")
        return 1
    for b in bad:
        print(b)
    print(f"{check}: {files} files, {len(bad)} {what}")
    return 1 if bad else 0
