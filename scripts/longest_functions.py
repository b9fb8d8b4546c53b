#!/usr/bin/env python3
"""Prints the longest C++ function bodies in core/, server/ and client/.

A function is a line that ends a signature with `{` at brace depth 0 or 1
(namespace level) up to its matching `}`; lambdas and nested blocks count
towards their enclosing function. Heuristic, but stable enough to track.

    scripts/longest_functions.py [--top N] [--over LINES]
Exit status 0; with --over, prints only functions longer than LINES.
"""
import argparse
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIG = re.compile(r"^[A-Za-z_][\w:<>,\s\*&~]*\([^;]*\)\s*(const)?\s*(override)?\s*\{\s*$")


def functions(path):
    """Yields (name, first line, last line, length) of each function body.

    Namespace and class scopes do not count as nesting, so functions in an
    anonymous namespace and member functions defined in a class body are
    found too; lambdas and blocks count towards their enclosing function.
    """
    with open(path, errors="replace") as f:
        lines = f.readlines()
    scopes = []  # "ns", "class" or "block", one per open brace
    start = None
    name = None
    base = 0
    pending = ""
    for n, line in enumerate(lines, 1):
        code = re.sub(r"'(\\.|[^'\\])'", "''", re.sub(r'"(\\.|[^"\\])*"', '""', line.split("//")[0]))
        stripped = code.strip()
        outside = all(k != "block" for k in scopes)
        if start is None and outside:
            text = (pending + " " + stripped).strip() if pending else stripped
            if stripped.endswith("{") and "(" in text and not text.startswith(
                    ("namespace", "class", "struct", "enum", "if", "for", "while", "switch")):
                if SIG.match(text) or re.match(r"^.*\)\s*(const)?\s*(->\s*[\w:<>]+)?\s*\{$", text):
                    start = n
                    m = re.search(r"([\w:~]+)\s*\(", text)
                    name = m.group(1) if m else text[:40]
                    base = len(scopes)
            pending = text if (start is None and "(" in text and not stripped.endswith(
                ("{", ";", "}"))) else ""
        kind = ("ns" if stripped.startswith("namespace") else
                "class" if re.match(r"^(class|struct|union)\b", stripped) and start is None else
                "block")
        for ch in code:
            if ch == "{":
                scopes.append(kind)
                kind = "block"  # further braces on the line are inner blocks
            elif ch == "}" and scopes:
                scopes.pop()
        if start is not None and len(scopes) <= base:
            yield name, start, n, n - start + 1
            start = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--over", type=int, default=0)
    a = ap.parse_args()
    found = []
    for top in ("core", "server", "client"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for fn in files:
                if fn.endswith(".cc"):
                    p = os.path.join(dirpath, fn)
                    for name, b, e, length in functions(p):
                        found.append((length, os.path.relpath(p, ROOT), b, name))
    found.sort(reverse=True)
    shown = [f for f in found if f[0] > a.over] if a.over else found[:a.top]
    for length, path, line, name in shown:
        print(f"{length:5d}  {path}:{line}  {name}")


if __name__ == "__main__":
    main()
