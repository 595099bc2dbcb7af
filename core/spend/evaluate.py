"""Evaluate alert rules and caps: measure, step the crossing engine, record what crossed.

``evaluate_accounts`` runs in the caller's write transaction. It locks the accounts' rules and
caps (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write lock serialises the rest), so two
evaluators (the post-ingestion worker and the periodic job) never fire the same crossing twice.
A crossing writes a firing (value, threshold, time), an in-app notification, and one pending
delivery per email address or webhook: the outbox that ``core.spend.deliveries`` sends after
the commit, never inside it.

A cap measures its own period (the local day, week from Monday or month: ``cap_period``). It
fires once per crossing within a period: when its spend reaches the limit (``ok`` →
``firing``), and it resolves when the spend drops back under it, which is what a new period
does (the first evaluation after the reset records it). A cap still ``firing`` whose spend is
over the limit again but whose last firing came before its current period started (no
evaluation saw the new period under the limit) fires for the new period, so a daily cap
crossed two days running fires once on each day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import (
    Account,
    AlertDelivery,
    AlertFiring,
    AlertRule,
    AlertSlackWebhook,
    AlertWebhook,
    CreditGrant,
    Notification,
    SpendCap,
)
from core.display import format_credits
from core.ledger.engine import GrantBalance
from core.spend import expiring
from core.spend.anomaly import HISTORY_DAYS as ANOMALY_HISTORY_DAYS
from core.spend.anomaly import Baseline, explain
from core.spend.anomaly import baseline as spike_baseline
from core.spend.caps import PERIOD_NOUNS
from core.spend.crossing import Threshold, Transition, step
from core.spend.measure import (
    HISTORY_DAYS,
    CapPeriod,
    Period,
    Scope,
    cap_period,
    daily_spend,
    period_of,
    projected_period_spend,
)
from core.spend.rules import describe_condition, format_value, threshold_of, unit_of

RULES_PER_READ = 10_000  # rules are read (and locked) in pages of this many; every page is evaluated


@dataclass
class Evaluation:
    """What one evaluation did."""

    rules_evaluated: int = 0
    fired: int = 0
    resolved: int = 0
    firing_ids: list[int] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)


class _Measures:
    """Daily spend series of one account, read once per scope and shared by its rules and caps."""

    def __init__(self, session: Session, account: Account, at: datetime):
        self.session = session
        self.account = account
        self.at = at
        self.period: Period = period_of(account.timezone, at)
        self._series: dict[Scope, dict[date, int]] = {}

    def daily(self, scope: Scope) -> dict[date, int]:
        if scope not in self._series:
            start = min(self.period.start, self.period.today - timedelta(days=HISTORY_DAYS))
            self._series[scope] = daily_spend(self.session, self.account.id, scope, start, self.period.end)
        return self._series[scope]

    def period_spend(self, scope: Scope) -> int:
        return sum(v for d, v in self.daily(scope).items() if self.period.start <= d <= self.period.end)

    def cap_period(self, kind: str) -> CapPeriod:
        return cap_period(kind, self.account.timezone, self.at)

    def cap_spend(self, scope: Scope, period: CapPeriod) -> int:
        """Spend in ``scope`` over a cap's period (its day, week or month: all within the series,
        which starts eight weeks before today; a week may end in the next month, after today)."""
        daily = self.daily(scope)
        if period.end > self.period.end:
            daily = {
                **daily,
                **daily_spend(self.session, self.account.id, scope, self.period.end, period.end),
            }
        return sum(v for d, v in daily.items() if period.start <= d <= period.end)

    def runway_days(self, scope: Scope) -> int | None:
        """Days until the balance runs out, as the Overview page shows them; None past the horizon."""
        from core.spend.overview import account_runway  # numpy: loaded only when a rule needs it

        if self.account.balance_nanos <= 0:
            return 0
        grants = self.session.scalars(
            select(CreditGrant).where(
                CreditGrant.account_id == self.account.id,
                CreditGrant.expired.is_(False),
                CreditGrant.remaining_nanos > 0,
            )
        )
        runway = account_runway(
            balance_nanos=self.account.balance_nanos,
            grants=[
                GrantBalance(g.id, g.priority, g.effective_at, g.expires_at, g.remaining_nanos)
                for g in grants
            ],
            daily=self.daily(scope),
            today=self.period.today,
            at=self.at,
            timezone=self.account.timezone,
        )
        return 0 if runway.already_out else runway.days

    def spike_baseline(self, rule: AlertRule) -> Baseline | None:
        """Today's usual spend for its weekday and the spike threshold (``core.spend.anomaly``),
        judged from the complete days before today."""
        daily = self.daily(Scope(rule.scope, rule.scope_value))
        today = self.period.today
        past = [daily.get(today - timedelta(days=offset), 0) for offset in range(ANOMALY_HISTORY_DAYS, 0, -1)]
        first = min(daily, default=today)  # days before the first spend are not history
        return spike_baseline(
            past[max(0, ANOMALY_HISTORY_DAYS - (today - first).days) :], rule.factor_percent or 0
        )

    def spike_detail(self, rule: AlertRule, value: int) -> str | None:
        """The firing in words: "Tuesday's spend, 412.00 credits, is 3.1 times a usual Tuesday's (…)"."""
        usual = self.spike_baseline(rule)
        if usual is None:
            return None
        return explain(self.period.today, value, usual.usual_nanos, weeks=usual.weeks)

    def measure(self, rule: AlertRule) -> tuple[int | None, Threshold | None]:
        scope = Scope(rule.scope, rule.scope_value)
        if rule.kind == "balance_below":
            return self.account.balance_nanos, threshold_of(rule)
        if rule.kind == "spend_above":
            return self.period_spend(scope), threshold_of(rule)
        if rule.kind == "projected_spend_above":
            return projected_period_spend(self.daily(scope), self.period), threshold_of(rule)
        if rule.kind == "runway_below":
            return self.runway_days(scope), threshold_of(rule)
        if rule.kind == "spend_spike":
            usual = self.spike_baseline(rule)
            return self.daily(scope).get(self.period.today, 0), threshold_of(rule, spike=usual)
        raise ValueError(f"unknown alert kind {rule.kind!r}")


def _locked(session: Session, stmt):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).all()


def _message(
    account: Account, subject: str, condition: str, event: Transition, value: str, detail: str | None = None
) -> str:
    if event is Transition.FIRE and detail:
        return f"{account.name}: {subject} fired — {detail}."
    if event is Transition.FIRE:
        return f"{account.name}: {subject} fired — {condition[:1].lower()}{condition[1:]} (now {value})."
    return f"{account.name}: {subject} resolved — back from the threshold (now {value})."


def _record(
    session: Session,
    result: Evaluation,
    *,
    account: Account,
    at: datetime,
    event: Transition,
    value: int,
    threshold: Threshold,
    unit: str,
    subject: str,
    condition: str,
    rule: AlertRule | None = None,
    cap: SpendCap | None = None,
    message: str | None = None,
    details: dict[str, object] | None = None,
    detail: str | None = None,
) -> None:
    shown = format_value(value, unit)
    message = message or _message(account, subject, condition, event, shown, detail)
    firing = AlertFiring(
        account_id=account.id,
        rule_id=None if rule is None else rule.id,
        cap_id=None if cap is None else cap.id,
        subject=subject[:300],
        event=event.value,
        value=value,
        threshold=threshold.value,
        unit=unit,
        message=message[:1000],
        at=at,
    )
    session.add(firing)
    session.flush()
    result.firing_ids.append(firing.id)
    if event is Transition.FIRE:
        result.fired += 1
    else:
        result.resolved += 1
    payload = {
        "id": f"firing_{firing.id}",
        "type": f"{'alert' if rule is not None else 'cap'}.{event.value}",
        "account_id": account.id,
        "subject": subject,
        "condition": condition,
        "value": value,
        "threshold": threshold.value,
        "unit": unit,
        "message": message,
        "at": at.isoformat().replace("+00:00", "Z"),
        "timezone": account.timezone,  # the account's zone: people read "at" in it
    }
    if rule is not None:
        payload["rule"] = {
            "id": rule.id,
            "name": rule.name,
            "kind": rule.kind,
            "scope": rule.scope,
            "scope_value": rule.scope_value,
        }
    if details:
        payload.update(details)
    if cap is not None:
        payload["cap"] = {
            "id": cap.id,
            "scope": cap.scope,
            "scope_value": cap.scope_value,
            "period": cap.period,
            "mode": cap.mode,
            "limit_nanos": cap.limit_nanos,
        }
    in_app = rule.notify_in_app if rule is not None else True
    deliveries: list[AlertDelivery] = []
    if in_app:
        verb = "fired" if event is Transition.FIRE else "resolved"
        session.add(
            Notification(
                account_id=account.id,
                firing_id=firing.id,
                title=f"{subject} {verb}"[:300],
                body=message[:1000],
                created_at=at,
            )
        )
        deliveries.append(_delivery(account.id, firing.id, "in_app", "portal", payload, at, delivered=True))
    if rule is not None:
        for address in rule.email_to or ():
            deliveries.append(_delivery(account.id, firing.id, "email", address, payload, at))
        if rule.webhook_id is not None:
            hook = session.get(AlertWebhook, rule.webhook_id)
            if hook is not None and hook.deleted_at is None:
                delivery = _delivery(account.id, firing.id, "webhook", hook.url, payload, at)
                delivery.webhook_id = hook.id
                deliveries.append(delivery)
        if rule.slack_webhook_id is not None:
            slack = session.get(AlertSlackWebhook, rule.slack_webhook_id)
            if slack is not None and slack.deleted_at is None:
                # The URL is a credential: the delivery log names the channel, the sender reads the URL.
                target = f"{slack.label} (Slack …{slack.url_hint})"
                delivery = _delivery(account.id, firing.id, "slack", target, payload, at)
                delivery.slack_webhook_id = slack.id
                deliveries.append(delivery)
    session.add_all(deliveries)
    session.flush()
    result.delivery_ids.extend(d.id for d in deliveries if d.status == "pending")


def _delivery(
    account_id: str,
    firing_id: int,
    channel: str,
    target: str,
    payload: dict[str, object],
    at: datetime,
    *,
    delivered: bool = False,
) -> AlertDelivery:
    return AlertDelivery(
        account_id=account_id,
        firing_id=firing_id,
        channel=channel,
        target=target,
        payload=payload,
        status="delivered" if delivered else "pending",
        attempts=1 if delivered else 0,
        next_attempt_at=None if delivered else at,
        last_error="",
        delivered_at=at if delivered else None,
        created_at=at,
    )


def _cap_subject(cap: SpendCap) -> str:
    return f"{'Hard' if cap.mode == 'hard' else 'Soft'} cap on {Scope(cap.scope, cap.scope_value).describe()}"


def _cap_condition(cap: SpendCap) -> str:
    when = PERIOD_NOUNS.get(cap.period, "this month")
    return f"Spend {when} reaches the {format_credits(cap.limit_nanos)} cap"


def _fired_before(session: Session, cap: SpendCap, moment: datetime) -> bool:
    """Whether the cap's last firing came before ``moment`` (or it never fired)."""
    last = session.scalar(
        select(AlertFiring.at)
        .where(AlertFiring.cap_id == cap.id, AlertFiring.event == "fired")
        .order_by(AlertFiring.id.desc())
        .limit(1)
    )
    return last is None or _aware(last) < moment


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Rules whose outcome no usage can change: a grant enters "expires within N days" with time alone
# (usage only lowers what it holds). After ingestion they are left to the periodic evaluation.
TIME_DRIVEN_KINDS = ("credits_expiring",)


