"""Credits-expiring notices: the default rules every account gets, which grants are due a notice,
the once-only record of each notice, and its words.

A ``credits_expiring`` rule with ``days`` = N tells the account once per grant that still holds
credits and expires within N days. "Once" is a fact in ``credit_expiry_notices`` keyed by
(account, grant, N): ``claim_notice`` inserts it with ``ON CONFLICT DO NOTHING`` and only the
evaluator whose insert wrote the row sends the notice (a concurrent evaluator waits on the key on
PostgreSQL and finds it there; SQLite's write lock serialises them). Editing the rule, a second rule
with the same N, or a restart never repeats a notice; another N is another notice.

Every account gets two rules (30 and 7 days) when it is created (``add_default_expiry_rules``),
and existing accounts got them from migration 0014; they are ordinary rules afterwards (edit,
pause, delete). A deleted default is never recreated: the defaults are added once per account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db.models import Account, AlertRule, CreditExpiryNotice, CreditGrant, Membership, User
from core.ledger.engine import GrantBalance

DEFAULT_EXPIRY_DAYS = (30, 7)
DEFAULT_RULES_AUTHOR = "meterline (default)"  # created_by of the default rules: never a person
MAX_EXPIRY_DAYS = 90  # the runway's horizon: the projected unused amount is known that far


def default_rule_name(days: int) -> str:
    return f"Credits expire within {days} days"


def _owner_emails(session: Session, account_id: str) -> list[str]:
    from core.spend.alerts import MAX_EMAILS_PER_RULE, is_email_address

    emails = session.scalars(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .order_by(User.email)
    )
    return [e for e in emails if is_email_address(e)][:MAX_EMAILS_PER_RULE]


def add_default_expiry_rules(session: Session, account_id: str, *, at: datetime) -> list[AlertRule]:
    """The account's default "credits expire within 30 / 7 days" rules, added once ever (idempotent:
    an account that has or had them, even deleted, gets nothing). In-app, and email to the owners."""
    stmt = select(Account).where(Account.id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # two backfills of one account add the defaults once
    if session.scalar(stmt) is None:
        return []
    had = session.scalar(
        select(func.count(AlertRule.id)).where(
            AlertRule.account_id == account_id,
            AlertRule.kind == "credits_expiring",
            AlertRule.created_by == DEFAULT_RULES_AUTHOR,
        )
    )
    if had:
        return []
    emails = _owner_emails(session, account_id)
    rows = [
        AlertRule(
            account_id=account_id,
            name=default_rule_name(days),
            kind="credits_expiring",
            scope="account",
            scope_value="",
            days=days,
            notify_in_app=True,
            email_to=list(emails),
            paused=False,
            state="ok",
            created_by=DEFAULT_RULES_AUTHOR,
            created_at=at,
            updated_at=at,
        )
        for days in DEFAULT_EXPIRY_DAYS
    ]
    session.add_all(rows)
    session.flush()
    return rows


def backfill_default_expiry_rules(session: Session, *, at: datetime) -> int:
    """Add the default rules to every account that never had them; how many accounts got them."""
    added = 0
    for account_id in list(session.scalars(select(Account.id).order_by(Account.id))):
        if add_default_expiry_rules(session, account_id, at=at):
            added += 1
    return added


def email_new_owner(session: Session, account_id: str, email: str) -> None:
    """A new owner also gets the default expiry rules' email, while nobody has edited them."""
    from core.spend.alerts import MAX_EMAILS_PER_RULE, is_email_address

    address = email.strip().lower()
    if not is_email_address(address):
        return
    rules = session.scalars(
        select(AlertRule).where(
            AlertRule.account_id == account_id,
            AlertRule.kind == "credits_expiring",
            AlertRule.created_by == DEFAULT_RULES_AUTHOR,
            AlertRule.deleted_at.is_(None),
            AlertRule.updated_at == AlertRule.created_at,  # untouched by a person
        )
    )
    for rule in rules:
        current = list(rule.email_to or ())
        if address not in current and len(current) < MAX_EMAILS_PER_RULE:
            rule.email_to = [*current, address]
    session.flush()


# --- Which grants are due a notice, and the once-only fact -----------------------------------------


def grants_expiring_within(
    session: Session, account_id: str, days: int, *, at: datetime
) -> list[CreditGrant]:
    """Grants with credits left that expire after ``at`` and within ``days`` days of it, soonest first."""
    return list(
        session.scalars(
            select(CreditGrant)
            .where(
                CreditGrant.account_id == account_id,
                CreditGrant.expired.is_(False),
                CreditGrant.remaining_nanos > 0,
                CreditGrant.expires_at.is_not(None),
                CreditGrant.expires_at > at,
                CreditGrant.expires_at <= at + timedelta(days=days),
            )
            .order_by(CreditGrant.expires_at, CreditGrant.id)
        )
    )


