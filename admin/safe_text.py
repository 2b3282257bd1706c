"""Untrusted strings made safe to show on a terminal.

Worker ids, hosts, errors, label names, dead-letter messages and values come from topics and
files that anyone with write access controls. Before the CLI draws them: control characters
(ANSI escapes, carriage returns, bells), bidirectional overrides and line separators become
visible escapes (`\\x1b`, `\\u202e`), overlong strings are shortened with a count of what was
left out, and rich markup (`[/]`, `[bold]`) is never interpreted: table cells are `Text`
objects, markup lines use `esc`. `--json` output never goes through here (nor through rich).
"""

from __future__ import annotations

import unicodedata

from rich.markup import escape
from rich.text import Text

SHOWN_CHARS = 200  # longer strings are cut, saying how many characters were left out

# Format characters that reorder or hide what follows (bidi embeddings, overrides, isolates).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls, surrogates, separators


def _visible(char: str) -> str:
    if char in _BIDI or unicodedata.category(char) in _UNSAFE_CATEGORIES:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def printable(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as text a terminal shows as is: no control sequences, at most `limit` chars
    (plus a `…(+N)` mark)."""
    text = "".join(map(_visible, str(value)))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit})"


def esc(value: object, limit: int = SHOWN_CHARS) -> str:
    """`printable(value)` with rich markup escaped, for f-strings that also hold markup."""
    return escape(printable(value, limit))


def cell(value: object, style: str = "", limit: int = SHOWN_CHARS) -> Text:
    """A table cell showing `value` literally (never parsed as markup)."""
    return Text(printable(value, limit), style=style)
