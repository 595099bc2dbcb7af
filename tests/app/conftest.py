"""Fixtures of the portal tests (defined in ``tests.app.harness`` so other suites can reuse them)."""

import pytest

from tests.app.harness import components_scanned_once, empty_portal_url, portal_url

__all__ = ["components_scanned_once", "empty_portal_url", "portal_url"]


@pytest.fixture(scope="session", autouse=True)
def _components_scanned_once(components_scanned_once: None) -> None:
    """Every portal test: Streamlit's component scan once per test run, not once per AppTest."""
