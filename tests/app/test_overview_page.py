"""Overview page: where a customer lands. Numbers with units, periods and time zones; the runway, the
band and expiring credits in plain words; a negative balance and what to do; a dormant account; alerts
and caps offered by role; access."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from streamlit.testing.v1 import AppTest

from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.display import format_date
from core.ledger import lock_accounts, post_usage
from core.metering import ingest_events
from tests.app.harness import metrics, open_page, page_text, shown_table, signed_in
from tests.app.seed import ALICE, BOB, VIVIAN, event

BOREALIS_MARKS = ("Borealis", "777", "27.00", "vault", "key_b")
RUNWAY = "At your current pace, credits last until"


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
    assert spent == "19.00 credits" and "(UTC)" in spent_label  # credits, like the balance beside it
    projected_label, projected = metric(at, "Projected spend by")
    assert projected.endswith(" credits") and "(UTC)" in projected_label
    assert metric(at, RUNWAY)[1]
    assert at.get("vega_lite_chart")  # spend and its projection
    text = page_text(at)
    assert "$" not in "".join(metrics(at).values())
    # What it is projected from, per project and per meter: units in the headers, numbers in cells.
    projects = shown_table(at, 0)
    assert {row["Project"] for row in projects} == {"chatbot", "search"}
    assert {row["Meter"] for row in shown_table(at, 1)} == {"Input tokens", "Requests"}
    band = next(column for column in projects[0] if column.endswith("band (credits)"))
    assert band == "80% band (credits)"
    assert all(" – " in row[band] and "$" not in row[band] for row in projects)
    assert all(cell.count(".") == 1 for row in projects for cell in row[band].split(" – "))  # 2 decimals
    assert "credits" in text


def test_runway_band_and_expiry_read_in_plain_words(portal_url: str) -> None:
    at = signed_in(ALICE)
    glance = [m.value for m in at.markdown]
    runway = next(line for line in glance if "At your current pace" in line)
    assert "your credits last" in runway or "run out today" in runway
    assert "days, at your pace" not in page_text(at)  # not the old jargon
    band = next(line for line in glance if "likely between" in line)
    assert band.startswith(":material/trending_up: This month you will likely spend **")
    assert "80% likely between **" in band and " credits**." in band
    # The band is body text, not a small grey caption.
    assert not any("likely between" in caption.value for caption in at.caption)


def test_expiring_credits_say_how_many_will_be_used_before_they_go(portal_url: str) -> None:
    at = signed_in(ALICE)
    sentence = next(w.value for w in at.warning if "expire" in w.value)
    # 25 promotional credits, 19 spent: 6 left, expiring in five days.
    assert sentence.startswith("6.00 credits of promotional grant #")
    assert "expire in 4 days" in sentence or "expire in 5 days" in sentence
    assert "at your pace you will use" in sentence and "UTC" in sentence
    assert not any("No credits expire" in m.value for m in at.markdown)


def test_no_expiring_credits_is_said_too(portal_url: str) -> None:
    at = open_page(signed_in(BOB), "overview")
    assert any("**No credits expire** in the next 14 days" in m.value for m in at.markdown)


def _overdraw_borealis(url: str) -> None:
    engine = make_engine(url)
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


def test_a_negative_balance_says_what_is_owed_and_what_to_do(portal_url: str) -> None:
    _overdraw_borealis(portal_url)
    at = signed_in(BOB)
    error = " ".join(e.value for e in at.error)
    assert error.startswith("**You owe 50.00 credits**: usage your credits did not cover")  # 777 - 27 - 800
    assert "below zero" not in error and "-50.00" not in error
    assert "pays this off first" in error
    assert "Buy credits to pay it off" in [link.label for link in at.get("page_link")]
    assert metric(at, RUNWAY)[1] == "Ran out"
    assert "Acme" not in page_text(at)


def test_a_viewer_is_offered_neither_buying_nor_setting_alerts(portal_url: str) -> None:
    at = signed_in(VIVIAN)
    info = " ".join(i.value for i in at.info)
    assert "No alert rules or spend caps yet" in info and "owners and admins set them" in info
    assert "Set alerts" not in page_text(at)
    assert not [link for link in at.get("page_link") if "Buy credits" in link.label]


def test_an_owner_is_told_where_to_set_alerts(portal_url: str) -> None:
    at = signed_in(ALICE)
    assert any("Set alerts" in info.value for info in at.info)


def test_a_dormant_account_says_so_where_it_lands(portal_url: str) -> None:
    now = system_clock()
    engine = make_engine(portal_url)
    quiet_since = now - timedelta(days=30)
    with unit_of_work(engine, write=True) as session:
        ingest_events(
            session,
            [event("g1", "acc_globex", "requests", 100, quiet_since, project="old")],
            at=quiet_since + timedelta(hours=1),
            source="seed",
        )
    engine.dispose()
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    assert not at.exception
    note = next(i.value for i in at.info if "No usage for" in i.value)
    zone = ZoneInfo("America/New_York")  # Globex's time zone
    last = quiet_since.astimezone(zone).date()
    assert note.startswith(f"**No usage for {(now.astimezone(zone).date() - last).days} days.**")
    assert f"The last usage was on {format_date(last)}" in note
    assert "See your past usage" in [link.label for link in at.get("page_link")]
    assert not at.get("vega_lite_chart")  # no flat chart of zeros


def test_an_account_without_usage_is_told_what_to_expect(portal_url: str) -> None:
    at = signed_in(ALICE)
    at.selectbox(key="nav.account_pick").set_value("acc_globex").run()
    assert not at.exception
    assert any("nothing to project yet" in info.value for info in at.info)
    assert metric(at, "Spent this period")[1] == "0.00 credits"
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
    assert "27.00 credits" in page_text(bob) and "Acme" not in page_text(bob)
