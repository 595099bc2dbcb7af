"""FOCUS export: an account's costs for one calendar month (UTC) in the FinOps Open Cost and Usage
Specification, as CSV.

Contract of the entry points (the CLI, the Usage page and ``GET /api/v1/costs?format=focus``):

- ``focus_csv(session, account_id, month)`` returns the whole file as UTF-8 bytes;
  ``write_focus_csv(session, account_id, month, out)`` writes it to a text stream.
- ``month`` is ``"YYYY-MM"`` (a calendar month in UTC); anything else raises
  ``ValidationError(field="month")``. An unknown account raises ``NotFound(field="account_id")``.
  Who may read the account is the caller's decision (``core.accounts.require_access``).
- The rows come from several tables: on PostgreSQL call it inside one snapshot
  (``focus_snapshot(engine)``) so usage, credits and purchases agree while writers run.
- The file always has the header (``FOCUS_COLUMNS``); a month without charges has no rows.

Rows: **Usage** (one per UTC day, meter, model, project, API key and rate card price),
**Purchase** (credits bought; refunds and lost disputes of them, negative) and **Credit**
(promotional and goodwill credits applied to usage, negative); see ``core.usage.focus_charges``
and the column mapping in docs/focus.md. Money is exact: costs are the ledger's nano-credits
written as decimals (1 credit = 1 USD), never through a float. ``BilledCost`` of the Usage rows
sums to the month's rated usage exactly.

The file carries the FOCUS 1.0 columns and the 1.1/1.2 columns that apply (service subcategory,
SKU meter and price details, pricing currency). Decimal cells always have a decimal point
("150000.0", "3.00"): readers that guess types from the text (pandas, and so the FinOps
Foundation's validator) then read every numeric column as a decimal number.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from fractions import Fraction
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts.service import find_account, shown_id
from core.db import unit_of_work
from core.db.engine import is_postgres
from core.db.models import Account
from core.errors import NotFound, ValidationError
from core.money import CURRENCY
from core.usage.exports import neutralize_formula
from core.usage.focus_charges import (
    Charge,
    Month,
    credit_charges,
    purchase_charges,
    usage_charges,
)
from core.usage.focus_prices import exact_decimal

FOCUS_VERSION = "1.2"
DEFAULT_COMPANY_NAME = "Meterline"
COMPANY_NAME_SETTING = "METERLINE_COMPANY_NAME"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"

# FOCUS 1.0 columns, then the 1.1 and 1.2 columns that apply to Meterline.
FOCUS_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    # 1.1
    "ServiceSubcategory",
    "SkuMeter",
    "SkuPriceDetails",
    # 1.2
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
)

# Decimal columns: money (at least two decimal places) and quantities (at least one). They are
# numbers, so a negative cost's leading "-" is not neutralised like a formula in a text cell.
MONEY_COLUMNS = frozenset(
    {
        "BilledCost",
        "ContractedCost",
        "ContractedUnitPrice",
        "EffectiveCost",
        "ListCost",
        "ListUnitPrice",
        "PricingCurrencyContractedUnitPrice",
        "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice",
    }
)
QUANTITY_COLUMNS = frozenset({"ConsumedQuantity", "PricingQuantity"})
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
CATEGORY_ORDER = {"Usage": 0, "Purchase": 1, "Credit": 2}

Cell = str | None


def parse_month(month: object) -> Month:
    """The calendar month ``"YYYY-MM"`` in UTC; anything else is a ValidationError naming ``month``."""
    text = month if isinstance(month, str) else ""
    found = _MONTH.fullmatch(text)
    if found is None:
        raise ValidationError("month must be a calendar month written YYYY-MM, e.g. 2026-11", field="month")
    year, number = int(found.group(1)), int(found.group(2))
    if not 1 <= number <= 12:
        raise ValidationError(f"month {text}: months run from 01 to 12", field="month")
    if not 1970 <= year <= 9998:
        raise ValidationError(f"month {text}: the year must be between 1970 and 9998", field="month")
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else datetime(year, number + 1, 1, tzinfo=UTC)
    return Month(text, start, end)


def company_name(env: Mapping[str, str] | None = None) -> str:
    """Who issues the bills and provides the API: ``METERLINE_COMPANY_NAME``, else "Meterline"."""
    source = os.environ if env is None else env
    return " ".join(source.get(COMPANY_NAME_SETTING, "").split())[:200] or DEFAULT_COMPANY_NAME


@contextmanager
def focus_snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session that sees one snapshot (REPEATABLE READ on PostgreSQL; SQLite's read
    transaction is one already): the export's queries then agree with each other."""
    bind = engine
    if is_postgres(engine):
        bind = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with unit_of_work(bind) as session:
        yield session


