"""Text a customer typed shows as exactly that text in Streamlit's real Markdown renderer (Chromium):
no link, image, formatting, colour, icon, emoji, formula or typographic rewrite, in every kind of
element the portal puts such text in. Without ``app.user_text.literal`` the same page has links,
images, badges, icons and formulas (checked too, so the test proves it looks at the right things)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.text import one_line
from tests.e2e.conftest import CHROMIUM, REPO, _bin, _stop, _wait_for, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

HOSTILE = [
    "[click me](https://evil.example/x)",
    "![pixel](https://evil.example/p.png)",
    "Spend www.evil.example now",
    "see https://evil.example/a",
    "mallory@evil.example",
    "<https://evil.example>",
    "<img src=x onerror=alert(1)>",
    ":red[ALERT] :blue-badge[verified] :small[x] :orange-background[y]",
    ":material/home: :material_home: :streamlit: :smile: :+1:",
    "$x^2$ and $$y$$",
    "**bold** _it_ ~~strike~~ `code`",
    "# heading",
    "1. list",
    "- item",
    "> quote",
    "a | b",
    "&amp; &lt; &#65;",
    "a -> b <- c <-> d -- e >= f <= g ~= h",
    "back\\slash \\[x\\] \\",
    "    four spaces",
    "Low balance\u2028prod\nnext\rline\u0085x\u202eevil",
    "ok: 10:30 fine",
    "[x][ref]\n\n[ref]: https://evil.example",
    "```mermaid\ngraph TD; A-->B\n```",
    "[^1] and footnote\n\n[^1]: https://evil.example",
    "- [x] task",
]
KINDS = ("markdown", "caption", "info", "title", "label", "radio", "metric", "expander", "button", "code")
# What Markdown would make of text: none of it may appear where a person's text is shown.
RENDERED = (
    "a, img, svg, pre, code, table, ul, ol, blockquote, hr, strong, em, del, input, sup, .katex, "
    "[role=img], .stMarkdownColoredText, .stMarkdownColoredBackground, .stMarkdownBadge"
)
READ = """([count, rendered]) => {
  const MARKDOWN = '[data-testid=stMarkdownContainer], [data-testid=stCaptionContainer]';
  const found = [];
  for (let index = 0; index < count; index++) {
    for (const kind of %s) {
      const box = document.querySelector(`.st-key-case${index}_${kind}`);
      const shown = [...box.querySelectorAll(MARKDOWN)];
      const texts = shown.map(node => node.textContent).filter(text => text.trim() !== '');
      const made = shown.flatMap(node => [...node.querySelectorAll(rendered)])
        .map(element => element.outerHTML.slice(0, 99));
      found.push({index, kind, texts, made});
    }
  }
  return found;
}"""
TIMEOUT_MS = 60_000
NO_SKELETON = "() => !document.querySelector('[data-testid=stSkeleton]')"


def as_read(text: str) -> str:
    """What a person reads: spaces collapsed (HTML does it), no word joiners (they are invisible)."""
    return re.sub(r"\s+", " ", text.replace("\u2060", "")).strip()


@pytest.fixture(scope="module")
def shown_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    work = tmp_path_factory.mktemp("user_text")
    port = free_port()
    log = work / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _bin("streamlit"),
                "run",
                str(Path(__file__).with_name("user_text_app.py")),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=work,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://localhost:{port}"
    try:
        _wait_for(f"{base}/_stcore/health", process, log, "the user-text page")
        yield base
    finally:
        _stop(process)


def read_cases(browser: Any, url: str) -> list[dict[str, Any]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        last = f".st-key-case{len(HOSTILE) - 1}_{KINDS[-1]}"
        page.locator(last).wait_for(timeout=TIMEOUT_MS)
        # Widgets are drawn once their code has loaded (a skeleton until then); KaTeX and emoji too.
        page.wait_for_function(NO_SKELETON, timeout=TIMEOUT_MS)
        page.wait_for_timeout(1500)
        return page.evaluate(READ % list(KINDS), [len(HOSTILE), RENDERED])
    finally:
        context.close()


def test_typed_text_shows_literally_in_every_markdown_element(browser: Any, shown_page: str) -> None:
    wrong = []
    for case in read_cases(browser, shown_page):
        expected = as_read(one_line(HOSTILE[case["index"]]))
        made = list(case["made"])
        if case["kind"] == "code":  # one code span, holding the text
            expected = f"before {expected} after"
            spans = [element for element in made if element.startswith("<code")]
            if spans:
                made.remove(spans[0])
            else:
                made.append("no code span")
        texts = [as_read(text) for text in case["texts"]]
        if made or not texts or any(text != expected for text in texts):
            wrong.append((HOSTILE[case["index"]], case["kind"], texts, case["made"]))
    assert wrong == []


def test_without_the_helper_the_same_text_renders_as_markdown(browser: Any, shown_page: str) -> None:
    cases = read_cases(browser, shown_page + "/?raw=1")
    made = {(HOSTILE[case["index"]], case["kind"]) for case in cases if case["made"]}
    for kind in ("markdown", "caption", "label", "radio"):  # a link and a remote image, planted
        assert ("[click me](https://evil.example/x)", kind) in made
        assert ("![pixel](https://evil.example/p.png)", kind) in made
    assert (":red[ALERT] :blue-badge[verified] :small[x] :orange-background[y]", "markdown") in made
    assert ("$x^2$ and $$y$$", "markdown") in made
