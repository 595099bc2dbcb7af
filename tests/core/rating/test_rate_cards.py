"""Rate cards on real databases: versions, grandfathering, overrides, idempotent loads."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import Account, Meter
from core.errors import Conflict, ValidationError
from core.rating import AccountPricing, load_rate_book, load_rate_card, load_rate_card_file, price_sheet

CARD_TOML = """
[[meters]]
name = "input_tokens"
unit = "token"
dimensions = ["model", "project", "api_key"]

[card]
key = "standard"
name = "Standard"

[[versions]]
effective_from = "2026-10-01T00:00:00Z"
notes = "Launch"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "3.00"
[[versions.prices]]
meter = "input_tokens"
model = "atlas-mini"
per = 1_000_000
price = "0.50"

[[versions]]
effective_from = "2026-11-15T00:00:00Z"
notes = "Price cut"
[[versions.prices]]
meter = "input_tokens"
per = 1_000_000
price = "2.00"
"""


@pytest.fixture
def card_file(tmp_path: Path) -> Path:
    path = tmp_path / "standard.toml"
    path.write_text(CARD_TOML)
    return path


def _pricing(session, account_id: str) -> AccountPricing:
    account = session.get(Account, account_id)
    return AccountPricing(account.id, account.rate_card_id, account.override_rate_card_id)


def test_event_is_priced_by_the_version_in_force_at_its_timestamp(engine, now, card_file):
    with unit_of_work(engine, write=True) as s:
        report = load_rate_card_file(s, card_file, at=now, allow_backdated=True)
        assert report.versions_added == [1, 2]
        create_account(s, account_id="acc_a", name="A", at=now, rate_card_key="standard")
    with unit_of_work(engine) as s:
        book = load_rate_book(s)
        pricing = _pricing(s, "acc_a")
        input_id = s.scalar(select(Meter.id).where(Meter.name == "input_tokens"))
        late_event = book.quote(pricing, input_id, {"model": "atlas-large"}, now - timedelta(days=10))
        assert late_event is not None and late_event.tiers[0].price_nanos == 3_000_000_000
        current = book.quote(pricing, input_id, {"model": "atlas-large"}, now)
        assert current is not None and current.tiers[0].price_nanos == 2_000_000_000
        # A model-specific price wins over the default; version 2 has none, so the default applies.
        mini_before = book.quote(pricing, input_id, {"model": "atlas-mini"}, now - timedelta(days=10))
        assert mini_before is not None and mini_before.tiers[0].price_nanos == 500_000_000
        assert book.quote(pricing, input_id, {}, now - timedelta(days=400)) is None


def test_reloading_the_same_file_changes_nothing_and_editing_a_version_is_refused(engine, now, card_file):
    with unit_of_work(engine, write=True) as s:
        load_rate_card_file(s, card_file, at=now, allow_backdated=True)
    with unit_of_work(engine, write=True) as s:
        again = load_rate_card_file(s, card_file, at=now, allow_backdated=True)
        assert again.versions_added == [] and again.versions_unchanged == [1, 2]
    card_file.write_text(CARD_TOML.replace('price = "2.00"', 'price = "1.00"'))
    with unit_of_work(engine, write=True) as s, pytest.raises(Conflict) as excinfo:
        load_rate_card_file(s, card_file, at=now, allow_backdated=True)
    assert excinfo.value.field == "versions[1].effective_from"


def test_a_new_version_in_the_past_is_refused_naming_the_field(engine, now, card_file):
    with unit_of_work(engine, write=True) as s, pytest.raises(ValidationError) as excinfo:
        load_rate_card_file(s, card_file, at=now)
    assert excinfo.value.field == "versions[0].effective_from"
    assert excinfo.value.code == "in_past"


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (lambda d: d["versions"][0]["prices"][0].update(price="abc"), "versions[0].prices[0].price"),
        (lambda d: d["versions"][0]["prices"][0].update(meter="nope"), "versions[0].prices[0].meter"),
        (lambda d: d["versions"][0]["prices"][0].update(per=0), "versions[0].prices[0].per"),
        (lambda d: d["versions"][0].update(effective_from="2026-10-01"), "versions[0].effective_from"),
        (lambda d: d.pop("card"), "card.key"),
    ],
)
def test_bad_rate_card_input_names_the_field(engine, now, mutation, field):
    document = tomllib.loads(CARD_TOML)
    mutation(document)
    with unit_of_work(engine, write=True) as s, pytest.raises(ValidationError) as excinfo:
        load_rate_card(s, document, at=now, allow_backdated=True)
    assert excinfo.value.field == field


def test_account_override_wins_and_shows_on_the_price_sheet(engine, now, card_file):
    override = {
        "card": {"key": "acc_big-override", "name": "Big Co contract", "account": "acc_big"},
        "versions": [
            {
                "effective_from": "2026-11-01T00:00:00Z",
                "prices": [{"meter": "input_tokens", "per": 1_000_000, "price": "1.25"}],
            }
        ],
    }
    with unit_of_work(engine, write=True) as s:
        load_rate_card_file(s, card_file, at=now, allow_backdated=True)
        create_account(s, account_id="acc_big", name="Big", at=now, rate_card_key="standard")
        load_rate_card(s, override, at=now, allow_backdated=True)
    with unit_of_work(engine) as s:
        sheet = price_sheet(s, "acc_big", at=now)
        assert sheet.card_key == "standard" and sheet.has_overrides
        assert sheet.current is not None
        default_line = next(line for line in sheet.current.lines if line.match_dimension == "")
        assert default_line.is_override and default_line.tiers == ((None, 1_250_000_000),)
        assert sheet.upcoming == []
