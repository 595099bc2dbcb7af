"""Balance & credits page: balance in credits and money, grants with expiry warnings, ledger, deficit."""

from __future__ import annotations

from datetime import timedelta

from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.ledger import lock_accounts, post_usage
from tests.app.harness import metrics, open_page, page_text, signed_in, table
from tests.app.seed import ALICE, BOB


def test_balance_in_credits_and_money(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    shown = metrics(at)
    # 100 purchased + 25 promotional - 19 of usage.
    assert any(
        label.startswith("Balance (as of") and value == "106.00 credits" for label, value in shown.items()
    )
    assert any("1 credit = $1.00" in label and value == "$106.00" for label, value in shown.items())


def test_grants_with_remaining_original_and_expiry_warning(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    grants = table(at, 0)
    # Promotional burns first (priority), so it is listed first and 19 of its 25 are spent.
    assert [(g["Source"], g["Remaining"], g["Original"]) for g in grants] == [
        ("Promotional", "6.00 credits", "25.00 credits"),
        ("Purchased", "100.00 credits", "100.00 credits"),
    ]
    assert "Never expires" in grants[1]["Expires"]
    assert "(in 4 days)" in grants[0]["Expires"] or "(in 5 days)" in grants[0]["Expires"]
    assert any("expire" in warning.value and "6.00 credits" in warning.value for warning in at.warning)


def test_ledger_explains_every_change(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    ledger = table(at, 1)
    reasons = [row["What happened"] for row in ledger]
    assert reasons.count("Credits added") == 2
    assert "Usage" in reasons
    assert ledger[0]["Balance after"] == "106.00 credits"
    assert all(row["Credits from"] for row in ledger)
    assert any(button.label.startswith("Download ledger CSV") for button in at.get("download_button"))


def test_negative_balance_is_explained(portal_url: str) -> None:
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_borealis"])["acc_borealis"]
        post_usage(
            session,
            account=account,
            amount_nanos=800 * 10**9,
            at=system_clock() - timedelta(minutes=1),
            reference="batch:test",
        )
    engine.dispose()
    at = open_page(signed_in(BOB), "balance")
    assert "-50.00 credits" in metrics(at).values()  # 777 - 27 - 800
    warning = " ".join(w.value for w in at.warning)
    assert "negative" in warning and "next top-up" in warning
    assert "Acme" not in page_text(at)


def test_empty_ledger_says_what_to_do(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    at = open_page(at, "balance")
    assert "0.00 credits" in metrics(at).values()
    assert any("ledger is empty" in info.value for info in at.info)
