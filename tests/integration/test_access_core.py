"""Access at the core (DESIGN invariant 7): members only, within their role; support reads all."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from core.accounts import require_access
from core.db import unit_of_work
from core.errors import PermissionDenied
from tests.app.seed import ALICE, BOB, NOBODY, VIVIAN, seed_accounts


@pytest.fixture
def seeded(engine: Engine, now: datetime) -> Engine:
    seed_accounts(engine, at=now)
    return engine


def test_non_member_is_refused(seeded: Engine) -> None:
    with unit_of_work(seeded) as session, pytest.raises(PermissionDenied) as refused:
        require_access(session, email=ALICE, account_id="acc_borealis")
    assert refused.value.code == "forbidden"
    assert "Borealis" not in refused.value.message


def test_unknown_account_looks_the_same_as_someone_elses(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        with pytest.raises(PermissionDenied) as other:
            require_access(session, email=ALICE, account_id="acc_borealis")
        with pytest.raises(PermissionDenied) as missing:
            require_access(session, email=ALICE, account_id="acc_does_not_exist")
    assert other.value.message == missing.value.message


def test_user_without_memberships_is_refused_everywhere(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        for account_id in ("acc_acme", "acc_borealis", "acc_globex"):
            with pytest.raises(PermissionDenied):
                require_access(session, email=NOBODY, account_id=account_id)


def test_viewer_cannot_do_billing_role_things(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        assert require_access(session, email=VIVIAN, account_id="acc_acme").role == "viewer"
        with pytest.raises(PermissionDenied) as refused:
            require_access(session, email=VIVIAN, account_id="acc_acme", min_role="billing")
        assert refused.value.field == "role"
        assert require_access(session, email=ALICE, account_id="acc_acme", min_role="billing").role == "owner"


def test_role_is_per_account(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        with pytest.raises(PermissionDenied):
            require_access(session, email=ALICE, account_id="acc_globex", min_role="admin")
        assert require_access(session, email=ALICE, account_id="acc_acme", min_role="admin").role == "owner"


def test_support_reads_any_account_but_gets_no_member_writes(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        assert require_access(session, email=BOB, account_id="acc_acme", is_support=True).role == "support"
        with pytest.raises(PermissionDenied):
            require_access(session, email=BOB, account_id="acc_acme", min_role="billing", is_support=True)


def test_email_case_does_not_matter(seeded: Engine) -> None:
    with unit_of_work(seeded) as session:
        assert (
            require_access(session, email=" Alice@ACME.test ", account_id="acc_acme").name == "Acme Robotics"
        )


@pytest.mark.parametrize("account_id", ["acc\x00x", "acc_\ud800", "", "x" * 5_000])
def test_an_impossible_account_id_is_refused_without_a_query(engine: Engine, account_id: str) -> None:
    """A NUL or a lone surrogate (PostgreSQL cannot even be asked), empty, or past the column."""
    from core.accounts import require_access
    from core.errors import NotFound, PermissionDenied

    with unit_of_work(engine) as session:
        with pytest.raises(PermissionDenied):
            require_access(session, email="someone@example.test", account_id=account_id)
        with pytest.raises(NotFound) as found:
            require_access(session, email="agent@example.test", account_id=account_id, is_support=True)
    assert len(found.value.message) < 120
