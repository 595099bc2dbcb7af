"""``app.user_text``: what it hands to Streamlit's Markdown reads back as the text itself (on one
line), with every ASCII punctuation character escaped; a code span is fenced past any backticks
inside. Chromium's rendering of the same is checked by tests/e2e/test_user_text_browser.py."""

from __future__ import annotations

import re
import string

import pytest

from app.user_text import WORD_JOINER, code, literal
from core.text import one_line
from tests.app.harness import as_read
from tests.e2e.test_user_text_browser import HOSTILE

UNESCAPED_PUNCTUATION = re.compile(
    r"(?<!\\)(?:\\\\)*[" + re.escape(string.punctuation.replace("\\", "")) + "]"
)


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_reads_back_as_the_text_with_nothing_markdown_could_start_with(text: str) -> None:
    shown = literal(text)
    assert as_read(shown) == one_line(text)
    assert not UNESCAPED_PUNCTUATION.search(shown.replace("&#32;", "")), shown
    assert not re.search(r"\s", shown.replace(" ", "")), shown  # one line


@pytest.mark.parametrize(
    "text", ["plain", "a `tick`", "``two``", "`edge", "end`", " spaced ", ":material/home:"]
)
def test_code_is_one_span_fenced_past_every_backtick_run(text: str) -> None:
    shown = code(text)
    fence = re.match("`+", shown)
    assert fence is not None and shown.endswith(fence.group())
    inside = shown[len(fence.group()) : -len(fence.group())]
    assert all(len(run) != len(fence.group()) for run in re.findall("`+", inside))
    assert inside.replace(WORD_JOINER, "").strip() == text.strip()
    assert ":material/" not in shown  # Streamlit rewrites that in the source, even inside code


def test_plain_words_pass_unchanged() -> None:
    assert literal("Acme Robotics") == "Acme Robotics"
    assert literal("Low balance") == "Low balance"