def _decimal_text(value: Fraction, min_places: int) -> str:
    exact = exact_decimal(value)
    if exact is None:  # every charge is built from finite decimals; a bug if not
        raise AssertionError(f"{value} has no finite decimal form")
    text = format(exact, "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}"


def _money(value: Fraction | None) -> Cell:
    return None if value is None else _decimal_text(value, 2)


def _quantity(value: Fraction | int | None) -> Cell:
    return None if value is None else _decimal_text(Fraction(value), 1)


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Mapping[str, object]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _row(charge: Charge, account: Account, month: Month, company: str) -> dict[str, Cell]:
    return {
        "AvailabilityZone": None,
        "BilledCost": _money(charge.billed),
        "BillingAccountId": account.id,
        "BillingAccountName": account.name,
        "BillingCurrency": CURRENCY,
        "BillingPeriodEnd": _moment(month.end),
        "BillingPeriodStart": _moment(month.start),
        "ChargeCategory": charge.category,
        "ChargeClass": charge.charge_class,
        "ChargeDescription": charge.description,
        "ChargeFrequency": charge.frequency,
        "ChargePeriodEnd": _moment(charge.period_end),
        "ChargePeriodStart": _moment(charge.period_start),
        "CommitmentDiscountCategory": None,
        "CommitmentDiscountId": None,
        "CommitmentDiscountName": None,
        "CommitmentDiscountStatus": None,
        "CommitmentDiscountType": None,
        "ConsumedQuantity": _quantity(charge.consumed_quantity),
        "ConsumedUnit": charge.consumed_unit,
        "ContractedCost": _money(charge.contracted_cost),
        "ContractedUnitPrice": _money(charge.contracted_unit_price),
        "EffectiveCost": _money(charge.effective),
        "InvoiceIssuerName": company,
        "ListCost": _money(charge.list_cost),
        "ListUnitPrice": _money(charge.list_unit_price),
        "PricingCategory": charge.pricing_category,
        "PricingQuantity": _quantity(charge.pricing_quantity),
        "PricingUnit": charge.pricing_unit,
        "ProviderName": company,
        "PublisherName": company,
        "RegionId": None,
        "RegionName": None,
        "ResourceId": charge.resource_id,
        "ResourceName": charge.resource_name,
        "ResourceType": charge.resource_type,
        "ServiceCategory": SERVICE_CATEGORY,
        "ServiceName": charge.service_name,
        "SkuId": charge.sku_id,
        "SkuPriceId": charge.sku_price_id,
        "SubAccountId": charge.sub_account,
        "SubAccountName": charge.sub_account,
        "Tags": _json(charge.tags),
        "ServiceSubcategory": SERVICE_SUBCATEGORY,
        "SkuMeter": charge.sku_meter,
        "SkuPriceDetails": None if charge.sku_price_details is None else _json(charge.sku_price_details),
        "PricingCurrency": charge.pricing_currency,
        "PricingCurrencyContractedUnitPrice": _money(charge.contracted_unit_price),
        "PricingCurrencyEffectiveCost": _money(charge.effective),
        "PricingCurrencyListUnitPrice": _money(charge.list_unit_price),
    }


def focus_rows(
    session: Session, account_id: str, month: str, *, company: str | None = None
) -> list[dict[str, Cell]]:
    """The export's rows, each a dict over ``FOCUS_COLUMNS`` (text as written, None for null)."""
    period = parse_month(month)
    account = find_account(session, account_id)
    if account is None:
        raise NotFound(f"account {shown_id(str(account_id))} does not exist", field="account_id")
    charges = [
        *usage_charges(session, account, period),
        *purchase_charges(session, account.id, period),
        *credit_charges(session, account.id, period),
    ]
    charges.sort(key=lambda charge: (charge.period_start, CATEGORY_ORDER[charge.category]))
    issuer = company or company_name()
    return [_row(charge, account, period, issuer) for charge in charges]


def write_focus_csv(
    session: Session, account_id: str, month: str, out: TextIO, *, company: str | None = None
) -> int:
    """Write the export to ``out`` (header first); returns the number of rows after the header."""
    rows = focus_rows(session, account_id, month, company=company)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FOCUS_COLUMNS)
    for row in rows:
        cells = []
        for column in FOCUS_COLUMNS:
            value = row[column]
            if value is None:
                cells.append("")
            elif column in MONEY_COLUMNS or column in QUANTITY_COLUMNS:
                cells.append(value)  # a negative cost is a number, not a formula
            else:
                cells.append(str(neutralize_formula(value)))
        writer.writerow(cells)
    return len(rows)


def focus_csv(session: Session, account_id: str, month: str, *, company: str | None = None) -> bytes:
    """The export as UTF-8 CSV bytes (see the module doc for the contract)."""
    out = io.StringIO()
    write_focus_csv(session, account_id, month, out, company=company)
    return out.getvalue().encode("utf-8")


def focus_file_name(account_id: str, month: str) -> str:
    """The download's name: ``focus_acc_x_2026-11.csv``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)[:64]
    return f"focus_{safe}_{parse_month(month).label}.csv"
