"""Who issues statements and receipts: ``METERLINE_COMPANY_NAME`` and ``METERLINE_COMPANY_ADDRESS``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from core.usage.focus import company_name

COMPANY_ADDRESS_SETTING = "METERLINE_COMPANY_ADDRESS"
MAX_ADDRESS_LINES = 6
MAX_LINE = 120


@dataclass(frozen=True)
class Company:
    name: str
    address_lines: tuple[str, ...]


def address_lines(raw: str) -> tuple[str, ...]:
    """The address's lines: separated by newlines or "|" (an environment variable holds one line)."""
    parts = raw.replace("\\n", "\n").replace("|", "\n").splitlines()
    lines = (" ".join(part.split())[:MAX_LINE] for part in parts)
    return tuple(line for line in lines if line)[:MAX_ADDRESS_LINES]


def company(env: Mapping[str, str] | None = None) -> Company:
    """The issuer printed on statements and receipts (no address configured: none printed)."""
    source = os.environ if env is None else env
    return Company(company_name(source), address_lines(source.get(COMPANY_ADDRESS_SETTING, "")))
