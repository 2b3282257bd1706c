"""Hypothesis strategies that write JSON *text* by hand, and a reference oracle for it.

Strings are built from raw escapes (never through `json.dumps`, which would normalise them):
every escape JSON allows, `\\uXXXX` over the whole 16-bit range (lone surrogates, controls,
NUL), valid and reversed surrogate pairs, invisible characters; numbers include huge and
non-finite ones and `NaN`/`Infinity`; objects carry duplicate keys; nesting goes past any
sane depth; records also come as raw bytes and invalid UTF-8.

`expected_outcome` reads the bytes with a different parser (the standard library's) under
the strict rules every correct worker must apply, and says `labelled`, `dead` or `any`
(where a policy could go either way).
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from hypothesis import strategies as st

# -- strings -------------------------------------------------------------------------------
WORDS = ["北京", "两会", "服务", "酒店", "球迷", "降准", "票房", "质量", "新闻", "ok", "A1"]
INVISIBLE = ["\\u0000", "\\u200b", "\\ufeff", "\\u3164", "\\u00a0", "\\u2028", "\\u202e", " "]


def _u(code: int, upper: bool) -> str:
    return f"\\u{code:04X}" if upper else f"\\u{code:04x}"


def _pair(code: int, reverse: bool) -> str:
    v = code - 0x10000
    hi, lo = 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)
    return _u(lo, False) + _u(hi, True) if reverse else _u(hi, True) + _u(lo, False)


raw_chars = st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters='"\\')
short_escapes = st.sampled_from(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
any_u_escape = st.builds(_u, st.integers(0, 0xFFFF), st.booleans())
lone_surrogates = st.builds(_u, st.integers(0xD800, 0xDFFF), st.booleans())
surrogate_pairs = st.builds(_pair, st.integers(0x10000, 0x10FFFF), st.booleans())
raw_controls = st.sampled_from(["\x00", "\x01", "\x1f", "\n"])  # not allowed raw in a string

string_pieces = st.one_of(
    raw_chars,
    st.sampled_from(WORDS),
    short_escapes,
    any_u_escape,
    lone_surrogates,
    surrogate_pairs,
    st.sampled_from(INVISIBLE),
)
json_strings = st.lists(string_pieces, max_size=10).map(lambda ps: '"' + "".join(ps) + '"')
# Valid strings: still every escape, controls and NUL as \uXXXX, pairs in order; no lone half.
bmp_non_surrogate = st.integers(0, 0xFFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF)
clean_pieces = st.one_of(
    raw_chars,
    st.sampled_from(WORDS),
    short_escapes,
    st.builds(_u, bmp_non_surrogate, st.booleans()),
    st.builds(_pair, st.integers(0x10000, 0x10FFFF), st.just(False)),
    st.sampled_from(INVISIBLE),
)
clean_strings = st.lists(clean_pieces, max_size=10).map(lambda ps: '"' + "".join(ps) + '"')
# A string with something visible in it, most of the time (so that events do get labelled).
visible_strings = st.tuples(
    st.sampled_from(WORDS[:8]), st.lists(st.one_of(raw_chars, short_escapes, surrogate_pairs))
).map(lambda t: '"' + t[0] + "".join(t[1][:6]) + '"')
invisible_strings = st.lists(st.sampled_from([*INVISIBLE, "\\t", "\\n"]), max_size=6).map(
    lambda ps: '"' + "".join(ps) + '"'
)
broken_strings = st.one_of(  # JSON text that is not a valid string
    st.tuples(st.sampled_from(WORDS), raw_controls).map(lambda t: f'"{t[0]}{t[1]}"'),
    st.sampled_from(['"\\x41"', '"\\u12"', '"\\uZZZZ"', '"abc', "'single'", '"\\a"']),
)

# -- numbers -------------------------------------------------------------------------------
int_texts = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["-0", "18446744073709551616", "1" + "0" * 400, "-" + "9" * 400]),
)
float_texts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda m, e, up: f"{m}{'E' if up else 'e'}{e:+d}",
        st.integers(-99, 99),
        st.integers(-400, 400),
        st.booleans(),
    ),
    st.sampled_from(["1e400", "-1e400", "1E-400", "2e308", "0.0e0", "NaN", "Infinity"]),
    st.sampled_from(["-Infinity", "01", "+1", ".5", "1.", "0x10", "1e", "--1"]),
)
clean_numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-9, 9), st.integers(-300, 300)),
    st.sampled_from(["-0", "18446744073709551616", "1E-400", "0.0e0"]),
)
literals = st.sampled_from(["true", "false", "null", "True", "nul"])
spaces = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])

# -- values --------------------------------------------------------------------------------
scalars = st.one_of(json_strings, int_texts, float_texts, literals)


def _array(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(children, max_size=4), spaces).map(
        lambda t: "[" + t[1] + ("," + t[1]).join(t[0]) + "]"
    )


def _object(
    children: st.SearchStrategy[str], strings: st.SearchStrategy[str] = json_strings
) -> st.SearchStrategy[str]:
    keys = st.one_of(strings, st.sampled_from(['"a"', '"a"', '"text"', '"\\u0061"']))
    return st.tuples(st.lists(st.tuples(keys, children), max_size=4), spaces).map(
        lambda t: "{" + ",".join(f"{k}{t[1]}:{t[1]}{v}" for k, v in t[0]) + "}"
    )


def _deep(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + '"x"' + "}" * depth


deep_values = st.builds(
    _deep,
    st.one_of(st.integers(1, 40), st.integers(1100, 3000)),
    st.sampled_from(["array", "object"]),
)
json_values = (
    st.recursive(scalars, lambda c: _array(c) | _object(c) | deep_values, max_leaves=10)
    | deep_values
)
clean_values = st.recursive(
    clean_strings | clean_numbers | st.sampled_from(["true", "false", "null"]),
    lambda c: _array(c) | _object(c, clean_strings),
    max_leaves=10,
)


# -- events --------------------------------------------------------------------------------
@st.composite
def event_texts(draw: st.DrawFn) -> str:
    """A JSON object that is, or nearly is, a TextEvent."""
    plain_ids = st.integers(0, 10**6).map(lambda i: f'"ev-{i}"')
    members: list[tuple[str, str]] = []
    if draw(st.integers(0, 9)):  # mostly present
        members.append(('"id"', draw(plain_ids | json_strings | int_texts | literals)))
    if draw(st.integers(0, 9)):
        text = st.one_of(
            visible_strings, visible_strings, json_strings, invisible_strings, broken_strings
        )
        members.append(('"text"', draw(text | int_texts | literals)))
    if draw(st.booleans()):
        members.append(('"text_pair"', draw(visible_strings | json_strings | int_texts)))
    if draw(st.booleans()):
        members.append(('"metadata"', draw(json_values)))
    if draw(st.integers(0, 3)) == 0:  # an unknown field
        members.append((draw(json_strings), draw(json_values)))
    for _ in range(draw(st.integers(0, 2))):  # duplicate keys, either order
        if members:
            key, _value = draw(st.sampled_from(members))
            members.append((key, draw(scalars | visible_strings)))
    members = draw(st.permutations(members))
    sep = draw(spaces)
    return "{" + sep + ("," + sep).join(f"{k}:{sep}{v}" for k, v in members) + sep + "}"


@st.composite
def clean_event_texts(draw: st.DrawFn) -> str:
    """A valid TextEvent written with every escape JSON allows: it must be labelled."""
    members = [
        ('"id"', draw(st.integers(0, 10**6).map(lambda i: f'"ev-\\u00{40 + i % 60:02d}{i}"'))),
        ('"text"', draw(visible_strings)),
    ]
    if draw(st.booleans()):
        members.append(('"text_pair"', draw(visible_strings)))
    if draw(st.booleans()):
        members.append(('"metadata"', draw(_object(clean_values, clean_strings))))
    members = draw(st.permutations(members))
    if draw(st.booleans()):  # an unknown field first
        members.insert(0, (draw(clean_strings), draw(clean_values)))
    if draw(st.booleans()):  # a duplicate key earlier on: the last value is the valid one
        key = draw(st.sampled_from(['"id"', '"text"', '"metadata"', '"text_pair"']))
        members.insert(0, (key, draw(clean_values)))
    sep = draw(spaces)
    return "{" + sep + ("," + sep).join(f"{k}:{sep}{v}" for k, v in members) + sep + "}"


BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe4\xb8", b"\x80", b"\xf4\x90\x80\x80"]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    data = draw(event_texts()).encode("utf-8")
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from(BAD_UTF8)) + data[at:]


payloads: st.SearchStrategy[bytes | None] = st.one_of(
    clean_event_texts().map(str.encode),
    clean_event_texts().map(str.encode),
    clean_event_texts().map(str.encode),
    event_texts().map(str.encode),
    event_texts().map(str.encode),
    event_texts().map(str.encode),
    json_values.map(str.encode),
    invalid_utf8(),
    st.binary(max_size=64),
    st.just(None),
)


# -- the oracle ----------------------------------------------------------------------------
class _Refused(ValueError):
    pass


def _lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    return False


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicates that the dict drops are still part of the document: check them all.
    if any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in pairs):
        raise _Refused("lone surrogate")
    return dict(pairs)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("non-finite number")
    return value


def _int(text: str) -> int | float:
    value = int(text)
    if abs(value) < 2**64:
        return value
    return _float(text)  # read as the nearest double; refused when that is infinite


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def reference_parse(raw: bytes) -> Any:
    """The document as the standard library reads it under strict JSON; raises when refused."""
    document = json.loads(
        raw.decode("utf-8"),
        object_pairs_hook=_pairs,
        parse_float=_float,
        parse_int=_int,
        parse_constant=_constant,
    )
    if _lone_surrogate(document):
        raise _Refused("lone surrogate")
    return document


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _visibility(text: str) -> str:
    """`yes` (a letter or digit), `no` (only whitespace, controls, format), or `unsure`."""
    if any(ch.isalnum() and ch not in "\u3164\uffa0\u115f\u1160" for ch in text):
        return "yes"
    if all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs") for ch in text):
        return "no"
    return "unsure"


def expected_outcome(raw: bytes | None, max_depth: int = 32) -> str:
    """`labelled`, `dead`, or `any` for a record value (None is a tombstone)."""
    if raw is None:
        return "dead"
    try:
        doc = reference_parse(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "dead"
    if not isinstance(doc, dict):
        return "dead"
    text, event_id, pair, meta = (doc.get(k) for k in ("text", "id", "text_pair", "metadata"))
    if not isinstance(text, str) or _visibility(text) == "no":
        return "dead"
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 256:
        return "dead"
    if pair is not None and not isinstance(pair, str):
        return "dead"
    if meta is not None and not isinstance(meta, dict):
        return "dead"
    depth = _depth(meta)
    if depth > max_depth + 4:
        return "dead"
    if depth >= max_depth - 4 or _visibility(text) == "unsure":
        return "any"  # at the edge of a documented policy
    if _depth(doc) > 900:
        return "any"  # deep nesting in an ignored field: parsers differ in their limits
    return "labelled"
