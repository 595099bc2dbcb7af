"""Alerts: the notification centre, alert rules (create, edit, pause, delete), webhooks, Slack
channels, and the history of firings and deliveries.

Owners and admins change rules and webhooks; every member reads them and marks their own
notifications read; a support agent's customer view only reads. A rule watches a project, meter
or API key picked from those the account's usage carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.live import as_of
from app.page import READ_ONLY_HELP, PageContext, page_context, read, show_error
from app.resources import get_engine
from app.spend_ui import (
    ScopeChoice,
    evaluate_and_send,
    field_error,
    may,
    scope_value_picker,
    unused_confirmed,
    unused_refusal,
    write,
)
from app.user_text import literal
from core.accounts import AccountSummary
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import ALERT_KINDS, Meter
from core.display import format_datetime, zone_note
from core.errors import BillingError
from core.money import nanos_to_credits
from core.spend.alerts import (
    DeliveryView,
    FiringView,
    RuleInput,
    RuleView,
    WebhookView,
    create_rule,
    create_webhook,
    delete_rule,
    delete_webhook,
    delivery_log,
    firing_history,
    list_rules,
    list_webhooks,
    parse_email_list,
    roll_webhook_secret,
    set_rule_paused,
    update_rule,
)
from core.spend.notifications import NotificationView, mark_read, notifications
from core.spend.rules import ACCOUNT_ONLY_KINDS, KIND_LABELS, SCOPE_LABELS, format_factor, format_value
from core.spend.slack_hooks import (
    SlackWebhookView,
    create_slack_webhook,
    delete_slack_webhook,
    list_slack_webhooks,
)
from core.usage.views import values_used

SECRET_KEY = "alerts.new_secret"  # the one run that shows a new webhook secret
SLACK_URL_KEY = "alerts.new_slack_url"  # the one run that shows a new Slack URL
FLASH_KEY = "alerts.flash"
NO_WEBHOOK = 0
WATCHES = "this rule watches nothing"
BALANCE_LABEL = "Alert when the balance drops below (credits)"
AMOUNT_LABEL = "Amount (credits)"
BUDGET_LABEL = "Budget (credits)"
PERCENT_LABEL = "Percent of the budget"
DAYS_LABEL = "Alert when the balance runs out within (days)"
EXPIRY_DAYS_LABEL = "Tell me when a grant's credits expire within (days)"
FACTOR_LABEL = "Alert when today's spend reaches K × a usual day of its weekday (K)"
FACTOR_HELP = (
    "A usual Tuesday is the median Tuesday of the last 8 weeks, scaled to the last two weeks' level; "
    "a day must also stand out from its usual ups and downs. With under 4 weeks of history, the same "
    "weekday of the weeks there are."
)
SLACK_URL_LABEL = "Slack incoming-webhook URL"
SLACK_LABEL_LABEL = "Channel name"
EMAILS_LABEL = "Email to (comma-separated)"


@dataclass(frozen=True)
class AlertsData:
    account: AccountSummary
    rules: list[RuleView]
    webhooks: list[WebhookView]
    slack_webhooks: list[SlackWebhookView]
    firings: list[FiringView]
    deliveries: list[DeliveryView]
    notifications: list[NotificationView]
    meters: dict[str, str]  # every meter of the catalogue: name → display name
    used: dict[str, list[str]]  # the meters, models, projects and API keys the account's usage carries


def load(session: Session, account: AccountSummary, *, email: str) -> AlertsData:
    return AlertsData(
        account,
        list_rules(session, account.account_id),
        list_webhooks(session, account.account_id),
        list_slack_webhooks(session, account.account_id),
        firing_history(session, account.account_id),
        delivery_log(session, account.account_id),
        notifications(session, email=email, account_id=account.account_id, limit=20),
        {
            name: display or name
            for name, display in session.execute(select(Meter.name, Meter.display_name).order_by(Meter.name))
        },
        values_used(session, account.account_id),
    )


def local(moment: datetime | None, timezone: str, *, zone: bool = False) -> str:
    """A time in the account's zone; tables leave the zone out and name it above them."""
    return "—" if moment is None else format_datetime(moment, timezone, zone=zone)


def flash(message: str) -> None:
    st.session_state[FLASH_KEY] = message


