"""An email header is one line whatever the data holds: a rule name stored with a line separator
(U+2028, VT, FF, NEXT LINE, CR LF, ...) still gets its alert email delivered on the first attempt,
with a one-line subject (Python's email package refuses such a header, and each retry failed the
same way until the delivery gave up)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import Engine, select

from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import AlertRule
from core.spend.alerts import RuleInput, create_rule, delivery_log
from core.spend.channels import send_email, smtp_settings
from core.spend.runtime import evaluate_now
from tests.core.spend.spend_setup import spend
from tests.core.spend.test_alert_channels import OWNER, Inbox, seeded, smtp_server  # noqa: F401

SEPARATORS = "\u2028\u2029\x85\x0b\x0c\r\n\x1c\x1d\x1e\u202e"


def one_line_header(raw: bytes, name: str) -> str:
    """The header ``name`` of a received message, decoded; it must hold no line separator."""
    value = str(message_from_bytes(raw, policy=default)[name])
    assert not any(char in value for char in SEPARATORS), repr(value)
    return value


def test_a_rule_name_with_a_line_separator_is_emailed_on_the_first_attempt(
    seeded: Engine,  # noqa: F811
    now: datetime,
    smtp_server: tuple[str, Inbox],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, inbox = smtp_server
    monkeypatch.setenv("SMTP_URL", url)
    with unit_of_work(seeded, write=True) as session:
        rule = RuleInput(name="Low balance", kind="balance_below", threshold="90", email_to=["ops@a.test"])
        create_rule(session, account_id="acc_a", rule=rule, actor=OWNER, at=now)
    with unit_of_work(seeded, write=True) as session:  # stored before names had to be one line
        session.scalars(select(AlertRule)).one().name = "Low balance\u2028prod\x0b\x0c\x85\r\nbilling"
    spend(seeded, "e1", 20, now - timedelta(hours=1))
    assert evaluate_now(seeded, ["acc_a"], clock=fixed_clock(now)).fired == 1
    assert len(inbox.messages) == 1
    subject = one_line_header(inbox.messages[0][2], "Subject")
    assert subject == "[Meterline] Alert 'Low balance prod billing' fired"
    with unit_of_work(seeded) as session:
        (email,) = [d for d in delivery_log(session, "acc_a") if d.channel == "email"]
    assert (email.status, email.attempts, email.last_error) == ("delivered", 1, "")


@pytest.mark.parametrize("separator", list(SEPARATORS), ids=[f"U+{ord(c):04X}" for c in SEPARATORS])
def test_every_line_separator_in_a_subject_becomes_a_space(
    smtp_server: tuple[str, Inbox],  # noqa: F811
    separator: str,
) -> None:
    url, inbox = smtp_server
    send_email(smtp_settings(url), "ops@a.test", f"Meterline: top-up{separator}Bcc: x@evil.test", "body")
    ((_, recipients, raw),) = inbox.messages
    assert recipients == ["ops@a.test"]
    assert one_line_header(raw, "Subject") == "Meterline: top-up Bcc: x@evil.test"
    assert message_from_bytes(raw, policy=default)["Bcc"] is None