def _rules_after(
    session: Session, ids: list[str], *, after_id: int | None, after_usage: bool = False
) -> list[AlertRule]:
    """One page of the accounts' live, unpaused rules by id (locked on PostgreSQL); with
    ``after_usage``, only those usage can move (not ``TIME_DRIVEN_KINDS``)."""
    stmt = select(AlertRule).where(
        AlertRule.account_id.in_(ids), AlertRule.deleted_at.is_(None), AlertRule.paused.is_(False)
    )
    if after_usage:
        stmt = stmt.where(AlertRule.kind.not_in(TIME_DRIVEN_KINDS))
    if after_id is not None:
        stmt = stmt.where(AlertRule.id > after_id)
    return list(_locked(session, stmt.order_by(AlertRule.id).limit(RULES_PER_READ)))


def _all_rules(
    session: Session, ids: list[str], page: list[AlertRule], *, after_usage: bool = False
) -> Iterator[AlertRule]:
    """Every live, unpaused rule of the accounts, a page at a time from ``page`` on."""
    while page:
        yield from page
        if len(page) < RULES_PER_READ:
            return
        session.flush()  # the page's new states are written before the next page is read
        page = _rules_after(session, ids, after_id=page[-1].id, after_usage=after_usage)


def evaluate_accounts(
    session: Session, account_ids: Iterable[str], *, at: datetime, after_usage: bool = False
) -> Evaluation:
    """Evaluate every live, unpaused rule and every cap of these accounts at ``at``.

    ``after_usage`` (the evaluation that follows an ingested batch): only the rules and caps that
    usage can move; the credits-expiring rules (``TIME_DRIVEN_KINDS``) wait for the periodic job.
    """
    result = Evaluation()
    ids = sorted(set(account_ids))
    if not ids:
        return result
    # Rules, then caps: the order locks are taken.
    first_rules = _rules_after(session, ids, after_id=None, after_usage=after_usage)
    caps = _locked(
        session,
        select(SpendCap)
        .where(SpendCap.account_id.in_(ids), SpendCap.deleted_at.is_(None))
        .order_by(SpendCap.id),
    )
    if not first_rules and not caps:
        return result
    accounts = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))}
    measures = {account_id: _Measures(session, account, at) for account_id, account in accounts.items()}
    for rule in _all_rules(session, ids, first_rules, after_usage=after_usage):
        result.rules_evaluated += 1
        if rule.kind == "credits_expiring":  # once per grant, not a crossing
            _expiry_notices(session, result, rule, accounts[rule.account_id], measures[rule.account_id], at)
            continue
        value, threshold = measures[rule.account_id].measure(rule)
        rule.last_evaluated_at = at
        if value is not None:
            rule.last_value = value
        if threshold is None:
            continue
        outcome = step(rule.state, value, threshold)
        rule.state = outcome.state.value
        if outcome.transition is not None and value is not None:
            _record(
                session,
                result,
                account=accounts[rule.account_id],
                at=at,
                event=outcome.transition,
                value=value,
                threshold=threshold,
                unit=unit_of(rule.kind),
                subject=f"Alert '{rule.name}'",
                condition=describe_condition(rule),
                rule=rule,
                detail=(
                    measures[rule.account_id].spike_detail(rule, value)
                    if rule.kind == "spend_spike" and outcome.transition is Transition.FIRE
                    else None
                ),
            )
    for cap in caps:
        measure = measures[cap.account_id]
        period = measure.cap_period(cap.period)
        spent = measure.cap_spend(Scope(cap.scope, cap.scope_value), period)
        threshold = Threshold.absolute("above", cap.limit_nanos)
        cap.last_value = spent
        if cap.state == "firing" and threshold.holds(spent) and _fired_before(session, cap, period.starts_at):
            cap.state = "ok"  # crossed in an earlier period and again in this one: fire for this one
        outcome = step(cap.state, spent, threshold)
        cap.state = outcome.state.value
        if outcome.transition is not None:
            _record(
                session,
                result,
                account=accounts[cap.account_id],
                at=at,
                event=outcome.transition,
                value=spent,
                threshold=threshold,
                unit="nanos",
                subject=_cap_subject(cap),
                condition=_cap_condition(cap),
                cap=cap,
            )
    session.flush()
    return result


