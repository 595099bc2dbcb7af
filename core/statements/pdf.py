"""Statements and receipts as PDF (fpdf2), from their plain data, figures by ``core.display``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from core.display import (
    credits_change_number,
    credits_number,
    exact_credits,
    format_credits,
    format_date,
    format_date_range,
    format_datetime,
    format_dollars_cents,
)
from core.statements.company import Company
from core.statements.model import SECTIONS, Statement, StatementLine
from core.statements.pdftext import PdfFont, document_font, printable
from core.statements.receipts import Receipt

MARGIN = 15
LINE = 6
PROVIDER_LABELS = {"stripe": "Stripe", "sandbox": "Sandbox (test mode: no card was charged)"}
# Fixed document metadata: the same statement gives the same bytes whenever it is made.
CREATED = datetime(2026, 1, 1)


class _Document(FPDF):
    def __init__(self, font: PdfFont, footer_text: str) -> None:
        super().__init__(format="A4")
        self.font = font
        self.footer_text = footer_text
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN + 5)
        self.set_creation_date(CREATED)
        if font.regular is not None and font.bold is not None:
            self.add_font(font.family, "", str(font.regular))
            self.add_font(font.family, "B", str(font.bold))
        else:
            self.core_fonts_encoding = "windows-1252"
        self.add_page()

    def text_of(self, text: str) -> str:
        return printable(text, self.font)

    def style(self, size: float, bold: bool = False) -> None:
        self.set_font(self.font.family, "B" if bold else "", size)

    def line_of(self, text: str, *, size: float = 10, bold: bool = False, height: float = LINE) -> None:
        self.style(size, bold)
        self.multi_cell(0, height, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def pairs(self, rows: Sequence[tuple[str, str]], *, label_width: float = 55) -> None:
        for label, value in rows:
            self.style(10, True)
            self.cell(label_width, LINE, self.text_of(label))
            self.style(10)
            self.multi_cell(0, LINE, self.text_of(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(
        self, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int], right: int
    ) -> None:
        """A table; columns from ``right`` on are figures, aligned right."""
        self.style(9)
        aligns = tuple("LEFT" if index < right else "RIGHT" for index in range(len(header)))
        with self.table(
            col_widths=tuple(widths),
            text_align=aligns,  # type: ignore[arg-type]
            line_height=5,
            first_row_as_headings=True,
            borders_layout="HORIZONTAL_LINES",
        ) as table:
            for cells in [header, *rows]:
                row = table.row()
                for cell in cells:
                    row.cell(self.text_of(cell))
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-MARGIN)
        self.style(8)
        self.cell(0, 5, self.text_of(f"{self.footer_text} · Page {self.page_no()} of {{nb}}"), align="C")


def _issuer(pdf: _Document, company: Company) -> None:
    pdf.line_of(company.name, size=14, bold=True, height=7)
    for line in company.address_lines:
        pdf.line_of(line, size=9, height=4.5)
    pdf.ln(4)


def _day(line: StatementLine) -> str:
    return format_date(line.day) if line.day else ""


SECTION_TABLES: dict[str, tuple[tuple[str, ...], tuple[int, ...], int]] = {
    "purchases": (("Date", "Top-up", "Amount ($)", "Credits"), (35, 75, 35, 35), 2),
    "grants": (("Date", "Grant", "Description", "Credits"), (30, 25, 90, 35), 3),
    "usage": (("Meter", "Model", "Quantity", "Credits"), (50, 55, 40, 35), 2),
    "expired": (("Date", "Grant", "Description", "Credits"), (30, 30, 85, 35), 3),
    "refunds": (("Date", "Reference", "Description", "Credits"), (30, 30, 85, 35), 3),
    "adjustments": (("Date", "Reference", "Description", "Credits"), (30, 30, 85, 35), 3),
}


def _cells(section: str, line: StatementLine) -> list[str]:
    amount = credits_change_number(line.amount_nanos)
    if section == "purchases":
        dollars = format_dollars_cents(line.amount_cents) if line.amount_cents is not None else "—"
        return [_day(line), line.description, dollars, amount]
    if section == "usage":
        quantity = f"{line.quantity:,} {line.unit}" if line.quantity is not None else ""
        return [line.description, line.reference, quantity, amount]
    return [_day(line), line.reference, line.description, amount]


def statement_pdf(statement: Statement, company: Company, *, font: PdfFont | None = None) -> bytes:
    """The statement as a PDF: issuer, account and period, the summary with its exact identity,
    then each section's lines with a total."""
    month = statement.month
    today = statement.issued_at.astimezone(ZoneInfo(month.timezone)).date()
    last_day = month.last_day if statement.closed else min(max(today, month.first_day), month.last_day)
    pdf = _Document(
        font or document_font(), f"{company.name} · Statement {month.key} · {statement.account_id}"
    )
    _issuer(pdf, company)
    pdf.line_of(f"Statement of credits: {month.label}", size=16, bold=True, height=8)
    if not statement.closed:
        pdf.line_of("Month to date: not final until the month ends.", size=10)
    pdf.ln(2)
    period = format_date_range(month.first_day, last_day)
    pdf.pairs(
        [
            ("Account", f"{statement.account_name} ({statement.account_id})"),
            ("Period", f"{period} ({statement.timezone})"),
            ("Issued", format_datetime(statement.issued_at, statement.timezone)),
        ]
    )
    pdf.ln(3)
    pdf.line_of("Summary", size=12, bold=True, height=7)
    opening_day = format_date(month.first_day)
    closing_label = (
        f"Closing balance, end of {format_date(last_day)}"
        if statement.closed
        else f"Balance as of {format_datetime(statement.issued_at, statement.timezone)}"
    )
    pdf.grid(
        ("", "Credits"),
        [
            (
                f"Opening balance, start of {opening_day}",
                credits_number(statement.opening_nanos),
            ),
            ("Additions", credits_change_number(statement.additions_nanos)),
            ("Deductions", credits_change_number(-statement.deductions_nanos)),
            (closing_label, credits_number(statement.closing_nanos)),
        ],
        (145, 35),
        1,
    )
    pdf.line_of(
        "Opening + additions - deductions = closing, exactly: "
        f"{_exact(statement.opening_nanos)} + {_exact(statement.additions_nanos)} - "
        f"{_exact(statement.deductions_nanos)} = {_exact(statement.closing_nanos)} credits",
        size=9,
        height=5,
    )
    pdf.ln(3)
    for section, title in SECTIONS.items():
        lines = statement.section(section)
        pdf.line_of(title, size=12, bold=True, height=7)
        if not lines:
            pdf.line_of("None this month.", size=9, height=5)
            pdf.ln(2)
            continue
        header, widths, right = SECTION_TABLES[section]
        total = sum(line.amount_nanos for line in lines)
        rows = [_cells(section, line) for line in lines]
        rows.append(["Total", "", "", credits_change_number(total)])
        pdf.grid(header, rows, widths, right)
    pdf.line_of(
        "Amounts in credits (1 credit = $1.00), rounded to 2 decimals (half-even); the statement's CSV "
        "has every digit. Dates are the account's days in "
        f"{statement.timezone}. Usage is listed by meter and model as the ledger charged it.",
        size=8,
        height=4,
    )
    return bytes(pdf.output())


