"""Balance & credits page: the balance once, grants with remaining and expiry, the ledger by
event (numbers by the display rule, times with zones, readable references), what is owed in plain
words, "Buy credits" only for those who may buy, empty ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.ledger import grant_credits, lock_accounts, post_usage
from core.money import credits_to_nanos
from tests.app.harness import metrics, open_page, page_text, shown_table, signed_in, table
from tests.app.seed import ALICE, BOB, VIVIAN

GRANTS, LEDGER = 0, 1


def test_the_balance_is_shown_once_in_credits(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    shown = metrics(at)
    # 100 purchased + 25 promotional - 19 of usage.
    balance = next(label for label in shown if label.startswith("Balance, as of"))
    assert shown[balance] == "106.00 credits"
    assert "$106.00" not in shown.values()  # not the same figure twice while a credit is $1.00
    assert any("1 credit = $1.00" in (m.help or "") for m in at.metric)
    assert shown["Expiring within 14 days"] == "6.00 credits"
    assert any(label.startswith("Used this period") for label in shown)


def test_grants_with_remaining_original_and_expiry_warning(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    grants = table(at, GRANTS)
    # Promotional burns first (priority), so it is listed first and 19 of its 25 are spent.
    assert [(g["Source"], g["Remaining (credits)"], g["Original (credits)"]) for g in grants] == [
        ("Promotional", Decimal(6), Decimal(25)),
        ("Purchased", Decimal(100), Decimal(100)),
    ]
    assert grants[1]["Expires"] == "Never"
    assert "· in 4 days" in grants[0]["Expires"] or "· in 5 days" in grants[0]["Expires"]
    columns = list(at.dataframe[GRANTS].value.columns)
    assert columns[1:3] == ["Remaining (credits)", "Expires"]  # on screen on a phone
    assert any("expire on" in warning.value and "6.00 credits" in warning.value for warning in at.warning)
    # As read: two decimals, the unit in the header (the values underneath stay exact, and sort).
    assert [(g["Remaining (credits)"], g["Original (credits)"]) for g in shown_table(at, GRANTS)] == [
        ("6.00", "25.00"),
        ("100.00", "100.00"),
    ]


def test_ledger_reads_as_events_with_zones_and_words(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    ledger = table(at, LEDGER)
    reasons = [row["What happened"] for row in ledger]
    assert reasons.count("Credits added") == 2
    assert "Usage" in reasons
    assert ledger[0]["Balance after (credits)"] == Decimal(106)
    assert all(not row["Reference"].startswith(("batch:", "grant:")) for row in ledger)
    assert any(row["Reference"].startswith("Usage batch ") for row in ledger)
    assert "Credits from" not in ledger[0]  # which grant paid is a detail of the row, not a column
    frame = at.dataframe[LEDGER].value
    assert str(frame["When"].dtype).startswith("datetime64") and "UTC" in str(frame["When"].dtype)
    assert sum(row["Change (credits)"] for row in ledger) == Decimal(106)
    shown = shown_table(at, LEDGER)
    assert shown[0]["Balance after (credits)"] == "106.00"
    assert {row["Change (credits)"] for row in shown} >= {"100.00", "25.00"}
    assert any(button.label.startswith("Download ledger CSV") for button in at.get("download_button"))


def test_a_negative_balance_paid_off_reads_as_one_event(portal_url: str) -> None:
    engine = make_engine(portal_url)
    now = system_clock()
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_borealis"])["acc_borealis"]
        post_usage(
            session,
            account=account,
            amount_nanos=800 * 10**9,
            at=now - timedelta(minutes=2),
            reference="batch:test",
        )
    engine.dispose()
    at = open_page(signed_in(BOB), "balance")
    assert "-50.00 credits" in metrics(at).values()  # 777 - 27 - 800
    warning = " ".join(w.value for w in at.warning)
    assert warning.startswith("**You owe 50.00 credits**: usage your credits did not cover")
    assert (
        "The next purchase of credits, or a grant from your account manager, pays this off first" in warning
    )
    assert "Acme" not in page_text(at)

    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_borealis",
            amount_nanos=credits_to_nanos("80"),
            source="goodwill",
            at=now - timedelta(minutes=1),
        )
    engine.dispose()
    at.run()  # the live part reads again
    ledger = table(at, LEDGER)
    assert (
        ledger[0]["What happened"] == "Credits added, 50.00 credits of them paying off the negative balance"
    )
    assert ledger[0]["Change (credits)"] == Decimal(80)
    assert ledger[0]["Balance after (credits)"] == Decimal(30)
    assert not any(row["Change (credits)"] == Decimal(50) for row in ledger)  # no +50 / -50 pair


def test_empty_ledger_says_what_to_do(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    at = open_page(at, "balance")
    assert "0.00 credits" in metrics(at).values()
    assert any("No credits yet and no usage charged for Globex Labs" in info.value for info in at.info)
    assert "POST /api/v1/events" not in page_text(at)


def test_a_viewer_is_not_offered_to_buy_credits(portal_url: str) -> None:
    at = open_page(signed_in(VIVIAN), "balance")
    assert "balance.buy" not in [b.key for b in at.button]
    assert "106.00 credits" in metrics(at).values()  # and sees everything else


def test_an_owner_is_offered_to_buy_credits(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    assert at.button(key="balance.buy").label == "Buy credits"
