"""FOCUS export: the month's rows, exact to the nano-credit, on SQLite and PostgreSQL.

Usage is seeded as real traffic (rate cards loaded, events ingested, grants made), so the rows
are checked against what the rater, the rollups and the ledger recorded.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import LedgerEntry, UsageEvent, UsageRollupDaily, UsageRollupHourly
from core.errors import NotFound, ValidationError
from core.ledger import grant_credits, reasons
from core.metering import ingest_events
from core.money import credits_to_nanos
from core.rating import load_rate_card
from core.usage.focus import FOCUS_COLUMNS, focus_csv, focus_file_name, focus_snapshot, parse_month
from tests.core.payments.helpers import MovableClock, paid_checkout_without_events, provider

CARD = """
[[meters]]
name = "input_tokens"
display_name = "Input tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]

[[meters]]
name = "images"
display_name = "Images"
unit = "image"
dimensions = ["model", "project", "api_key"]

[[meters]]
name = "storage"
unit = "GB"
dimensions = ["region"]

[[meters]]
name = "pings"
unit = "ping"

[card]
key = "std"
name = "Standard"

[[versions]]
effective_from = "2026-09-01T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "1.00"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-large"
per = 1_000_000
price = "3.00"
[[versions.prices]]
meter = "images"
tiers = [{ up_to = 10, price = "0.04" }, { price = "0.03" }]
[[versions.prices]]
meter = "storage"
price = "0.20"
[[versions.prices]]
meter = "storage"
region = "eu"
price = "0.10"

[[versions]]
effective_from = "2026-11-15T12:00:00Z"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "1.00"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-large"
per = 1_000_000
price = "2.40"
[[versions.prices]]
meter = "images"
tiers = [{ up_to = 10, price = "0.04" }, { price = "0.03" }]
"""

# acc_vip's own price for atlas-large: 0.002 per 1,000 tokens (2.00 per million; the list price is 3.00).
VIP_CARD = """
[card]
key = "vip"
name = "VIP prices"
account = "acc_vip"