def _exact(nanos: int) -> str:
    return exact_credits(nanos).removesuffix(" credits")


def receipt_pdf(
    receipt: Receipt, company: Company, *, base_url: str = "", font: PdfFont | None = None
) -> bytes:
    """A paid top-up's receipt as a PDF (no tax line: the payments model records no tax)."""
    pdf = _Document(font or document_font(), f"{company.name} · Receipt {receipt.number}")
    _issuer(pdf, company)
    pdf.line_of(f"Receipt {receipt.number}", size=16, bold=True, height=8)
    pdf.ln(2)
    pdf.pairs(
        [
            ("Receipt number", receipt.number),
            ("Date paid", format_datetime(receipt.paid_at, receipt.timezone)),
            ("Billed to", f"{receipt.account_name} ({receipt.account_id})"),
            ("Billing email", receipt.billing_email or "—"),
        ]
    )
    pdf.ln(3)
    pdf.grid(
        ("Description", "Credits", "Price per credit", "Amount"),
        [
            (
                f"Prepaid credits, top-up #{receipt.top_up_id}",
                format_credits(receipt.credits_nanos),
                f"${receipt.price_per_credit:,f}",
                format_dollars_cents(receipt.amount_cents),
            ),
            ("Total paid", "", "", format_dollars_cents(receipt.amount_cents)),
        ],
        (80, 35, 30, 35),
        1,
    )
    rows = [
        ("Paid with", receipt.card_label or "Card (not recorded)"),
        ("Payment id", receipt.payment_id or "—"),
        ("Payment provider", PROVIDER_LABELS.get(receipt.provider, receipt.provider)),
    ]
    if receipt.refunded_cents:
        rows.append(("Refunded since", format_dollars_cents(receipt.refunded_cents)))
    url = receipt.provider_receipt_url
    if url.startswith("/") and base_url:
        url = base_url.rstrip("/") + url
    if url.startswith(("http://", "https://")):
        rows.append(("Provider's receipt", url))
    pdf.pairs(rows)
    pdf.ln(4)
    pdf.line_of(
        f"{format_dollars_cents(receipt.amount_cents)} → {format_credits(receipt.credits_nanos)} "
        "added to the account's prepaid balance (1 credit = $1.00). Amounts in US dollars.",
        size=9,
        height=5,
    )
    return bytes(pdf.output())
