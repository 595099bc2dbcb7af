"""AppTest harness: a seeded database behind DATABASE_URL and helpers to read what a page shows."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import get_engine
from app.user_text import WORD_JOINER
from core.clock import system_clock
from core.db import make_engine
from tests.app.seed import seed_accounts, seed_usage

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "app" / "main.py"
TIMEOUT = 60


@pytest.fixture(scope="session")
def components_scanned_once() -> Iterator[None]:
    """Each new ``AppTest`` scans every installed package's metadata for Streamlit components on its
    first run (``streamlit.components.v2.manifest_scanner``): about 0.2 s of CPU, more than a small
    page's own run. The installed packages do not change during a test run: scan once."""
    from streamlit.components.v2 import manifest_scanner

    scan = functools.cache(manifest_scanner.scan_component_manifests)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda max_workers=None: list(scan()))
        yield


@pytest.fixture
def portal_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A seeded database (SQLite and PostgreSQL) that the portal's engine points at."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    monkeypatch.delenv("METERLINE_SUPPORT_EMAILS", raising=False)
    engine = make_engine(db_url)
    now = system_clock()
    seed_accounts(engine, at=now)
    seed_usage(engine, at=now)
    engine.dispose()
    get_engine.clear()  # the portal's one-engine-per-process cache: point it at this database
    yield db_url
    get_engine().dispose()
    get_engine.clear()


@pytest.fixture
def empty_portal_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database with nothing in it."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    get_engine.clear()
    yield db_url
    get_engine().dispose()
    get_engine.clear()


def signed_in(email: str, **claims: Any) -> AppTest:
    """The portal with ``email`` signed in (as ``st.user`` would after OIDC), run once."""
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": email, **claims}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill(at: AppTest, key: str, value: str) -> None:
    """Type ``value`` into the text field ``key`` (shown at the next run)."""
    at.text_input(key=key).input(value)


def submit_form(at: AppTest, form_key: str) -> AppTest:
    """Click the submit button of the form ``form_key`` and run; the run raised nothing."""
    buttons = [b for b in at.button if getattr(b, "form_id", None) == form_key]
    assert buttons, f"no submit button in {form_key}"
    buttons[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def walk(node: Any) -> Iterator[Any]:
    """``node`` and every element below it."""
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from walk(child)


_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def as_read(markdown: str) -> str:
    """Markdown as a person reads it, for text that went through ``app.user_text.literal``: its
    backslash escapes undone, its invisible word joiners and leading-space references dropped."""
    return _MARKDOWN_ESCAPE.sub(r"\1", markdown.replace(WORD_JOINER, "").replace("&#32;", " "))


def page_text(at: AppTest) -> str:
    """Every piece of text the run produced, as read: labels, values, messages, table cells (main
    and sidebar)."""
    parts: list[str] = []
    for root in (at.main, at.sidebar):
        for node in walk(root):
            for attribute in ("label", "body", "value", "help", "options"):
                try:
                    value = getattr(node, attribute, None)
                except Exception:
                    continue
                if value is None or callable(value):
                    continue
                to_csv = getattr(value, "to_csv", None)  # a frame; an unknown element answers None
                if callable(to_csv):
                    shown = display_values(node)  # a styled frame: the cells as drawn
                    parts.append((shown if shown is not None else value).to_csv())
                else:
                    parts.append(as_read(str(value)))
    return "\n".join(parts)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, index: int = 0) -> list[dict[str, Any]]:
    return at.dataframe[index].value.to_dict("records")


def display_values(element: Any) -> Any:
    """The cell texts of a styled frame (``app.credits_table``) as drawn, or None (not styled)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    arrow = getattr(getattr(element, "proto", None), "arrow_data", None)
    if arrow is None or not arrow.styler.display_values:
        return None
    shown = convert_arrow_bytes_to_pandas_df(arrow.styler.display_values)
    shown.columns = element.value.columns
    return shown


def shown_table(at: AppTest, index: int = 0) -> list[dict[str, Any]]:
    """A table's rows as a person reads them: the cell texts of a styled frame (``app.credits_table``),
    the values themselves where the page gave no text."""
    shown = display_values(at.dataframe[index])
    return table(at, index) if shown is None else shown.to_dict("records")