def notification_centre(ctx: PageContext, data: AlertsData) -> None:
    st.subheader("Notifications")
    if not data.notifications:
        st.info("No notifications yet. When an alert rule or a cap fires, it shows here and in the sidebar.")
        return
    unread = [n for n in data.notifications if n.unread]
    tz = data.account.timezone
    for note in data.notifications[:10]:
        marker = ":red[**New**] · " if note.unread else ""
        # Titles and bodies quote rule names and cap scopes the account's members typed.
        when = local(note.created_at, tz, zone=True)
        st.markdown(f"{marker}**{literal(note.title)}** · {when}  \n{literal(note.body)}")
    marks = may(ctx, data.account, "notifications.read")
    if unread and marks and st.button(f"Mark {len(unread)} as read", key="alerts.mark_read"):
        top = max(n.notification_id for n in data.notifications)
        with unit_of_work(get_engine(), write=True) as session:
            mark_read(session, actor=ctx.actor, account_id=ctx.account_id, up_to_id=top, at=system_clock())
        st.rerun()


def state_label(rule: RuleView) -> str:
    if rule.paused:
        return "Paused"
    return "Firing" if rule.state == "firing" else "OK"


def channels_label(
    rule: RuleView, webhooks: dict[int, WebhookView], slack: dict[int, SlackWebhookView] | None = None
) -> str:
    parts = ["in-app"] if rule.notify_in_app else []
    parts += list(rule.email_to)
    if rule.webhook_id is not None and rule.webhook_id in webhooks:
        parts.append(f"webhook {webhooks[rule.webhook_id].url}")
    if slack and rule.slack_webhook_id is not None and rule.slack_webhook_id in slack:
        parts.append(f"Slack {slack[rule.slack_webhook_id].label}")
    return ", ".join(parts)


