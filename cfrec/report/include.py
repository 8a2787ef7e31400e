"""`python -m cfrec.report.include PAGE [PAGE ...]`: refresh the generated blocks of hand-written pages.

A block is a line `<!-- include: PATH -->`, the generated text, and a line `<!-- /include -->`; its text is
replaced by the file at PATH (relative to the page), e.g. a fragment that `python -m cfrec.report` wrote. So
the numbers on docs/claims.md are the report's own, refreshed by one command rather than copied by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cfrec.io import atomic_write_bytes

OPEN = re.compile(r"^<!-- include: (\S+) -->$")
CLOSE = "<!-- /include -->"


class IncludeError(ValueError):
    """A page's include block is malformed or names a missing file (the message names page and line)."""


def refresh(page: Path) -> int:
    """Replace every include block's text in `page` by its file; returns how many blocks were filled."""
    lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    filled, i = 0, 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        match = OPEN.match(line.strip())
        i += 1
        if not match:
            if line.strip() == CLOSE:
                raise IncludeError(f"{page}:{i}: '{CLOSE}' without an opening '<!-- include: PATH -->'")
            continue
        start = i
        while i < len(lines) and lines[i].strip() != CLOSE and not OPEN.match(lines[i].strip()):
            i += 1
        if i == len(lines) or lines[i].strip() != CLOSE:
            raise IncludeError(f"{page}:{start}: include block of {match.group(1)} is not closed by '{CLOSE}'")
        source = page.parent / match.group(1)
        if not source.is_file():
            raise IncludeError(f"{page}:{start}: include: {source} not found (run python -m cfrec.report first?)")
        text = source.read_text(encoding="utf-8")
        out.append(text if text.endswith("\n") else text + "\n")
        out.append(lines[i])
        filled, i = filled + 1, i + 1
    atomic_write_bytes(page, "".join(out).encode("utf-8"))
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfrec.report.include", description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path, help="Markdown pages with include blocks")
    args = parser.parse_args(argv)
    try:
        for page in args.pages:
            print(f"{page}: {refresh(page)} block(s) refreshed", file=sys.stderr)
    except (IncludeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
