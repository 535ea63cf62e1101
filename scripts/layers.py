#!/usr/bin/env python3
"""Checks that src/server's modules import downward only.

Every module of src/server is in one layer of LAYERS (bottom first); a
module may name modules of lower layers, and of its own layer only inside
its own directory (the files of `commands/` name each other). An upward or
sideways import fails the check, with the line that made it.

A module is a file (`route/send.rs` is `route`'s, and `route/mod.rs` is
`route`); what it names is read from `use super::…`, `crate::server::…` and
`super::x::` paths in its code (comments excluded).

Usage: scripts/layers.py [SRC_SERVER_DIR]   (exit 1 on an upward import)
"""
import os
import re
import sys

# Bottom first. Same line: one layer (may not name each other unless in one
# directory). Keep ARCHITECTURE (docs/ARCHITECTURE.md) in step.
LAYERS = [
    ["limits", "deadlines", "config", "hook_events", "pending", "replay", "transport", "quality"],
    ["player_limits"],
    ["metrics", "web"],
    ["keepalive", "peers"],
    ["session"],
    ["coalesce"],
    ["route"],
    ["directory"],
    ["users", "matchmaking"],
    ["presence"],
    ["state"],
    ["grace", "tickets"],
    ["commands"],
    ["api"],
    ["hooks"],
    ["connection", "nodes"],
    ["exposition", "devhttp"],
    ["admin"],
    ["mod", "hub_tests", "bench_support"],
]

LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_of(path, root):
    rel = os.path.relpath(path, root)
    parts = rel[:-3].split(os.sep)
    return "mod" if parts == ["mod"] else parts[0]


def strip_comments(text):
    """The code, with comments gone but the paths of intra-doc links
    (`[`super::x::Y`]`) kept: a link up the layers is a name up them."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        code, _, comment = line.partition("//")
        links = re.findall(r"\[`([A-Za-z_:]+)[^`]*`\]", comment)
        lines.append(" ".join([code] + links))
    return "\n".join(lines)


def names_in(text, in_subdir, items=False):
    """(line number, name) for every server module a file names (with
    `items`, also every other name: types and functions of mod.rs)."""
    name = r"([A-Za-z_][A-Za-z0-9_]*)" if items else r"([a-z_]+)"
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in re.finditer(r"crate::server::\{?" + name, line):
            found.append((number, match.group(1)))
        # `super::` from a subdirectory's file names its own directory's
        # siblings; from a top file, server modules.
        prefix = r"super::super::" if in_subdir else r"(?<!super::)super::"
        for match in re.finditer(prefix + name, line):
            found.append((number, match.group(1)))
        for match in re.finditer(prefix + r"\{([^}]*)\}", line):
            for item in match.group(1).split(","):
                item = item.strip().split("::")[0]
                if re.fullmatch(name, item or ""):
                    found.append((number, item))
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src/server"
    problems = []
    for directory, _, files in os.walk(root):
        for file in sorted(files):
            if not file.endswith(".rs"):
                continue
            path = os.path.join(directory, file)
            module = module_of(path, root)
            # In `x/y.rs`, `super::` is `x`; in `x/mod.rs` it is the server.
            in_subdir = os.path.dirname(os.path.relpath(path, root)) != "" and file != "mod.rs"
            if module not in LAYER_OF:
                problems.append(f"{path}: module {module!r} is in no layer of scripts/layers.py")
                continue
            with open(path) as f:
                text = strip_comments(f.read())
            # A file's own `mod tests` is the file's: its `super::` is the
            # file's module, not the server.
            text = re.split(r"(?m)^\s*mod tests\s*\{", text)[0]
            # `mod x;` declarations in mod.rs are not imports.
            for number, named in names_in(text, in_subdir):
                if named in ("self", "super") or named == module:
                    continue
                if named not in LAYER_OF:
                    continue  # an item of mod.rs (a type), checked below
                if LAYER_OF[named] >= LAYER_OF[module]:
                    problems.append(
                        f"{path}:{number}: {module} (layer {LAYER_OF[module]}) names "
                        f"{named} (layer {LAYER_OF[named]}): imports must point down"
                    )
            # Anything else named through `super::` / `crate::server::`
            # is an item of the top module (mod.rs: a type, a function):
            # upward from everywhere but mod.rs itself.
            if module != "mod":
                for number, named in names_in(text, in_subdir, items=True):
                    if named not in LAYER_OF and named not in ("self", "super"):
                        problems.append(
                            f"{path}:{number}: {module} names {named} of the server's top module: imports must point down"
                        )
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} upward import(s) in {root}")
        return 1
    print(f"layers ok: {root} imports downward only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
