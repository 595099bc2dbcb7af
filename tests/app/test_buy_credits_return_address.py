"""The Buy credits page's return address (``?top_up=…``) holds whatever a link says: only an id of
ours is looked up, and nothing else reaches the database or shows an error."""

from __future__ import annotations

import pytest

from tests.app.harness import open_page, page_text, signed_in
from tests.app.seed import ALICE


@pytest.mark.parametrize("value", ["9" * 30, "١٢", "12abc", "-1", ""])
def test_a_return_address_that_names_no_top_up_of_ours_changes_nothing(portal_url: str, value: str) -> None:
    at = signed_in(ALICE)
    at.query_params["top_up"] = value
    open_page(at, "buy_credits")
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if not w.value.startswith("**Sandbox mode**")]
    assert not warnings, warnings
    assert "Buy credits" in page_text(at)
