"""The Finance page's margin section (below the roll-forward): a support admin reads revenue,
cost and margin per model; usage without a cost card says so; customers and plain support agents
never reach the page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.clock import system_clock
from core.costs import load_cost_card
from core.db import make_engine, unit_of_work
from core.metering import ingest_events
from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.money_rule import _chart_frames
from tests.app.seed import ALICE

ADMIN = "lead@meterline.test"
AGENT = "agent@meterline.test"

COST_CARD = {
    "card": {"key": "internal", "name": "Cost of serving"},
    "versions": [
        {
            "effective_from": "2026-01-01T00:00:00Z",
            "costs": [
                {"meter": "input_tokens", "per": 1_000_000, "cost": "1.00"},
                {"meter": "input_tokens", "model": "fin-large", "per": 1_000_000, "cost": "1.25"},
            ],
        }
    ],
}


@pytest.fixture
def finance_url(portal_url: str) -> str:
    """The portal's story plus a cost card (no cost for requests) and this hour's fin-large usage."""
    now = system_clock()
    events = [
        {
            "event_id": "fin-1",
            "account_id": "acc_acme",
            "meter": "input_tokens",
            "quantity": 1_000_000,
            "timestamp": now.isoformat(),
            "dimensions": {"model": "fin-large"},
        },
        {
            "event_id": "fin-2",
            "account_id": "acc_acme",
            "meter": "requests",
            "quantity": 100,
            "timestamp": now.isoformat(),
            "dimensions": {"project": "chatbot"},
        },
    ]
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        load_cost_card(session, COST_CARD, at=now - timedelta(days=400), allow_backdated=True)
    with unit_of_work(engine, write=True) as session:
        assert ingest_events(session, events, at=now, source="seed").accepted == 2
    engine.dispose()
    return portal_url


def test_a_support_admin_reads_margin_per_model(finance_url: str) -> None:
    at = open_page(signed_in(ADMIN, roles=["support_admin"]), "finance")
    assert at.title[0].value == "Finance"
    assert any(h.value == "Margin per model" for h in at.subheader)
    (margin,) = [i for i, frame in enumerate(at.dataframe) if "Meter" in frame.value.columns]
    rows = {(row["Meter"], row["Model"]): row for row in table(at, margin)}
    assert rows[("Input tokens", "fin-large")] == {
        "Meter": "Input tokens",
        "Model": "fin-large",
        "Quantity": "1,000,000 tokens",
        "Revenue ($)": "3.00",
        "Cost ($)": "1.25",
        "Margin ($)": "1.75",
        "Margin %": "58.33 %",
    }
    requests = rows[("Requests", "(no model)")]
    assert (requests["Cost ($)"], requests["Margin ($)"], requests["Margin %"]) == ("no cost card", "—", "—")
    assert list(rows)[-1] == ("Total", "")
    assert any("No cost card covers Requests · (no model)" in w.value for w in at.warning)
    (chart,) = at.get("vega_lite_chart")
    frames = _chart_frames(chart)
    (frame,) = frames.values()
    bars = frame[frame["line"] == "Input tokens · fin-large"].set_index("series")
    assert bars.loc["Revenue", "amount"] == "$3.00" and bars.loc["Cost", "amount"] == "$1.25"
    assert set(bars["margin"]) == {"$1.75"}  # every figure in the tooltip is exact text
    tooltip = json.loads(chart.proto.spec)["encoding"]["tooltip"]
    assert [t["field"] for t in tooltip] == ["line", "series", "amount", "margin", "percent"]
    assert "1 credit = $1.00" in page_text(at)


@pytest.mark.parametrize(("email", "claims"), [(ALICE, {}), (AGENT, {"roles": ["support"]})])
def test_customers_and_plain_agents_never_reach_finance(finance_url: str, email: str, claims: dict) -> None:
    at = signed_in(email, **claims)
    with pytest.raises(ValueError):
        at.switch_page("../pages/finance.py")
    assert "fin-large" not in page_text(at) and "Margin" not in page_text(at)