def not_yet_told(
    session: Session, account_id: str, days: int, grants: list[CreditGrant]
) -> list[CreditGrant]:
    """The grants of ``grants`` with no notice at ``days`` yet (a cheap read before the runway's work;
    ``claim_notice`` still decides)."""
    if not grants:
        return []
    told = set(
        session.scalars(
            select(CreditExpiryNotice.grant_id).where(
                CreditExpiryNotice.account_id == account_id,
                CreditExpiryNotice.threshold_days == days,
                CreditExpiryNotice.grant_id.in_([g.id for g in grants]),
            )
        )
    )
    return [g for g in grants if g.id not in told]


def claim_notice(
    session: Session,
    *,
    account_id: str,
    grant_id: int,
    days: int,
    rule_id: int | None,
    remaining_nanos: int,
    expected_lost_nanos: int,
    at: datetime,
) -> bool:
    """Record "told about this grant at N days"; True only for the caller whose insert wrote it."""
    values = {
        "account_id": account_id,
        "grant_id": grant_id,
        "threshold_days": days,
        "rule_id": rule_id,
        "remaining_nanos": remaining_nanos,
        "expected_lost_nanos": expected_lost_nanos,
        "notified_at": at,
    }
    keys = ["account_id", "grant_id", "threshold_days"]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(CreditExpiryNotice)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(CreditExpiryNotice.grant_id)
    )
    return session.execute(stmt).first() is not None  # a row back: this insert wrote it


def attach_firing(session: Session, *, account_id: str, grant_id: int, days: int, firing_id: int) -> None:
    notice = session.get(CreditExpiryNotice, (account_id, grant_id, days))
    if notice is not None:
        notice.firing_id = firing_id


# --- What the expected spend leaves of each grant, and the words -----------------------------------


@dataclass(frozen=True)
class GrantFate:
    """What the expected spend uses of a grant before it expires, and what it leaves unused."""

    expected_use_nanos: int
    expected_lost_nanos: int


def expiry_outlook(
    session: Session, account: Account, *, daily: dict[date, int], today: date, at: datetime
) -> dict[int, GrantFate]:
    """Each open grant's fate at the recent pace: the runway the Overview banner shows."""
    from core.spend.overview import account_runway  # numpy: loaded only when a notice is due

    grants = session.scalars(
        select(CreditGrant).where(
            CreditGrant.account_id == account.id,
            CreditGrant.expired.is_(False),
            CreditGrant.remaining_nanos > 0,
        )
    )
    runway = account_runway(
        balance_nanos=account.balance_nanos,
        grants=[
            GrantBalance(g.id, g.priority, g.effective_at, g.expires_at, g.remaining_nanos) for g in grants
        ],
        daily=daily,
        today=today,
        at=at,
        timezone=account.timezone,
    )
    return {g.grant_id: GrantFate(g.expected_use_nanos, g.expected_lost_nanos) for g in runway.grants}


def notice_text(grant: CreditGrant, fate: GrantFate | None, *, at: datetime, timezone: str) -> str:
    """The Overview banner's sentence for this grant ("746.00 credits of promotional grant #11 expire
    in 4 days (Nov 30, 2026, 01:00 CET); at your pace you will use 150.00 credits of them, and
    596.00 credits will expire unused."), with the grant's description when it has one."""
    from core.spend.overview import ExpiringCredits

    assert grant.expires_at is not None
    use, lost = (
        (0, grant.remaining_nanos) if fate is None else (fate.expected_use_nanos, fate.expected_lost_nanos)
    )
    sentence = ExpiringCredits(
        grant_id=grant.id,
        source=grant.source,
        description=grant.description,
        remaining_nanos=grant.remaining_nanos,
        expires_at=grant.expires_at,
        expected_use_nanos=use,
        expected_lost_nanos=lost,
    ).sentence(at, timezone)
    if grant.description:
        return f"{sentence} (Grant #{grant.id}: “{grant.description[:120]}”.)"
    return sentence


def expected_lost(grant: CreditGrant, fate: GrantFate | None) -> int:
    return grant.remaining_nanos if fate is None else fate.expected_lost_nanos


def days_left(grant: CreditGrant, at: datetime) -> int:
    assert grant.expires_at is not None
    return max(0, (grant.expires_at - at).days)
