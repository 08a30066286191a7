#!/usr/bin/env python3
"""Check the documentation's own links: README.md, ARCHITECTURE.md and the
book under docs/src.

Every relative link must name a file or directory that exists (from a book
page, one inside docs/src: the published book has nothing else), every
#anchor one that a heading (or an <a id/name>) of the target page makes,
every {{#include}} a file that exists (and, with a line range or an anchor,
lines or an ANCHOR that the file has), and every page of docs/src must be
listed in SUMMARY.md (mdBook renders nothing else). Links to other sites are
not fetched. Prints each broken link with its file and line; exits 1 if any.

Usage: python3 docs/check_links.py   (from anywhere; paths are repository-relative)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "docs" / "src"

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_LINK = re.compile(r"<a\s[^>]*href=\"([^\"]+)\"", re.I)
HTML_ID = re.compile(r"<a\s[^>]*(?:id|name)=\"([^\"]+)\"", re.I)
INCLUDE = re.compile(r"(\\?)\{\{\s*#include\s+([^}\s]+)\s*\}\}")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) outside fenced code blocks, code spans blanked."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def heading_id(title):
    """The id mdBook and GitHub give a heading: its text without markup,
    lower case, spaces as '-', other punctuation dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "")
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


_anchors = {}


def anchors(path):
    """Every #anchor a Markdown page makes (duplicates get -1, -2, ...)."""
    if path not in _anchors:
        seen = {}
        ids = set()
        fenced = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if FENCE.match(line):
                fenced = not fenced
                continue
            if fenced:
                continue
            m = HEADING.match(line)
            if m:
                base = heading_id(m.group(2))
                k = seen.get(base, 0)
                seen[base] = k + 1
                ids.add(base if k == 0 else f"{base}-{k}")
            ids.update(HTML_ID.findall(line))
        _anchors[path] = ids
    return _anchors[path]


def check_link(source, target, problems, where):
    if SCHEME.match(target) or target.startswith("//"):
        return  # another site, or mailto:
    path_part, _, anchor = target.partition("#")
    dest = source if not path_part else (source.parent / path_part).resolve()
    if path_part and not dest.exists():
        problems.append(f"{where}: broken link {target}: {rel(dest)} does not exist")
        return
    if BOOK in source.parents and path_part and BOOK not in dest.parents:
        problems.append(f"{where}: link {target} leaves docs/src: the published book has no {rel(dest)}")
        return
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        problems.append(f"{where}: broken link {target}: no heading of {rel(dest)} makes #{anchor}")


def check_include(source, spec, problems, where):
    path_part, _, selector = spec.partition(":")
    dest = (source.parent / path_part).resolve()
    if not dest.is_file():
        problems.append(f"{where}: broken include {spec}: {rel(dest)} does not exist")
        return
    if not selector:
        return
    lines = dest.read_text(encoding="utf-8").splitlines()
    first = selector.split(":")[0]
    if re.fullmatch(r"[0-9]*(:[0-9]*)?", selector):
        if first and int(first) > len(lines):
            problems.append(f"{where}: broken include {spec}: {rel(dest)} has {len(lines)} lines")
    elif not any(f"ANCHOR: {selector}" in line for line in lines):
        problems.append(f"{where}: broken include {spec}: no ANCHOR: {selector} in {rel(dest)}")


def rel(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def check_file(path, problems):
    text = path.read_text(encoding="utf-8")
    for n, line in prose_lines(text):
        where = f"{rel(path)}:{n}"
        targets = INLINE_LINK.findall(line) + HTML_LINK.findall(line)
        m = REF_DEF.match(line)
        if m:
            targets.append(m.group(1))
        for target in targets:
            check_link(path, target, problems, where)
    if BOOK in path.parents:
        # mdBook expands includes everywhere, code blocks too; `\{{` is an escape.
        for n, line in enumerate(text.splitlines(), 1):
            for escaped, spec in INCLUDE.findall(line):
                if not escaped:
                    check_include(path, spec, problems, f"{rel(path)}:{n}")


def main():
    pages = sorted(BOOK.rglob("*.md"))
    files = [ROOT / "README.md", ROOT / "ARCHITECTURE.md"] + pages
    problems = []
    for path in files:
        if not path.is_file():
            problems.append(f"{rel(path)}: missing")
            continue
        check_file(path, problems)
    summary = BOOK / "SUMMARY.md"
    if summary.is_file():
        listed = set()
        for _, line in prose_lines(summary.read_text(encoding="utf-8")):
            for target in INLINE_LINK.findall(line):
                listed.add((BOOK / target.partition("#")[0]).resolve())
        for page in pages:
            if page != summary and page.resolve() not in listed:
                problems.append(f"{rel(page)}: not listed in docs/src/SUMMARY.md (mdBook would not render it)")
    else:
        problems.append("docs/src/SUMMARY.md: missing")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} broken link(s)", file=sys.stderr)
        return 1
    print(f"links OK: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