def _expiry_notices(
    session: Session, result: Evaluation, rule: AlertRule, account: Account, measures: _Measures, at: datetime
) -> None:
    """Tell the account once about each grant with credits left that expires within the rule's days."""
    days = rule.days or 0
    rule.last_evaluated_at = at
    grants = expiring.grants_expiring_within(session, account.id, days, at=at) if days > 0 else []
    rule.last_value = expiring.days_left(grants[0], at) if grants else None
    grants = expiring.not_yet_told(session, account.id, days, grants)
    if not grants:
        return  # nothing new to say: the runway is not worked out
    fates = expiring.expiry_outlook(
        session, account, daily=measures.daily(Scope("account", "")), today=measures.period.today, at=at
    )
    for grant in grants:
        fate = fates.get(grant.id)
        lost = expiring.expected_lost(grant, fate)
        claimed = expiring.claim_notice(
            session,
            account_id=account.id,
            grant_id=grant.id,
            days=days,
            rule_id=rule.id,
            remaining_nanos=grant.remaining_nanos,
            expected_lost_nanos=lost,
            at=at,
        )
        if not claimed:
            continue  # told already (this rule, an earlier edit of it, another rule or evaluator)
        text = expiring.notice_text(grant, fate, at=at, timezone=account.timezone)
        assert grant.expires_at is not None
        _record(
            session,
            result,
            account=account,
            at=at,
            event=Transition.FIRE,
            value=expiring.days_left(grant, at),
            threshold=Threshold.absolute("below", days),  # shown as "within N days"
            unit="days",
            subject=f"Alert '{rule.name}'",
            condition=describe_condition(rule),
            rule=rule,
            message=f"{account.name}: {text}",
            details={
                "grant": {
                    "id": grant.id,
                    "source": grant.source,
                    "description": grant.description,
                    "remaining_nanos": grant.remaining_nanos,
                    "expires_at": grant.expires_at.isoformat().replace("+00:00", "Z"),
                    "expected_lost_nanos": lost,
                    "threshold_days": days,
                }
            },
        )
        expiring.attach_firing(
            session, account_id=account.id, grant_id=grant.id, days=days, firing_id=result.firing_ids[-1]
        )


def accounts_with_rules(
    session: Session, account_ids: Iterable[str] | None = None, *, after_usage: bool = False
) -> list[str]:
    """Accounts (among ``account_ids``, or all) with a live unpaused rule or a cap: worth evaluating.

    ``after_usage``: rules of ``TIME_DRIVEN_KINDS`` do not count (every account has two).
    """
    rule_stmt = select(AlertRule.account_id).where(
        AlertRule.deleted_at.is_(None), AlertRule.paused.is_(False)
    )
    if after_usage:
        rule_stmt = rule_stmt.where(AlertRule.kind.not_in(TIME_DRIVEN_KINDS))
    cap_stmt = select(SpendCap.account_id).where(SpendCap.deleted_at.is_(None))
    if account_ids is not None:
        ids = sorted(set(account_ids))
        if not ids:
            return []
        rule_stmt = rule_stmt.where(AlertRule.account_id.in_(ids))
        cap_stmt = cap_stmt.where(SpendCap.account_id.in_(ids))
    found = set(session.scalars(rule_stmt.distinct())) | set(session.scalars(cap_stmt.distinct()))
    return sorted(found)
