"""Alert webhooks never reach the server's own network in production (server-side request forgery)."""

from __future__ import annotations

import pytest

from core.spend.channels import DeliveryFailed, post_webhook, private_targets_allowed


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.1/hook"])
def test_production_refuses_private_targets(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERLINE_ENV", "production")
    monkeypatch.delenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    assert not private_targets_allowed()
    with pytest.raises(DeliveryFailed, match="private or reserved"):
        post_webhook(url, "secret", {"x": 1}, delivery_id=1, now=0)


def test_outside_production_local_receivers_work_unless_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    monkeypatch.delenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    assert private_targets_allowed()
    monkeypatch.setenv("METERLINE_WEBHOOKS_ALLOW_PRIVATE", "0")
    assert not private_targets_allowed()
