"""Text a person or a client typed, before it is stored, looked up or put in a header.

No stored value holds a NUL or a lone surrogate: PostgreSQL refuses both (and a driver cannot
even encode the second), so such text is refused with a clear error naming its field instead
of failing in the database.

A name (an alert rule's, a cap's scope, an account's, a member's) is one line: it is shown in
one line of the portal and goes into email subjects. ``single_line_text`` refuses, naming the
field, any character that breaks a line or is an invisible control: the C0 and C1 controls
(tab, LF, VT, FF, CR, U+0085 NEXT LINE, ...), U+2028 LINE SEPARATOR, U+2029 PARAGRAPH
SEPARATOR and the format characters (bidirectional overrides, zero-width space, soft hyphen,
byte order mark, ...). Zero-width joiner and non-joiner are kept: several scripts and emoji
need them, and they neither break a line nor reorder text. ``one_line`` is the same rule
applied to text already stored or made elsewhere: each such run becomes one space (an email
header must be one line whatever the data holds).
"""

from __future__ import annotations

import unicodedata

from core.errors import ValidationError

_JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner, zero-width joiner
_BREAKING_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _breaks_a_line(char: str) -> bool:
    return unicodedata.category(char) in _BREAKING_CATEGORIES and char not in _JOINERS


def is_clean_text(text: str) -> bool:
    """No NUL, and encodable as UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str, *, field: str) -> str:
    """``text`` as given when it can be stored; else a ValidationError naming ``field``."""
    if not is_clean_text(text):
        raise ValidationError(
            f"{field.replace('_', ' ')} holds a NUL or an unpaired surrogate character; retype it",
            code="invalid_character",
            field=field,
        )
    return text


def _first_breaking(text: str) -> str | None:
    if text.isascii() and text.isprintable():  # ASCII: printable is exactly "no C0 control and no DEL"
        return None
    return next((char for char in text if _breaks_a_line(char)), None)


def is_single_line(text: str) -> bool:
    """No line separator, control or invisible format character (see the module's docstring)."""
    return _first_breaking(text) is None


def single_line_text(text: str, *, field: str) -> str:
    """``text`` as given when it is one line that can be stored; else a ValidationError naming ``field``."""
    clean_text(text, field=field)
    char = _first_breaking(text)
    if char is not None:
        raise ValidationError(
            f"{field.replace('_', ' ')} must be one line without control characters "
            f"(it holds U+{ord(char):04X} {unicodedata.name(char, 'a control character')}); retype it",
            code="not_single_line",
            field=field,
        )
    return text


def one_line(text: str) -> str:
    """``text`` with each run of line separators, controls and invisible format characters made
    one space: what may go in an email header or a one-line display."""
    if _first_breaking(text) is None:
        return text
    parts: list[str] = []
    in_run = False
    for char in text:
        breaking = _breaks_a_line(char)
        if not breaking:
            parts.append(char)
        elif not in_run:
            parts.append(" ")
        in_run = breaking
    return "".join(parts)
