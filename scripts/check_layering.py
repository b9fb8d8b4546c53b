#!/usr/bin/env python3
"""Checks that server/ includes only the public core/ headers that
docs/ARCHITECTURE.md names (between its "public core headers" markers), that
each named header exists, and that each is in use (the list stays true).

    scripts/check_layering.py        exit 1 with the offending includes
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- BEGIN public core headers -->"
END = "<!-- END public core headers -->"


def public_headers():
    text = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md")).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"docs/ARCHITECTURE.md: the {BEGIN} ... {END} block is missing")
    block = text[text.index(BEGIN):text.index(END)]
    return set(re.findall(r"`(core/[\w/]+\.h)`", block))


def server_includes():
    found = {}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "server")):
        for f in sorted(files):
            if not f.endswith((".h", ".cc")):
                continue
            path = os.path.join(dirpath, f)
            for n, line in enumerate(open(path), 1):
                m = re.match(r'\s*#include\s+"(core/[^"]+)"', line)
                if m:
                    found.setdefault(m.group(1), []).append(
                        f"{os.path.relpath(path, ROOT)}:{n}")
    return found


def main():
    public = public_headers()
    used = server_includes()
    bad = False
    for header, where in sorted(used.items()):
        if header not in public:
            bad = True
            print(f"layering: {where[0]} includes {header}, not a public core header "
                  f"(docs/ARCHITECTURE.md lists them; go through one of those)", file=sys.stderr)
    for header in sorted(public):
        if not os.path.exists(os.path.join(ROOT, header)):
            bad = True
            print(f"layering: docs/ARCHITECTURE.md lists {header}, which does not exist",
                  file=sys.stderr)
        elif header not in used:
            bad = True
            print(f"layering: docs/ARCHITECTURE.md lists {header}, which server/ does not "
                  f"include (drop it from the list)", file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"layering: server/ includes {len(used)} core headers, all public")


if __name__ == "__main__":
    main()
