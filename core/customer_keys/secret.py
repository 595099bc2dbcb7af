"""The secret of a customer API key: made here, shown once, stored only as its SHA-256.

A secret is ``ml_live_`` followed by 48 hex digits: 24 bytes (192 bits) from ``secrets``. The
database keeps its SHA-256 (hex) and a visible prefix (``ml_live_3f9a2c``) to recognise it.

Why a plain SHA-256 and not bcrypt, scrypt or Argon2: those slow, salted hashes exist to protect
secrets people choose, which are guessable; a random 192-bit secret cannot be guessed whatever
the hash's speed (2^192 tries), so a leaked table of digests gives nothing away. A fast,
unsalted digest also lets the API find a key by one indexed equality lookup on every request,
in microseconds, where a slow hash would cost tens of milliseconds of CPU per request and would
need the key id in the secret to find its salt.
"""

from __future__ import annotations

import hashlib
import re
import secrets

SECRET_PREFIX = "ml_live_"
SECRET_BYTES = 24  # 192 bits of entropy
VISIBLE_HEX_DIGITS = 6  # after the prefix: enough to tell one's keys apart, far from enough to use
_SHAPE = re.compile(r"ml_live_[0-9a-f]{48}")


def new_secret() -> str:
    """A fresh secret, e.g. ``ml_live_3f9a2c…`` (56 characters)."""
    return SECRET_PREFIX + secrets.token_hex(SECRET_BYTES)


def is_secret_shaped(text: str) -> bool:
    """Whether ``text`` has a customer key's shape (prefix and 48 lower-case hex digits)."""
    return bool(_SHAPE.fullmatch(text))


def secret_digest(secret: str) -> str:
    """What is stored and looked up: the SHA-256 of the secret, 64 hex digits."""
    return hashlib.sha256(secret.encode()).hexdigest()


def visible_prefix(secret: str) -> str:
    """The part of a secret the portal and the CLI show: ``ml_live_3f9a2c``."""
    return secret[: len(SECRET_PREFIX) + VISIBLE_HEX_DIGITS]
