"""Reaching the support account page's forms in AppTest: each form's widget keys carry the submission
id it was drawn with (``support_account.<form>.<id>.<field>``), read here from session state."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def submission_id(at: AppTest, form: str) -> str:
    return str(at.session_state[f"support_account.submission.{form}"])


def field(at: AppTest, form: str, name: str) -> str:
    """The key of one field of the form as drawn now."""
    return f"support_account.{form}.{submission_id(at, form)}.{name}"


def submit(at: AppTest, form: str, label: str) -> str:
    """The key of the form's submit button labelled ``label``."""
    return f"FormSubmitter:support_account.{form}.{submission_id(at, form)}-{label}"
