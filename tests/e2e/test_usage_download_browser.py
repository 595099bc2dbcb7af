"""The Usage page's CSV in a real browser: the file a filtered view downloads is named after the
account, range and filters, and its rows carry every dimension (made when clicked)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from core.demo.seed import STARTUP
from tests.e2e.conftest import Portal, sign_in
from tests.e2e.test_alerts_browser import TIMEOUT_MS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page


def test_a_filtered_view_downloads_its_rows_with_every_dimension(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.goto(f"{portal.base_url}/usage?account={STARTUP}&project=copilot&model=atlas-large")
    page.get_by_role("heading", name="Usage").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name=re.compile(r"^Filters · 2 active")).wait_for(timeout=TIMEOUT_MS)
    with page.expect_download(timeout=TIMEOUT_MS) as started:
        page.get_by_role("button", name="Download CSV (exact values)").click()
    download = started.value
    name = download.suggested_filename
    assert re.fullmatch(
        r"usage_brightpath-ai_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d_by-day_model-atlas-large_project-copilot\.csv",
        name,
    ), name
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows, "the file has no rows"
    assert {(row["model"], row["project"]) for row in rows} == {("atlas-large", "copilot")}
    assert {"meter", "api_key", "amount_credits"} <= set(rows[0])
    assert all(re.fullmatch(r"-?\d+\.\d{9}", row["amount_credits"]) for row in rows)
