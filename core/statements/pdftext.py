"""Text that a PDF font can draw: a Unicode font when the machine has one, else a core font, and
every character the font lacks replaced, so that no account name (emoji, CJK, control
characters, lone surrogates) can break a statement or a receipt."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# DejaVu Sans (Debian's fonts-dejavu-core) covers Latin, Greek, Cyrillic, arrows and more; fpdf2
# ships no Unicode font of its own. Without it the PDF uses Helvetica (Windows-1252).
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
UNICODE_FONT_FILES = ((DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"),)
CORE_FONT = "helvetica"
CORE_ENCODING = "windows-1252"
MISSING = "?"
# What to write when the font lacks a character that has a plain equivalent.
PLAIN: dict[str, str] = {
    "→": "->",
    "–": "-",
    "—": "-",
    "−": "-",
    "…": "...",
    "•": "*",
    "·": "-",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "\u00a0": " ",
    "\u202f": " ",
}
SKIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class PdfFont:
    """The font a document uses: its family name, the TTF files (None: a core font), and what it covers."""

    family: str
    regular: Path | None
    bold: Path | None
    covers: Callable[[str], bool]


def _core_covers(ch: str) -> bool:
    try:
        ch.encode(CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


@cache
def _ttf_codepoints(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def _covering(points: frozenset[int]) -> Callable[[str], bool]:
    return lambda ch: ord(ch) in points


def core_font() -> PdfFont:
    return PdfFont(CORE_FONT, None, None, _core_covers)


@cache
def document_font() -> PdfFont:
    """DejaVu Sans when installed, else Helvetica."""
    for regular, bold in UNICODE_FONT_FILES:
        if regular.is_file() and bold.is_file():
            try:
                points = _ttf_codepoints(regular) & _ttf_codepoints(bold)
            except Exception:  # an unreadable font file: the core font still works
                continue
            return PdfFont("dejavu", regular, bold, _covering(points))
    return core_font()


def printable(text: str, font: PdfFont, *, limit: int = 2_000) -> str:
    """``text`` as ``font`` can draw it: line breaks and tabs as spaces, invisible and control
    characters dropped, what the font lacks by its plain equivalent, else its base letter, else "?"."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text.encode("utf-8", "replace").decode("utf-8"))[:limit]:
        if ch in "\r\n\t":
            out.append(" ")
            continue
        if unicodedata.category(ch) in SKIPPED_CATEGORIES:
            continue
        if font.covers(ch):
            out.append(ch)
            continue
        plain = PLAIN.get(ch)
        if plain is not None and all(font.covers(c) for c in plain):
            out.append(plain)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base != ch and all(font.covers(c) for c in base):
            out.append(base)
            continue
        if unicodedata.category(ch).startswith("M"):
            continue  # a combining mark the font lacks: the letter it sits on stays
        out.append(MISSING)
    return "".join(out)
