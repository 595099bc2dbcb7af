"""Buy credits, auto-recharge "bring the balance back to a target" (AppTest, SQLite and PostgreSQL):
the choice, the target field, the plain explanation, and a target not above the threshold named."""

from __future__ import annotations

from sqlalchemy import select

from core.db import make_engine, unit_of_work
from core.db.models import AutoRecharge
from tests.app.harness import as_read, open_page, page_text, signed_in
from tests.app.seed import ALICE, VIVIAN
from tests.app.test_buy_credits_page import _save_card, sandbox_events_at_once  # noqa: F401


def _settings(url: str) -> AutoRecharge:
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            settings = session.scalar(select(AutoRecharge).where(AutoRecharge.account_id == "acc_acme"))
            assert settings is not None
            return settings
    finally:
        engine.dispose()


def _field(at, label: str):  # type: ignore[no-untyped-def]
    return next(t for t in at.text_input if t.label == label)


def _save(at) -> None:  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == "Save auto-recharge").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_owner_chooses_back_to_a_target_and_reads_it_in_plain_words(portal_url: str) -> None:
    _save_card(portal_url)  # fixed: below 10 credits buy $100, at most $500 a month
    at = open_page(signed_in(ALICE), "buy_credits")
    mode = at.radio(key="buy.recharge_mode")
    assert mode.options == ["A fixed amount", "What brings the balance back to a target"]
    assert mode.value == "fixed"
    _field(at, "When the balance falls below (credits)").set_value("20")
    _field(at, "Monthly maximum (dollars)").set_value("1,000.00")
    mode.set_value("target")
    _field(at, "Bring the balance back to (credits)").set_value("100")
    _save(at)
    assert not at.error, [e.value for e in at.error]
    settings = _settings(portal_url)
    assert (settings.mode, settings.target_nanos, settings.threshold_nanos) == (
        "target",
        100 * 10**9,
        20 * 10**9,
    )
    status = " ".join(as_read(s.value) for s in at.success)
    assert (
        "When your balance falls below 20.00 credits, buy what brings it back to 100.00 credits, "
        "$5.00 to $1,000.00 per charge" in status
    )
    again = open_page(signed_in(ALICE), "buy_credits")  # a new visit: the form shows what is saved
    assert again.radio(key="buy.recharge_mode").value == "target"
    assert _field(again, "Bring the balance back to (credits)").value == "100.00"


def test_a_target_not_above_the_threshold_is_named(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    _field(at, "When the balance falls below (credits)").set_value("50")
    at.radio(key="buy.recharge_mode").set_value("target")
    _field(at, "Bring the balance back to (credits)").set_value("50")
    _save(at)
    (error,) = [as_read(e.value) for e in at.error]
    assert error.startswith("Bring the balance back to (credits): ")
    assert "greater than the threshold of 50.00 credits" in error
    assert _settings(portal_url).mode == "fixed"  # nothing saved


def test_a_missing_target_is_named(portal_url: str) -> None:
    _save_card(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.recharge_mode").set_value("target")
    _save(at)
    (error,) = [as_read(e.value) for e in at.error]
    assert error.startswith("Bring the balance back to (credits): ")


def test_the_balance_says_when_it_is_from(portal_url: str) -> None:
    at = open_page(signed_in(VIVIAN), "buy_credits")
    assert "as of " in page_text(at)
