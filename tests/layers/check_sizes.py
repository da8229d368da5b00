#!/usr/bin/env python3
"""The house's size rules (docs/architecture.md, STYLE.md): no production file
over 800 lines, and no production function over 80 lines unless the comment
just above it gives the reason, in a line that starts with "// Long: ".
Exits 1, naming each offender, when one is found.

A function here is a definition that starts at column 0 and ends at the next
line that is exactly "}" at column 0 (the house style's layout, clang-format'd);
lambdas count toward the function that holds them.

Registered with ctest as layers_sizes_test (tests/layers/CMakeLists.txt).
Run alone: python3 tests/layers/check_sizes.py
"""
import os
import re
import sys

from sources import report, sources

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
FOLDERS = ("base", "storage", "auth", "objstore", "catalog", "server", "sdk")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80
NOT_A_FUNCTION = re.compile(r"^(//|#|}|namespace\b|using\b|struct\b|class\b|enum\b|union\b|extern\b)")


def functions(lines):
    """(first line index, line count) of each column-0 function definition."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line or line[0].isspace() or NOT_A_FUNCTION.match(line):
            i += 1
            continue
        # The signature runs to the line ending in "{" (at most 8 lines on).
        j = i
        while j < len(lines) and j < i + 8 and not lines[j].rstrip().endswith(("{", ";")):
            j += 1
        head = " ".join(lines[i:j + 1])
        if (j < len(lines) and lines[j].rstrip().endswith("{") and "(" in head
                and "=" not in head.split("(", 1)[0]):
            k = j + 1
            while k < len(lines) and lines[k].rstrip() != "}":
                k += 1
            yield i, k - i + 1
            i = k + 1
        else:
            i += 1


def reason_given(lines, first):
    k = first - 1
    while k >= 0 and lines[k].startswith("//"):
        if lines[k].startswith("// Long: "):
            return True
        k -= 1
    return False


def main():
    bad, files = [], 0
    for folder in FOLDERS:
        for rel, lines in sources(ROOT, folder):
            files += 1
            if len(lines) > MAX_FILE_LINES:
                bad.append(f"{rel}: {len(lines)} lines (at most {MAX_FILE_LINES})")
            for first, count in functions(lines):
                if count > MAX_FUNCTION_LINES and not reason_given(lines, first):
                    bad.append(f"{rel}:{first + 1}: a function of {count} lines (at most "
                               f"{MAX_FUNCTION_LINES}, or a \"// Long: why\" comment above "
                               f"it): {lines[first].strip()[:70]}")
    return report("check_sizes", ROOT, files, bad, "over the size rules")

if __name__ == "__main__":
    sys.exit(main())
