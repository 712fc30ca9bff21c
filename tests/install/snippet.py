"""Fenced blocks of README.md that tests/install/run.sh runs as written.

A block is marked by an HTML comment on the line before its opening fence:

    <!-- snippet: NAME -->
    ```sh
    ...
    ```

    python3 tests/install/snippet.py README.md NAME   prints the block's text
    python3 tests/install/snippet.py README.md        prints every NAME, one a line

Exits 1 when NAME is missing or marked twice, or a marker is not followed
by a fenced block.
"""

import re
import sys

MARKER = re.compile(r"^<!-- snippet: ([A-Za-z0-9_.-]+) -->$")


def snippets(text):
    lines = text.split("\n")
    found = {}
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        name = marker.group(1)
        if name in found:
            raise SystemExit(f"snippet {name!r} is marked twice")
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        if not fence.startswith("```"):
            raise SystemExit(f"snippet {name!r}: no fenced block right after its marker (line {i + 1})")
        body = []
        for inner in lines[i + 2:]:
            if inner == "```":
                break
            body.append(inner)
        else:
            raise SystemExit(f"snippet {name!r}: the fenced block is not closed")
        found[name] = "\n".join(body) + "\n"
    return found


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit("usage: snippet.py README.md [NAME]")
    with open(argv[1], encoding="utf-8") as f:
        found = snippets(f.read())
    if len(argv) == 2:
        sys.stdout.write("".join(name + "\n" for name in found))
        return
    name = argv[2]
    if name not in found:
        raise SystemExit(f"{argv[1]} has no snippet {name!r}")
    sys.stdout.write(found[name])


if __name__ == "__main__":
    main(sys.argv)
