"""Text a person or a client typed, before it is stored or looked up.

No stored value holds a NUL or a lone surrogate: PostgreSQL refuses both (and a driver cannot
even encode the second), so such text is refused with a clear error naming its field instead
of failing in the database.
"""

from __future__ import annotations

from core.errors import ValidationError


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
