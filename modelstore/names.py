"""Validation of model and version names: they become path components."""

import re

from modelstore.exceptions import InvalidName

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe single path component, else raise InvalidName."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidName(
            f"invalid {what} {name!r}: use 1-64 of letters, digits, '.', '_', '-' "
            "starting with a letter or digit, and no '..'"
        )
    return name
