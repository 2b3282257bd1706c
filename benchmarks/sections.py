"""Generated sections of the READMEs: text between two HTML-comment markers, rewritten from a
result file (`--write`) or checked against it (`--check`), never edited by hand."""

from __future__ import annotations

import sys
from pathlib import Path


def replace_section(text: str, section: str, markers: tuple[str, str]) -> str:
    """`text` with its marked section (markers included) replaced by `section`."""
    first, last = markers
    start, end = text.find(first), text.find(last)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {first} ... {last} section")
    return text[:start] + section + text[end + len(last) :]


def sync_section(
    readme: Path, section: str, markers: tuple[str, str], *, check: bool, what: str, fix: str
) -> int:
    """Write `section` into `readme`, or with `check` exit 1 (saying `fix`) when it differs."""
    current = readme.read_text()
    wanted = replace_section(current, section, markers)
    if check:
        if wanted != current:
            print(f"{readme}: {what} is stale; run {fix}", file=sys.stderr)
            return 1
        return 0
    readme.write_text(wanted)
    print(f"{readme}: {what} regenerated")
    return 0
