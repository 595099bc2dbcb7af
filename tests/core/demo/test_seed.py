"""The demo seed tells its story on both databases, through the core's own commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import accounts_for_user
from core.db import unit_of_work
from core.db.models import Account, CreditGrant, LedgerEntry, RateCardVersion, UsageEvent
from core.demo import seed_demo
from core.demo.seed import DORMANT, ENTERPRISE, OVERDRAWN, STARTUP
from core.ledger import check_ledger, reasons
from core.money import credits_to_nanos
from tests.conftest import NOW
from tests.core.demo.conftest import Seeded

# One worker seeds once per database and runs every check on that seed (make test uses
# --dist loadscope, which keeps a module on one worker; the group is for --dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo_seed")


def _spent_nanos(engine: Engine, account_id: str, since_days: int) -> int:
    with unit_of_work(engine) as session:
        total = session.scalar(
            select(func.coalesce(func.sum(UsageEvent.amount_nanos), 0)).where(
                UsageEvent.account_id == account_id,
                UsageEvent.occurred_at >= NOW - timedelta(days=since_days),
            )
        )
    return int(total or 0)


def test_seeded_ledger_passes_the_check(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems
    assert report.accounts_checked == 4
    assert 30_000 <= seeded.story.events <= 60_000


def test_startup_burns_fast_and_tops_up(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        balance = session.get(Account, STARTUP).balance_nanos
        top_ups = session.scalar(
            select(func.count()).where(
                CreditGrant.account_id == STARTUP, CreditGrant.created_by == "auto-recharge"
            )
        )
        expired = session.scalar(
            select(func.count()).where(
                LedgerEntry.account_id == STARTUP, LedgerEntry.reason == reasons.GRANT_EXPIRED
            )
        )
    assert balance > 0
    assert top_ups >= 3
    assert expired <= 1  # the launch promotion expired (or was used up before it could)
    assert _spent_nanos(seeded.engine, STARTUP, 30) > credits_to_nanos(500)


def test_enterprise_promotional_credits_expire_within_a_week(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        promos = session.scalars(
            select(CreditGrant).where(
                CreditGrant.account_id == ENTERPRISE,
                CreditGrant.source == "promotional",
                CreditGrant.expired.is_(False),
            )
        ).all()
    assert len(promos) == 1
    promo = promos[0]
    assert promo.remaining_nanos > 0
    assert NOW < promo.expires_at <= NOW + timedelta(days=7)


def test_dormant_account_has_no_recent_usage(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        last = session.scalar(
            select(func.max(UsageEvent.occurred_at)).where(UsageEvent.account_id == DORMANT)
        )
    assert last is not None
    assert last < NOW - timedelta(days=60)


def test_overdrawn_account_has_a_negative_balance(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        assert session.get(Account, OVERDRAWN).balance_nanos < 0


def test_price_change_is_grandfathered(seeded: Seeded) -> None:
    change = NOW - timedelta(days=45)
    with unit_of_work(seeded.engine) as session:
        versions = session.scalars(select(RateCardVersion).order_by(RateCardVersion.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert abs(versions[1].effective_from - change) < timedelta(days=1)
        before = set(
            session.scalars(
                select(UsageEvent.rate_card_version_id)
                .where(UsageEvent.occurred_at < versions[1].effective_from)
                .distinct()
            )
        )
        after = set(
            session.scalars(
                select(UsageEvent.rate_card_version_id)
                .where(UsageEvent.occurred_at >= versions[1].effective_from)
                .distinct()
            )
        )
    assert before == {versions[0].id}
    assert after == {versions[1].id}


def test_weekdays_are_busier_than_weekends(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        stamps = session.scalars(select(UsageEvent.occurred_at).where(UsageEvent.account_id == ENTERPRISE))
        counts = [0] * 7
        for stamp in stamps:
            counts[stamp.weekday()] += 1
    assert min(counts[:5]) > 2 * max(counts[5:])


def test_demo_users_and_memberships(seeded: Seeded) -> None:
    with unit_of_work(seeded.engine) as session:
        maya = accounts_for_user(session, "maya@startup.example")
        sam = accounts_for_user(session, "sam@consulting.example")
        victor = accounts_for_user(session, "victor@enterprise.example")
        support = accounts_for_user(session, "support@meterline.example")
    assert [(a.account_id, a.role) for a in maya] == [(STARTUP, "owner")]
    assert {a.account_id for a in sam} == {STARTUP, ENTERPRISE}
    assert [a.role for a in victor] == ["viewer"]
    assert support == []  # support comes from METERLINE_SUPPORT_EMAILS, never a membership


def test_seed_is_deterministic(seeded: Seeded, sqlite_copy: Engine) -> None:
    again = seed_demo(sqlite_copy, now=NOW)
    assert again.events == seeded.story.events
    assert again.balances_nanos == seeded.story.balances_nanos
    assert again.top_ups == seeded.story.top_ups


def test_one_late_delivery_and_nothing_else_late(seeded: Seeded) -> None:
    """Live-like arrivals leave no late usage, except Brightpath's stalled hours three days ago."""
    from core.db.models import LateUsage

    with unit_of_work(seeded.engine) as session:
        late = session.execute(
            select(LateUsage.account_id, LateUsage.usage_date, LateUsage.received_date, LateUsage.event_count)
        ).all()
    assert [(a, u, r) for a, u, r, _ in late] == [
        (STARTUP, NOW.date() - timedelta(days=3), NOW.date()),
    ]
    assert late[0][3] > 10


