"""Overview page: where a customer lands. Numbers with units, periods and time zones; the runway;
expiring credits with the expected use; a negative balance and what to do; alerts and caps; access."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.ledger import lock_accounts, post_usage
from tests.app.harness import metrics, open_page, page_text, signed_in, table
from tests.app.seed import ALICE, BOB, VIVIAN

BOREALIS_MARKS = ("Borealis", "777", "$27.00", "vault", "key_b")


def metric(at: AppTest, starts: str) -> tuple[str, str]:
    label = next(label for label in metrics(at) if label.startswith(starts))
    return label, metrics(at)[label]


def test_the_portal_lands_on_the_overview(portal_url: str) -> None:
    at = signed_in(ALICE)
    assert at.title[0].value == "Overview"
    assert "Acme Robotics" in page_text(at)


def test_numbers_carry_units_periods_and_time_zones(portal_url: str) -> None:
    at = signed_in(ALICE)
    balance_label, balance = metric(at, "Balance (as of")
    assert balance == "106.00 credits" and balance_label.endswith("UTC)")  # 100 + 25 - 19 of usage
    spent_label, spent = metric(at, "Spent this period")
    assert spent == "$19.00" and "(UTC)" in spent_label
    projected_label, projected = metric(at, "Projected spend by")
    assert projected.startswith("$") and "(UTC)" in projected_label
    runway_label, runway = metric(at, "Credits run out")
    assert "UTC days" in runway_label and runway
    text = page_text(at)
    assert "80% band" in text and "credits" in text
    # What it is projected from, in dollars with a band, per project and per meter.
    projects = {row["Project"] for row in table(at, 0)}
    assert projects == {"chatbot", "search"}
    meters = {row["Meter"] for row in table(at, 1)}
    assert meters == {"Input tokens", "Requests"}
    assert all(row["80% band"].count("$") == 2 for row in table(at, 0))


def test_expiring_credits_say_how_many_will_be_used_before_they_go(portal_url: str) -> None:
    at = signed_in(ALICE)
    sentence = next(w.value for w in at.warning if "expire" in w.value)
    # 25 promotional credits, 19 spent: 6 left, expiring in five days.
    assert sentence.startswith("6.00 credits of promotional grant #")
    assert "expire in 4 days" in sentence or "expire in 5 days" in sentence
    assert "at your pace you will use" in sentence and "UTC" in sentence


def test_a_negative_balance_says_what_to_do(portal_url: str) -> None:
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
    at = signed_in(BOB)
    error = " ".join(e.value for e in at.error)
    assert "balance is negative" in error and "$50.00 (50.00 credits)" in error  # 777 - 27 - 800
    assert "Buy credits" in error and "pays this off first" in error
    assert metric(at, "Credits run out")[1] == "Ran out"
    assert "Acme" not in page_text(at)


def test_alerts_and_caps_section_says_where_to_set_them(portal_url: str) -> None:
    at = signed_in(VIVIAN)
    assert any("No alert rules or spend caps yet" in info.value for info in at.info)


def test_an_account_without_usage_is_told_what_to_expect(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    assert not at.exception
    assert any("nothing to project yet" in info.value for info in at.info)
    assert metric(at, "Spent this period")[1] == "$0.00"
    assert "America/New_York" in page_text(at)


def test_a_customer_sees_only_their_own_accounts(portal_url: str) -> None:
    at = signed_in(ALICE)
    text = page_text(at)
    assert not [mark for mark in BOREALIS_MARKS if mark in text]
    # A tampered session pointing at another customer's account shows nothing of it.
    at.session_state["nav.account_id"] = "acc_borealis"
    at.run()
    assert not at.exception
    text = page_text(at)
    assert not [mark for mark in BOREALIS_MARKS if mark in text]
    assert "Acme Robotics" in text
    # And Bob, on his own account, sees it and nothing of Acme.
    bob = open_page(signed_in(BOB), "overview")
    assert "$27.00" in page_text(bob) and "Acme" not in page_text(bob)
