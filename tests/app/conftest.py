"""Fixtures of the portal tests (defined in ``tests.app.harness`` so other suites can reuse them)."""

from tests.app.harness import empty_portal_url, portal_url

__all__ = ["empty_portal_url", "portal_url"]