def test_brightpath_top_ups_are_real_sandbox_top_ups_credited_once(seeded: Seeded) -> None:
    """The starter pack was a checkout with the card saved; every auto top-up is a credited top-up record."""
    from core.db.models import AutoRecharge, PaymentCard, TopUp

    with unit_of_work(seeded.engine) as session:
        top_ups = session.scalars(select(TopUp).where(TopUp.account_id == STARTUP).order_by(TopUp.id)).all()
        purchased = session.scalars(select(CreditGrant).where(CreditGrant.source == "purchased"))
        grants = {g.id: g for g in purchased}
        cards = session.scalars(select(PaymentCard).where(PaymentCard.account_id == STARTUP)).all()
        settings = session.get(AutoRecharge, STARTUP)
    starter, *recharges = top_ups
    assert (starter.kind, starter.state, starter.amount_cents, starter.provider) == (
        "checkout",
        "credited",
        100_000,
        "sandbox",
    )
    assert [c.last4 for c in cards] == ["4242"]
    assert len(recharges) == seeded.story.top_ups >= 3
    assert {(t.kind, t.state, t.amount_cents, t.card_last4) for t in recharges} == {
        ("auto_recharge", "credited", 50_000, "4242")
    }
    for top_up in top_ups:
        grant = grants[top_up.grant_id]
        assert grant.idempotency_key == f"topup:{top_up.id}"
        assert grant.cost_basis_cents == top_up.amount_cents
        assert grant.amount_nanos == top_up.credits_nanos
    assert settings is not None and settings.enabled and settings.in_flight_top_up_id is None


def test_the_support_agent_finds_an_expired_unused_promotion_a_dispute_and_a_grant_to_approve(
    seeded: Seeded,
) -> None:
    from core.db.models import SupportApproval, TopUp
    from core.demo.seed import PENDING_GRANT_REASON, SUPPORT_EMAIL

    with unit_of_work(seeded.engine) as session:
        win_back = session.scalars(
            select(CreditGrant).where(CreditGrant.account_id == DORMANT, CreditGrant.source == "promotional")
        ).one()
        expired_entry = session.scalar(
            select(LedgerEntry.amount_nanos).where(
                LedgerEntry.grant_id == win_back.id, LedgerEntry.reason == reasons.GRANT_EXPIRED
            )
        )
        disputed = session.scalars(select(TopUp).where(TopUp.dispute_status != "")).all()
        [approval] = session.scalars(select(SupportApproval)).all()
    assert win_back.expired and expired_entry == -win_back.amount_nanos  # expired whole: never used
    assert [(t.account_id, t.kind, t.dispute_status) for t in disputed] == [(DORMANT, "checkout", "open")]
    assert (approval.account_id, approval.state, approval.requested_by, approval.reason) == (
        OVERDRAWN,
        "pending",
        SUPPORT_EMAIL,
        PENDING_GRANT_REASON,
    )