def rules_table(data: AlertsData, *, editable: bool) -> None:
    st.subheader("Alert rules")
    if not data.rules:
        st.info(
            "No alert rules yet. "
            + (
                "Add one below: for example, “Balance below 50.00 credits” or “Spend this month reaches "
                "80% of a 500.00 credits budget”."
                if editable
                else "Owners and admins of this account can add them."
            )
        )
        return
    tz = data.account.timezone
    hooks = {w.webhook_id: w for w in data.webhooks}
    slack = {h.slack_webhook_id: h for h in data.slack_webhooks}
    st.caption(zone_note(tz, system_clock()))
    st.dataframe(
        pd.DataFrame(
            {
                "Rule": [r.name for r in data.rules],
                "Condition": [r.condition for r in data.rules],
                "Scope": [
                    SCOPE_LABELS[r.scope] + (f": {r.scope_value}" if r.scope_value else "")
                    for r in data.rules
                ],
                "State": [state_label(r) for r in data.rules],
                "Last value": [format_value(r.last_value, r.unit) for r in data.rules],
                "Last checked": [local(r.last_evaluated_at, tz) for r in data.rules],
                "Channels": [channels_label(r, hooks, slack) for r in data.rules],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"Rule": st.column_config.TextColumn("Rule", pinned=True)},
    )


def _credits_text(nanos: int | None) -> str:
    return "" if nanos is None else format(nanos_to_credits(nanos).normalize(), "f")


RULE_FIELDS = {
    "name": "Name",
    "kind": "Kind",
    "scope": "Scope",
    "budget": BUDGET_LABEL,
    "percent": PERCENT_LABEL,
    "days": DAYS_LABEL,
    "factor": FACTOR_LABEL,
    "email_to": EMAILS_LABEL,
    "channels": "Channels",
}


def rule_form(ctx: PageContext, data: AlertsData, existing: RuleView | None) -> None:
    """The fields of a rule; a new one when ``existing`` is None. Kind, scope and the scope's name
    are picked first (outside the form) so the form shows only the fields they need, and a name
    nothing uses yet is warned about before anything is saved."""
    prefix = f"alerts.edit{existing.rule_id}" if existing else "alerts.new"
    kinds = list(ALERT_KINDS)
    kind = st.selectbox(
        "Kind",
        kinds,
        index=kinds.index(existing.kind) if existing else 0,
        format_func=KIND_LABELS.__getitem__,
        key=f"{prefix}.kind",
    )
    account_only = kind in ACCOUNT_ONLY_KINDS
    scopes = ["account"] if account_only else list(SCOPE_LABELS)
    scope = st.selectbox(
        "Scope",
        scopes,
        index=scopes.index(existing.scope) if existing and existing.scope in scopes else 0,
        format_func=SCOPE_LABELS.__getitem__,
        key=f"{prefix}.scope",
        help="The balance and its grants belong to the whole account."
        if account_only
        else "Which usage the rule counts.",
    )
    choice: ScopeChoice | None = None
    if scope != "account":
        choice = scope_value_picker(
            scope,
            label=SCOPE_LABELS[scope],
            used=data.used.get(scope, []),
            key=f"{prefix}.{scope}",
            current=existing.scope_value if existing and existing.scope == scope else "",
            catalogue=data.meters if scope == "meter" else None,
            protects=WATCHES,
        )
    with st.form(f"{prefix}.form"):
        name = st.text_input(
            "Name", value=existing.name if existing else "", key=f"{prefix}.name", max_chars=200
        )
        confirmed = unused_confirmed(choice, key=f"{prefix}.confirm_unused") if choice else True
        threshold = budget = percent = days = factor = ""
        if kind == "balance_below":
            threshold = st.text_input(
                BALANCE_LABEL,
                value=_credits_text(existing.threshold_nanos) if existing else "",
                key=f"{prefix}.threshold",
                placeholder="50",
            )
        elif kind in ("spend_above", "projected_spend_above"):
            st.caption("Give an amount, or a budget and a percentage of it.")
            threshold = st.text_input(
                AMOUNT_LABEL,
                value=_credits_text(existing.threshold_nanos) if existing else "",
                key=f"{prefix}.threshold",
                placeholder="200",
            )
            left, right = st.columns(2)
            budget = left.text_input(
                BUDGET_LABEL,
                value=_credits_text(existing.budget_nanos) if existing else "",
                key=f"{prefix}.budget",
                placeholder="500",
            )
            percent = right.text_input(
                PERCENT_LABEL,
                value=str(existing.percent) if existing and existing.percent else "",
                key=f"{prefix}.percent",
                placeholder="80",
            )
        elif kind == "runway_below":
            days = st.text_input(
                DAYS_LABEL,
                value=str(existing.days) if existing and existing.days else "",
                key=f"{prefix}.days",
                placeholder="7",
            )
        elif kind == "credits_expiring":
            st.caption(
                "Once per grant: when a grant that still holds credits comes within this many days of "
                "its expiry, you are told how much would expire unused at the recent pace."
            )
            days = st.text_input(
                EXPIRY_DAYS_LABEL,
                value=str(existing.days) if existing and existing.days else "",
                key=f"{prefix}.days",
                placeholder="30",
            )
        else:
            factor = st.text_input(
                FACTOR_LABEL,
                value=format_factor(existing.factor_percent).rstrip("×")
                if existing and existing.factor_percent
                else "",
                key=f"{prefix}.factor",
                placeholder="3",
                help=FACTOR_HELP,
            )
        st.markdown("**Channels**")
        in_app = st.checkbox(
            "In-app notification", value=existing.notify_in_app if existing else True, key=f"{prefix}.in_app"
        )
        emails = st.text_input(
            EMAILS_LABEL,
            value=", ".join(existing.email_to) if existing else "",
            key=f"{prefix}.emails",
        )
        hook_ids = [NO_WEBHOOK] + [w.webhook_id for w in data.webhooks]
        hook_names = {NO_WEBHOOK: "No webhook", **{w.webhook_id: w.url for w in data.webhooks}}
        webhook = st.selectbox(
            "Webhook",
            hook_ids,
            index=hook_ids.index(existing.webhook_id) if existing and existing.webhook_id in hook_ids else 0,
            format_func=hook_names.__getitem__,
            key=f"{prefix}.webhook",
        )
        slack_ids = [NO_WEBHOOK] + [h.slack_webhook_id for h in data.slack_webhooks]
        slack_names = {
            NO_WEBHOOK: "No Slack channel",
            **{h.slack_webhook_id: h.shown for h in data.slack_webhooks},
        }
        current_slack = existing.slack_webhook_id if existing else None
        slack_channel = st.selectbox(
            "Slack",
            slack_ids,
            index=slack_ids.index(current_slack) if current_slack in slack_ids else 0,
            format_func=slack_names.__getitem__,
            key=f"{prefix}.slack",
            help="Add Slack channels under “Slack” below.",
        )
        submitted = st.form_submit_button("Save changes" if existing else "Create rule", type="primary")
    if not submitted:
        return
    if choice is not None and not confirmed:
        st.error(unused_refusal(choice, label=SCOPE_LABELS[scope], protects=WATCHES))
        return
    threshold_label = BALANCE_LABEL if kind == "balance_below" else AMOUNT_LABEL
    rule = RuleInput(
        name=name,
        kind=kind,
        scope=scope,
        scope_value=choice.value if choice else "",
        threshold=threshold,
        budget=budget,
        percent=percent,
        days=days,
        factor=factor,
        notify_in_app=in_app,
        email_to=parse_email_list(emails),
        webhook_id=None if webhook == NO_WEBHOOK else webhook,
        slack_webhook_id=None if slack_channel == NO_WEBHOOK else slack_channel,
    )
    now = system_clock()
    try:
        if existing is None:
            saved = write(
                ctx,
                lambda s, actor: create_rule(s, account_id=ctx.account_id, rule=rule, actor=actor, at=now),
            )
        else:
            saved = write(
                ctx,
                lambda s, actor: update_rule(
                    s, account_id=ctx.account_id, rule_id=existing.rule_id, rule=rule, actor=actor, at=now
                ),
            )
        fired = evaluate_and_send(ctx.account_id)
    except BillingError as error:
        labels = {**RULE_FIELDS, "threshold": threshold_label, "scope_value": SCOPE_LABELS[scope]}
        if kind == "credits_expiring":
            labels["days"] = EXPIRY_DAYS_LABEL
        st.error(field_error(error, labels))
        return
    flash(
        f"Rule “{literal(saved.name)}” saved: {literal(saved.condition)}."
        + (" It fired right away: see the notifications above." if fired else "")
    )
    st.rerun()


def edit_section(ctx: PageContext, data: AlertsData) -> None:
    with st.expander("New alert rule", expanded=not data.rules):
        rule_form(ctx, data, None)
    if not data.rules:
        return
    with st.expander("Edit, pause or delete a rule"):
        names = {r.rule_id: f"{r.name} — {r.condition}" for r in data.rules}
        chosen = st.selectbox("Rule", list(names), format_func=names.__getitem__, key="alerts.pick")
        rule = next(r for r in data.rules if r.rule_id == chosen)
        now = system_clock()
        left, right = st.columns(2)
        if left.button("Resume" if rule.paused else "Pause", key=f"alerts.pause{rule.rule_id}"):
            try:
                write(
                    ctx,
                    lambda s, actor: set_rule_paused(
                        s,
                        account_id=ctx.account_id,
                        rule_id=rule.rule_id,
                        paused=not rule.paused,
                        actor=actor,
                        at=now,
                    ),
                )
            except BillingError as error:
                show_error(error)
                return
            flash(f"Rule “{literal(rule.name)}” {'resumed' if rule.paused else 'paused'}.")
            st.rerun()
        confirm = right.checkbox("Yes, delete this rule", key=f"alerts.confirm{rule.rule_id}")
        if right.button("Delete", key=f"alerts.delete{rule.rule_id}", disabled=not confirm):
            try:
                write(
                    ctx,
                    lambda s, actor: delete_rule(
                        s, account_id=ctx.account_id, rule_id=rule.rule_id, actor=actor, at=now
                    ),
                )
            except BillingError as error:
                show_error(error)
                return
            flash(f"Rule “{literal(rule.name)}” deleted; its history stays below.")
            st.rerun()
        rule_form(ctx, data, rule)


def webhooks_section(ctx: PageContext, data: AlertsData) -> None:
    st.subheader("Webhooks")
    st.caption(
        "Each alert is POSTed as JSON with the header `Meterline-Signature: t=<unix time>,v1=<hex>`, where "
        'hex = HMAC-SHA256(secret, "<t>.<body>"). Failed posts are retried with backoff '
        "(30 s, 1 min, 2 min, …)."
    )
    new_secret = st.session_state.pop(SECRET_KEY, None)
    if new_secret is not None:
        st.success("Copy this signing secret now: it is shown only once.")
        st.code(new_secret, language=None)
    editable = may(ctx, data.account, "webhooks.edit")
    if data.webhooks:
        st.caption(zone_note(data.account.timezone, system_clock()))
        st.dataframe(
            pd.DataFrame(
                {
                    "Endpoint": [w.url for w in data.webhooks],
                    "Secret": [f"whsec_…{w.secret_hint}" for w in data.webhooks],
                    "Added": [local(w.created_at, data.account.timezone) for w in data.webhooks],
                    "By": [w.created_by for w in data.webhooks],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Endpoint": st.column_config.TextColumn("Endpoint", pinned=True)},
        )
    elif not editable:
        st.info("No webhooks. Owners and admins can add one.")
    if not editable:
        return
    now = system_clock()
    with st.form("alerts.webhook_form"):
        url = st.text_input(
            "Endpoint URL", placeholder="https://example.com/hooks/meterline", key="alerts.hook_url"
        )
        if st.form_submit_button("Add webhook"):
            try:
                made = write(
                    ctx,
                    lambda s, actor: create_webhook(
                        s, account_id=ctx.account_id, url=url, actor=actor, at=now
                    ),
                )
            except BillingError as error:
                st.error(field_error(error, {"url": "Endpoint URL"}))
            else:
                st.session_state[SECRET_KEY] = made.secret
                st.rerun()
    if data.webhooks:
        hooks = {w.webhook_id: w.url for w in data.webhooks}
        chosen = st.selectbox("Endpoint", list(hooks), format_func=hooks.__getitem__, key="alerts.hook_pick")
        left, right = st.columns(2)
        try:
            if left.button("Roll its secret", key="alerts.hook_roll"):
                made = write(
                    ctx,
                    lambda s, actor: roll_webhook_secret(
                        s, account_id=ctx.account_id, webhook_id=chosen, actor=actor
                    ),
                )
                st.session_state[SECRET_KEY] = made.secret
                st.rerun()
            sure = right.checkbox("Yes, remove this webhook", key=f"alerts.hook_confirm{chosen}")
            if right.button("Remove it", key="alerts.hook_delete", disabled=not sure):
                write(
                    ctx,
                    lambda s, actor: delete_webhook(
                        s, account_id=ctx.account_id, webhook_id=chosen, actor=actor, at=now
                    ),
                )
                flash("Webhook removed; rules that used it keep their other channels.")
                st.rerun()
        except BillingError as error:
            show_error(error)


def slack_section(ctx: PageContext, data: AlertsData) -> None:
    st.subheader("Slack")
    st.caption(
        "Alerts posted to a Slack channel through an incoming webhook (in Slack: *Apps → Incoming "
        "Webhooks → Add to Slack*, pick the channel, copy the URL). The message names the rule, the "
        "value and the threshold, with a button back to this page. Failed posts are retried with "
        "backoff, like webhooks."
    )
    new_url = st.session_state.pop(SLACK_URL_KEY, None)
    if new_url is not None:
        st.success("Slack channel added. Its URL is a secret, shown here this once: keep it safe.")
        st.code(new_url, language=None)
    editable = may(ctx, data.account, "webhooks.edit")
    if data.slack_webhooks:
        st.caption(zone_note(data.account.timezone, system_clock()))
        st.dataframe(
            pd.DataFrame(
                {
                    "Channel": [h.label for h in data.slack_webhooks],
                    "URL": [f"https://hooks.slack.com/…{h.url_hint}" for h in data.slack_webhooks],
                    "Added": [local(h.created_at, data.account.timezone) for h in data.slack_webhooks],
                    "By": [h.created_by for h in data.slack_webhooks],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Channel": st.column_config.TextColumn("Channel", pinned=True)},
        )
    elif not editable:
        st.info("No Slack channels. Owners and admins can add one.")
    if not editable:
        return
    now = system_clock()
    with st.form("alerts.slack_form"):
        label = st.text_input(
            SLACK_LABEL_LABEL, placeholder="#ops-alerts", key="alerts.slack_label", max_chars=80
        )
        url = st.text_input(
            SLACK_URL_LABEL,
            placeholder="https://hooks.slack.com/services/T…/B…/…",
            key="alerts.slack_url",
            type="password",
        )
        if st.form_submit_button("Add Slack channel"):
            try:
                made = write(
                    ctx,
                    lambda s, actor: create_slack_webhook(
                        s, account_id=ctx.account_id, label=label, url=url, actor=actor, at=now
                    ),
                )
            except BillingError as error:
                st.error(field_error(error, {"url": SLACK_URL_LABEL, "label": SLACK_LABEL_LABEL}))
            else:
                st.session_state[SLACK_URL_KEY] = made.url
                for typed in ("alerts.slack_url", "alerts.slack_label"):  # the URL is shown once, above
                    st.session_state.pop(typed, None)
                st.rerun()
    if data.slack_webhooks:
        shown = {h.slack_webhook_id: h.shown for h in data.slack_webhooks}
        chosen = st.selectbox(
            "Slack channel", list(shown), format_func=shown.__getitem__, key="alerts.slack_pick"
        )
        sure = st.checkbox("Yes, remove this Slack channel", key=f"alerts.slack_confirm{chosen}")
        if st.button("Remove it", key="alerts.slack_delete", disabled=not sure):
            try:
                write(
                    ctx,
                    lambda s, actor: delete_slack_webhook(
                        s, account_id=ctx.account_id, slack_webhook_id=chosen, actor=actor, at=now
                    ),
                )
            except BillingError as error:
                show_error(error)
                return
            flash("Slack channel removed; rules that used it keep their other channels.")
            st.rerun()


def history_section(data: AlertsData) -> None:
    tz = data.account.timezone
    st.subheader("Firing history")
    if not data.firings:
        st.caption("Nothing has fired yet.")
    else:
        st.caption(zone_note(tz, system_clock()))
        st.dataframe(
            pd.DataFrame(
                {
                    "When": [local(f.at, tz) for f in data.firings],
                    "What": [f.subject for f in data.firings],
                    "Event": [f.event.title() for f in data.firings],
                    "Value": [format_value(f.value, f.unit) for f in data.firings],
                    "Threshold": [format_value(f.threshold, f.unit) for f in data.firings],
                    "Message": [f.message for f in data.firings],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"When": st.column_config.TextColumn("When", pinned=True)},
        )
    st.subheader("Deliveries")
    if not data.deliveries:
        st.caption("No messages sent yet.")
        return
    st.caption(zone_note(tz, system_clock()))
    st.dataframe(
        pd.DataFrame(
            {
                "When": [local(d.created_at, tz) for d in data.deliveries],
                "Channel": [d.channel.replace("_", "-") for d in data.deliveries],
                "To": [d.target for d in data.deliveries],
                "Status": [d.status for d in data.deliveries],
                "Attempts": [d.attempts for d in data.deliveries],
                "Next attempt": [
                    local(d.next_attempt_at, tz) if d.status == "pending" else "—" for d in data.deliveries
                ],
                "Last error": [d.last_error for d in data.deliveries],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"When": st.column_config.TextColumn("When", pinned=True)},
    )


st.title("Alerts")
context = page_context()
if context is None:
    st.stop()
try:
    alerts_data = read(context, lambda session, account: load(session, account, email=context.email))
except BillingError as error:
    show_error(error)
    st.stop()

st.caption(f"{literal(alerts_data.account.name)} · {as_of(system_clock(), alerts_data.account.timezone)}")
message = st.session_state.pop(FLASH_KEY, None)
if message:
    st.success(message)
notification_centre(context, alerts_data)
rules_editable = may(context, alerts_data.account, "alerts.edit")
rules_table(alerts_data, editable=rules_editable)
if rules_editable:
    edit_section(context, alerts_data)
elif context.read_only:
    st.caption(READ_ONLY_HELP)
else:
    st.caption(
        f"Your role ({alerts_data.account.role}) can see alert rules; owners and admins can change them."
    )
webhooks_section(context, alerts_data)
slack_section(context, alerts_data)
history_section(alerts_data)