[[versions]]
effective_from = "2026-09-01T00:00:00Z"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-large"
per = 1_000
price = "0.002"
"""

SETUP_AT = datetime(2026, 9, 1, tzinfo=UTC)
NOVEMBER_USAGE = Decimal("12.39")  # the events below that fall in November (UTC), rated


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ingest(
    engine: Engine, when: str, meter: str, quantity: int, account: str = "acc_utc", **dims: str
) -> None:
    """One event, ingested at its own time (its ledger debit is dated then too)."""
    moment = at(when)
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(
            session,
            [
                {
                    "event_id": f"{account}-{when}-{meter}-{quantity}",
                    "account_id": account,
                    "meter": meter,
                    "quantity": quantity,
                    "timestamp": when,
                    "dimensions": dims,
                }
            ],
            at=moment,
        )
    assert result.accepted == 1, result.rejected


@pytest.fixture
def priced(engine: Engine) -> Engine:
    """The standard card, three accounts on it (one in Los Angeles, one with its own prices)."""
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(CARD), at=SETUP_AT, allow_backdated=True)
        for account_id, zone in (("acc_utc", "UTC"), ("acc_la", "America/Los_Angeles"), ("acc_vip", "UTC")):
            create_account(
                session,
                account_id=account_id,
                name=account_id,
                at=SETUP_AT,
                timezone=zone,
                rate_card_key="std",
            )
        load_rate_card(session, tomllib.loads(VIP_CARD), at=SETUP_AT, allow_backdated=True)
    return engine


@pytest.fixture
def seeded(priced: Engine) -> Engine:
    """acc_utc: promotional credits, a discounted purchase, and usage around and inside November."""
    engine = priced
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_utc",
            amount_nanos=credits_to_nanos(5),
            source="promotional",
            at=at("2026-10-20T09:00:00Z"),
            description="Launch promotion",
        )
    ingest(engine, "2026-10-31T23:00:00Z", "input_tokens", 1_000_000, model="atlas-large")  # October: 3.00
    ingest(
        engine,
        "2026-11-01T10:00:00Z",
        "input_tokens",
        1_000_000,
        model="atlas-large",
        project="copilot",
        api_key="key_a",
    )
    ingest(
        engine,
        "2026-11-01T11:00:00Z",
        "input_tokens",
        500_000,
        model="atlas-large",
        project="copilot",
        api_key="key_a",
    )
    ingest(engine, "2026-11-01T23:30:00Z", "images", 8, model="pixel", project="art", api_key="key_b")  # 0.32
    ingest(engine, "2026-11-02T00:30:00Z", "images", 5, model="pixel", project="art", api_key="key_b")  # 0.17
    with unit_of_work(engine, write=True) as session:
        grant_credits(
            session,
            account_id="acc_utc",
            amount_nanos=credits_to_nanos(100),
            source="purchased",
            cost_basis_cents=9_000,
            at=at("2026-11-03T09:00:00Z"),
            description="Annual contract",
        )
    ingest(engine, "2026-11-15T11:00:00Z", "input_tokens", 1_000_000, model="atlas-large")  # 3.00 (v1)
    ingest(engine, "2026-11-15T13:00:00Z", "input_tokens", 1_000_000, model="atlas-large")  # 2.40 (v2)
    ingest(engine, "2026-11-30T23:59:59Z", "input_tokens", 2_000_000, model="mini")  # 2.00
    ingest(engine, "2026-12-01T00:00:00Z", "input_tokens", 1_000_000, model="mini")  # December
    return engine


def export(engine: Engine, account_id: str, month: str) -> list[dict[str, str]]:
    with focus_snapshot(engine) as session:
        data = focus_csv(session, account_id, month, company="Atlas AI")
    text = data.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == FOCUS_COLUMNS
    return list(reader)


def money(row: dict[str, str], column: str) -> Decimal:
    return Decimal(row[column])


def of(rows: list[dict[str, str]], category: str) -> list[dict[str, str]]:
    return [row for row in rows if row["ChargeCategory"] == category]


def test_every_row_has_the_mandatory_columns_for_the_month(seeded: Engine) -> None:
    rows = export(seeded, "acc_utc", "2026-11")
    assert {row["ChargeCategory"] for row in rows} == {"Usage", "Purchase", "Credit"}
    for row in rows:
        assert row["BillingAccountId"] == "acc_utc"
        assert row["BillingCurrency"] == "USD"
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == (
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        )
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]
        for column in ("InvoiceIssuerName", "ProviderName", "PublisherName"):
            assert row[column] == "Atlas AI"
        assert row["ServiceCategory"] == "AI and Machine Learning"
        assert row["ServiceName"]
        for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            assert "." in row[column]  # decimals, written exactly (never 1e-05, never a float's digits)
            Decimal(row[column])


def test_usage_rows_are_one_per_day_meter_and_dimension_values(seeded: Engine) -> None:
    usage = of(export(seeded, "acc_utc", "2026-11"), "Usage")
    first = [row for row in usage if row["ChargePeriodStart"] == "2026-11-01T00:00:00Z"]
    tokens = next(row for row in first if row["SkuId"] == "input_tokens:model=atlas-large")
    assert tokens["ChargePeriodEnd"] == "2026-11-02T00:00:00Z"
    assert tokens["ConsumedQuantity"] == "1500000.0" and tokens["ConsumedUnit"] == "Tokens"
    assert tokens["PricingQuantity"] == "1.5" and tokens["PricingUnit"] == "1000000 Tokens"
    assert tokens["BilledCost"] == tokens["EffectiveCost"] == "4.50"
    assert tokens["ServiceName"] == "atlas-large"
    assert (tokens["SubAccountId"], tokens["SubAccountName"]) == ("copilot", "copilot")
    assert (tokens["ResourceId"], tokens["ResourceType"]) == ("key_a", "API key")
    assert tokens["SkuPriceId"] == "std:v1:input_tokens:model=atlas-large"
    assert tokens["SkuMeter"] == "Input tokens"
    assert tokens["ChargeFrequency"] == "Usage-Based" and tokens["ChargeClass"] == ""
    assert tokens["PricingCurrency"] == "Credits"
    import json

    assert json.loads(tokens["Tags"]) == {
        "meterline/model": "atlas-large",
        "meterline/project": "copilot",
        "meterline/api_key": "key_a",
    }
    assert "3.00 credits per 1,000,000 tokens" in tokens["ChargeDescription"]
    # No model, project or key: no sub account, no resource, no tags.
    last = next(row for row in usage if row["ChargePeriodStart"] == "2026-11-30T00:00:00Z")
    assert (last["ServiceName"], last["SubAccountId"], last["ResourceId"], last["Tags"]) == (
        "mini",
        "",
        "",
        '{"meterline/model":"mini"}',
    )


def test_billed_cost_of_usage_adds_up_to_the_rollups_events_and_ledger_exactly(seeded: Engine) -> None:
    usage = of(export(seeded, "acc_utc", "2026-11"), "Usage")
    billed = sum((money(row, "BilledCost") for row in usage), Decimal(0))
    assert billed == NOVEMBER_USAGE
    start, end = at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")
    with unit_of_work(seeded) as session:
        hourly = session.scalar(
            select(func.sum(UsageRollupHourly.amount_nanos)).where(
                UsageRollupHourly.account_id == "acc_utc",
                UsageRollupHourly.hour_start >= start,
                UsageRollupHourly.hour_start < end,
            )
        )
        daily = session.scalar(  # acc_utc keeps UTC days: its daily rollup agrees
            select(func.sum(UsageRollupDaily.amount_nanos)).where(
                UsageRollupDaily.account_id == "acc_utc",
                UsageRollupDaily.usage_date >= date(2026, 11, 1),
                UsageRollupDaily.usage_date <= date(2026, 11, 30),
            )
        )
        events = session.scalar(
            select(func.sum(UsageEvent.amount_nanos)).where(
                UsageEvent.account_id == "acc_utc",
                UsageEvent.occurred_at >= start,
                UsageEvent.occurred_at < end,
            )
        )
        ledger = session.scalar(
            select(func.sum(LedgerEntry.amount_nanos)).where(
                LedgerEntry.account_id == "acc_utc",
                LedgerEntry.reason == reasons.USAGE,
                LedgerEntry.effective_at >= start,
                LedgerEntry.effective_at < end,
            )
        )
    assert credits_to_nanos(billed) == hourly == daily == events == -ledger
    assert sum((money(row, "PricingCurrencyEffectiveCost") for row in usage), Decimal(0)) == billed


def test_a_price_change_inside_a_day_makes_two_rows_each_with_its_price(seeded: Engine) -> None:
    usage = of(export(seeded, "acc_utc", "2026-11"), "Usage")
    fifteenth = sorted(
        (row for row in usage if row["ChargePeriodStart"] == "2026-11-15T00:00:00Z"),
        key=lambda r: r["SkuPriceId"],
    )
    assert [(r["SkuPriceId"], r["BilledCost"], r["ListUnitPrice"]) for r in fifteenth] == [
        ("std:v1:input_tokens:model=atlas-large", "3.00", "3.00"),
        ("std:v2:input_tokens:model=atlas-large", "2.40", "2.40"),
    ]


def test_list_cost_is_the_card_price_and_contracted_cost_the_accounts_own(seeded: Engine) -> None:
    ingest(seeded, "2026-11-05T08:00:00Z", "input_tokens", 1_000_000, account="acc_vip", model="atlas-large")
    (row,) = of(export(seeded, "acc_vip", "2026-11"), "Usage")
    assert row["PricingUnit"] == "1000 Tokens" and row["PricingQuantity"] == "1000.0"
    assert (row["ListUnitPrice"], row["ListCost"]) == ("0.003", "3.00")
    assert (row["ContractedUnitPrice"], row["ContractedCost"]) == ("0.002", "2.00")
    assert row["BilledCost"] == row["EffectiveCost"] == "2.00"
    assert row["SkuPriceId"] == "vip:v1:input_tokens:model=atlas-large"
    for price, cost in (("ListUnitPrice", "ListCost"), ("ContractedUnitPrice", "ContractedCost")):
        assert money(row, price) * money(row, "PricingQuantity") == money(row, cost)


def test_volume_tiers_show_as_effective_cost_under_contracted_cost(seeded: Engine) -> None:
    usage = of(export(seeded, "acc_utc", "2026-11"), "Usage")
    images = {row["ChargePeriodStart"][:10]: row for row in usage if row["SkuId"] == "images"}
    assert images["2026-11-01"]["BilledCost"] == images["2026-11-01"]["ContractedCost"] == "0.32"
    second = images["2026-11-02"]  # 2 images at 0.04, then 3 past the first tier at 0.03
    assert (second["BilledCost"], second["ContractedCost"], second["ContractedUnitPrice"]) == (
        "0.17",
        "0.20",
        "0.04",
    )
    assert second["PricingUnit"] == "Images" and second["PricingQuantity"] == "5.0"
    assert '"UnitPrice":"0.03"' in second["SkuPriceDetails"]


def test_a_price_the_rollups_cannot_tell_apart_or_no_price_gives_no_unit_price(priced: Engine) -> None:
    ingest(priced, "2026-11-05T08:00:00Z", "storage", 3, region="eu")  # priced by region: 0.30
    ingest(priced, "2026-11-05T09:00:00Z", "pings", 7)  # no card prices pings
    rows = {row["SkuId"]: row for row in export(priced, "acc_utc", "2026-11")}
    storage, pings = rows["storage"], rows["pings"]
    assert storage["SkuPriceId"] == "std:v1:storage" and storage["BilledCost"] == "0.30"
    assert storage["ListUnitPrice"] == storage["ContractedUnitPrice"] == ""
    assert storage["ListCost"] == storage["ContractedCost"] == "0.30"
    assert (storage["ConsumedUnit"], storage["PricingUnit"], storage["PricingQuantity"]) == (
        "GB",
        "GB",
        "3.0",
    )
    assert pings["SkuPriceId"] == "pings:unpriced" and pings["ConsumedQuantity"] == "7.0"
    assert pings["BilledCost"] == pings["ListCost"] == pings["ContractedCost"] == "0.00"


def test_purchases_and_promotional_credits_have_their_own_categories(seeded: Engine) -> None:
    rows = export(seeded, "acc_utc", "2026-11")
    (bought,) = of(rows, "Purchase")
    assert bought["ChargePeriodStart"] == "2026-11-03T00:00:00Z" and bought["ChargeFrequency"] == "One-Time"
    assert (bought["BilledCost"], bought["ContractedCost"], bought["ListCost"]) == (
        "90.00",
        "90.00",
        "100.00",
    )
    assert bought["EffectiveCost"] == "0.00"  # it pays for later usage, whose rows carry the cost
    assert (bought["PricingQuantity"], bought["PricingUnit"]) == ("100.0", "Credits")
    assert (bought["ListUnitPrice"], bought["ContractedUnitPrice"]) == ("1.00", "0.90")
    assert bought["ResourceId"].startswith("grant:") and bought["ResourceName"] == "Annual contract"
    assert bought["PricingCurrency"] == "USD"
    # The 5 promotional credits: 3.00 paid for October's last hour, the other 2.00 for Nov 1.
    (applied,) = of(rows, "Credit")
    assert applied["ChargePeriodStart"] == "2026-11-01T00:00:00Z"
    assert applied["BilledCost"] == applied["EffectiveCost"] == applied["ListCost"] == "-2.00"
    assert "Launch promotion" in applied["ChargeDescription"]
    october_credit = of(export(seeded, "acc_utc", "2026-10"), "Credit")
    assert [row["BilledCost"] for row in october_credit] == ["-3.00"]


def test_a_day_is_a_utc_day_for_an_account_in_another_timezone(seeded: Engine) -> None:
    # 03:00 UTC on Nov 1 is Oct 31 in Los Angeles: the account's daily rollup says October.
    ingest(seeded, "2026-11-01T03:00:00Z", "input_tokens", 1_000_000, account="acc_la")
    (row,) = export(seeded, "acc_la", "2026-11")
    assert (row["ChargePeriodStart"], row["BilledCost"]) == ("2026-11-01T00:00:00Z", "1.00")
    assert export(seeded, "acc_la", "2026-10") == []
    with unit_of_work(seeded) as session:
        day = session.scalar(
            select(UsageRollupDaily.usage_date).where(UsageRollupDaily.account_id == "acc_la")
        )
    assert day == date(2026, 10, 31)


def test_a_price_version_starting_inside_an_hour_splits_that_hour(priced: Engine) -> None:
    with unit_of_work(priced, write=True) as session:
        load_rate_card(
            session,
            {
                "card": {"key": "std", "name": "Standard"},
                "versions": [
                    {
                        "effective_from": "2026-11-20T10:30:00Z",
                        "prices": [
                            {"meter": "input_tokens", "per": 1_000_000, "price": "1.00"},
                            {
                                "meter": "input_tokens",
                                "model": "atlas-large",
                                "per": 1_000_000,
                                "price": "2.00",
                            },
                        ],
                    }
                ],
            },
            at=SETUP_AT,
            allow_backdated=True,
        )
    ingest(priced, "2026-11-20T10:10:00Z", "input_tokens", 1_000_000, model="atlas-large")  # 2.40, v2
    ingest(priced, "2026-11-20T10:50:00Z", "input_tokens", 1_000_000, model="atlas-large")  # 2.00, v3
    rows = sorted(export(priced, "acc_utc", "2026-11"), key=lambda row: row["SkuPriceId"])
    assert [(row["SkuPriceId"], row["BilledCost"], row["ContractedUnitPrice"]) for row in rows] == [
        ("std:v2:input_tokens:model=atlas-large", "2.40", "2.40"),
        ("std:v3:input_tokens:model=atlas-large", "2.00", "2.00"),
    ]


def test_a_refund_in_a_later_month_is_a_correction_of_the_purchase(engine: Engine) -> None:
    bought_at = at("2026-11-20T12:00:00Z")
    payments, _top_up_id, _session_id, intent_id = paid_checkout_without_events(
        engine, bought_at, delivery="sync"
    )
    (purchase,) = of(export(engine, "acc_pay", "2026-11"), "Purchase")
    assert purchase["BilledCost"] == "25.00" and purchase["ChargeClass"] == ""
    assert isinstance(payments.clock, MovableClock)
    payments.clock.advance(timedelta(days=15))  # December 5
    provider(payments).refund(intent_id, 1_000)
    (refund,) = export(engine, "acc_pay", "2026-12")
    assert (refund["ChargeCategory"], refund["ChargeClass"]) == ("Purchase", "Correction")
    assert refund["BilledCost"] == refund["ListCost"] == "-10.00" and refund["EffectiveCost"] == "0.00"
    assert refund["PricingQuantity"] == "-10.0"
    assert refund["ChargePeriodStart"] == "2026-11-20T00:00:00Z"  # the purchase it corrects
    assert refund["BillingPeriodStart"] == "2026-12-01T00:00:00Z"
    assert of(export(engine, "acc_pay", "2026-11"), "Purchase") == [purchase]


def test_a_month_without_charges_is_the_header_alone(seeded: Engine) -> None:
    with focus_snapshot(seeded) as session:
        data = focus_csv(session, "acc_utc", "2026-08")
    assert data.decode().splitlines() == [",".join(FOCUS_COLUMNS)]


def test_december_ends_at_the_new_year_and_january_starts_there(priced: Engine) -> None:
    ingest(priced, "2026-12-31T23:30:00Z", "input_tokens", 1_000_000, model="mini")
    ingest(priced, "2027-01-01T00:10:00Z", "input_tokens", 3_000_000, model="mini")
    (december,) = export(priced, "acc_utc", "2026-12")
    assert december["BillingPeriodEnd"] == december["ChargePeriodEnd"] == "2027-01-01T00:00:00Z"
    assert december["BilledCost"] == "1.00"
    (january,) = export(priced, "acc_utc", "2027-01")
    assert (january["BillingPeriodStart"], january["ChargePeriodStart"]) == ("2027-01-01T00:00:00Z",) * 2
    assert (january["BillingPeriodEnd"], january["BilledCost"]) == ("2027-02-01T00:00:00Z", "3.00")


def test_text_a_customer_sent_cannot_become_a_spreadsheet_formula(priced: Engine) -> None:
    ingest(priced, "2026-11-02T10:00:00Z", "input_tokens", 1_000, project='=HYPERLINK("x")', api_key="@key")
    (row,) = export(priced, "acc_utc", "2026-11")
    assert row["SubAccountId"] == '\'=HYPERLINK("x")' and row["ResourceId"] == "'@key"
    assert row["BilledCost"] == "0.001"


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026-11-01",
        "",
        " 2026-11",
        "２０２６-11",
        "0000-01",
        "9999-12",
        None,
        202611,
    ],
)
def test_a_month_that_is_not_yyyy_mm_is_refused_naming_month(month: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_month(month)
    assert refused.value.field == "month"


def test_an_unknown_account_is_not_found(priced: Engine) -> None:
    with focus_snapshot(priced) as session, pytest.raises(NotFound) as missing:
        focus_csv(session, "acc_nobody\udcff", "2026-11")
    assert missing.value.field == "account_id"


def test_the_file_name_says_account_and_month() -> None:
    assert focus_file_name("acc_utc", "2026-11") == "focus_acc_utc_2026-11.csv"


@pytest.fixture
def cli_database(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = seeded.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("METERLINE_COMPANY_NAME", "Atlas  AI ")
    yield url


def test_cli_writes_the_csv_to_stdout(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    assert main(["export", "focus", "--account", "acc_utc", "--month", "2026-11"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert sum((money(row, "BilledCost") for row in of(rows, "Usage")), Decimal(0)) == NOVEMBER_USAGE
    assert {row["InvoiceIssuerName"] for row in rows} == {"Atlas AI"}


def test_cli_refuses_a_bad_month_naming_it(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    assert main(["export", "focus", "--account", "acc_utc", "--month", "2026-13"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "(month)" in captured.err
