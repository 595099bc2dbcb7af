"""A month's statement as plain data: opening balance, the lines that moved it, closing balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from core.statements.months import StatementMonth

# Sections in the order the statement prints them, with their titles.
SECTIONS: dict[str, str] = {
    "purchases": "Purchases",
    "grants": "Promotional and goodwill credits",
    "usage": "Usage by meter and model",
    "expired": "Expired credits",
    "refunds": "Refunds and disputes",
    "adjustments": "Adjustments",
}


@dataclass(frozen=True)
class StatementLine:
    """One line of a statement: a purchase, a grant, usage of one meter and model, an expiry, …

    ``amount_nanos`` is signed (+ adds credits, - removes them); ``kind`` is the CSV's
    ``row_type``. A purchase carries the dollars charged (``amount_cents``); a usage line
    its quantity and unit.
    """

    section: str
    kind: str
    day: date | None  # the account's local day of the line's first entry (None: the whole month)
    description: str
    reference: str
    amount_nanos: int
    amount_cents: int | None = None
    quantity: int | None = None
    unit: str = ""


@dataclass(frozen=True)
class Statement:
    """An account's statement for one month on its own clock (month to date while it runs).

    ``opening_nanos + additions_nanos - deductions_nanos == closing_nanos`` holds exactly:
    the lines partition the month's ledger entries, and the closing balance is read from the
    ledger, not computed from the lines.
    """

    account_id: str
    account_name: str
    timezone: str
    month: StatementMonth
    issued_at: datetime
    closed: bool  # False: month to date, not final
    opening_nanos: int
    closing_nanos: int
    lines: tuple[StatementLine, ...]

    @property
    def additions_nanos(self) -> int:
        return sum(line.amount_nanos for line in self.lines if line.amount_nanos > 0)

    @property
    def deductions_nanos(self) -> int:
        """What left the balance, as a positive number."""
        return -sum(line.amount_nanos for line in self.lines if line.amount_nanos < 0)

    @property
    def balanced(self) -> bool:
        return self.opening_nanos + self.additions_nanos - self.deductions_nanos == self.closing_nanos

    def section(self, name: str) -> tuple[StatementLine, ...]:
        return tuple(line for line in self.lines if line.section == name)
