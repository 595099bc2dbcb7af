"""Customer statements and receipts: what the ledger says about a month, and what a payment bought.

``statement`` builds a month's statement (a plain frozen dataclass) from ledger entries;
``statement_csv`` and ``statement_pdf`` write it. ``receipt`` reads a paid top-up's receipt;
``receipt_pdf`` writes it. Nothing here imports Streamlit; the caller owns the session.
"""

from core.statements.build import build_statement, statement
from core.statements.company import Company, company
from core.statements.csv import statement_csv, statement_file_name
from core.statements.model import Statement, StatementLine
from core.statements.months import StatementMonth, statement_month, statement_months
from core.statements.pdf import receipt_pdf, statement_pdf
from core.statements.receipts import RECEIPT_STATES, Receipt, receipt, receipt_file_name, receipt_number

__all__ = [
    "RECEIPT_STATES",
    "Company",
    "Receipt",
    "Statement",
    "StatementLine",
    "StatementMonth",
    "build_statement",
    "company",
    "receipt",
    "receipt_file_name",
    "receipt_number",
    "receipt_pdf",
    "statement",
    "statement_csv",
    "statement_file_name",
    "statement_month",
    "statement_months",
    "statement_pdf",
]
