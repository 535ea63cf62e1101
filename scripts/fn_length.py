#!/usr/bin/env python3
"""Lists the functions of src/server longer than LIMIT lines (default 120).

A function is `fn name` up to its closing brace at the same indentation.
Exit 1 when any is longer: a long match is a table of handlers waiting to
be split (STYLE.md).
"""
import os
import re
import sys

LIMIT = int(os.environ.get("FN_LIMIT", "120"))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src/server"
    long = []
    for directory, _, files in os.walk(root):
        for file in sorted(files):
            if not file.endswith(".rs"):
                continue
            path = os.path.join(directory, file)
            lines = open(path).read().splitlines()
            in_tests = False
            for i, line in enumerate(lines):
                if re.match(r"\s*mod tests\b", line):
                    in_tests = True
                match = re.match(r"(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)", line)
                if not match or in_tests:
                    continue
                indent = match.group(1)
                if line.rstrip().endswith(";"):
                    continue  # a declaration without a body
                for j in range(i, len(lines)):
                    if lines[j] == indent + "}":
                        break
                length = j - i + 1
                if length > LIMIT:
                    long.append((length, f"{path}:{i + 1}: fn {match.group(5)} is {length} lines"))
    for _, text in sorted(long, reverse=True):
        print(text)
    if long:
        print(f"{len(long)} function(s) over {LIMIT} lines")
        return 1
    print(f"no function in {root} is over {LIMIT} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
