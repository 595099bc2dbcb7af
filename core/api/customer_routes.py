"""The customer routes: what a customer API key may call (the server token may too, for any account).

    GET /api/v1/usage    quantities per meter in UTC buckets (scope usage:read)
    GET /api/v1/costs    amounts in UTC buckets (scope usage:read); format=json
    GET /api/v1/balance  balance, open grants with what is left and when they expire (scope balance:read)

A customer key reads its own account: ``account_id`` may be left out, and any other id is a 404,
as for an account that does not exist. With the server token ``account_id`` is required. The
query is checked by ``core.usage.report_query`` (422 naming the parameter) and read by
``core.usage.report``; money is ``amount`` (credits, an exact decimal string with 9 places) with
``amount_nanos`` beside it, as everywhere in this API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.api.auth import Caller
from core.api.errors import APIJSONResponse
from core.clock import Clock
from core.customer_keys import BALANCE_READ, USAGE_READ
from core.db import unit_of_work
from core.errors import ValidationError
from core.ledger import balance_view
from core.ledger.views import BalanceView
from core.money import nanos_to_credits
from core.text import is_clean_text
from core.usage.focus import focus_csv, focus_snapshot
from core.usage.report import Report, ReportResult, read_report
from core.usage.report_query import MAX_ACCOUNT_ID, ReportKind, parse_report_query

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Handler]  # guarded(handler, scope=...) from core.api.routes

# ``GET /api/v1/costs?format=…``: the JSON report (buckets), or ``format=focus&month=YYYY-MM``: the
# account's month as a FOCUS CSV (``core.usage.focus``), which takes only account_id and month.
COST_FORMATS = ("json", "focus")
COSTS_PARAMETERS = ("format",)
FOCUS_PARAMETERS = frozenset({"format", "month", "account_id"})


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def credits_text(nanos: int) -> str:
    return format(nanos_to_credits(nanos), "f")


def balance_answer(view: BalanceView) -> dict[str, object]:
    """The JSON of an account's balance (the server route and the customer route answer the same)."""
    return {
        "account_id": view.account_id,
        "balance_nanos": view.balance_nanos,
        "balance_credits": credits_text(view.balance_nanos),
        "deficit_nanos": view.deficit_nanos,
        "grants": [
            {
                "grant_id": g.grant_id,
                "source": g.source,
                "description": g.description,
                "priority": g.priority,
                "amount_nanos": g.amount_nanos,
                "remaining_nanos": g.remaining_nanos,
                "remaining_credits": credits_text(g.remaining_nanos),
                "expires_at": iso(g.expires_at),
            }
            for g in view.grants
        ],
        "as_of": iso(view.as_of),
    }


def _result(result: ReportResult) -> dict[str, Any]:
    answer: dict[str, Any] = dict(result.groups)
    if result.quantity is not None:
        answer["unit"] = result.unit
        answer["quantity"] = result.quantity
        answer["events"] = result.events
    answer["amount"] = credits_text(result.amount_nanos)
    answer["amount_nanos"] = result.amount_nanos
    return answer


def report_answer(report: Report, *, as_of: datetime) -> dict[str, Any]:
    """The report as JSON; ``as_of`` is when its rollups were read (usage received later, even for
    these buckets, shows in a later read)."""
    query = report.query
    return {
        "account_id": report.account_id,
        "start": iso(query.start),
        "end": iso(query.end),
        "bucket": query.bucket,
        "group_by": list(query.group_by),
        "buckets": [
            {"start": iso(b.start), "end": iso(b.end), "results": [_result(r) for r in b.results]}
            for b in report.buckets
        ],
        "has_more": report.next_page is not None,
        "next_page": report.next_page,
        "as_of": iso(as_of),
    }


def _caller(request: Request) -> Caller:
    return request.state.caller


def _account_param(request: Request) -> str | None:
    values = request.query_params.getlist("account_id")
    if len(values) > 1:
        raise ValidationError("give account_id once", code="repeated", field="account_id")
    if not values:
        return None
    value = values[0]
    if not 0 < len(value) <= MAX_ACCOUNT_ID or not is_clean_text(value):
        raise ValidationError(
            f"account_id is 1 to {MAX_ACCOUNT_ID} characters", code="invalid", field="account_id"
        )
    return value


def customer_routes(engine_provider: Callable[[], Engine], *, clock: Clock, guarded: Guard) -> list[Route]:
    """The routes customer API keys may call; ``guarded`` decides the caller and the scope."""

    def report(kind: ReportKind, caller: Caller, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        query = parse_report_query(kind, pairs, extra=COSTS_PARAMETERS if kind == "costs" else ())
        resolved = query.resolved(caller.account_for(query.account_id))
        with unit_of_work(engine_provider()) as session:
            as_of = clock()
            return report_answer(read_report(session, resolved), as_of=as_of)

    async def get_usage(request: Request) -> Response:
        pairs = list(request.query_params.multi_items())
        return APIJSONResponse(await run_in_threadpool(report, "usage", _caller(request), pairs))

    def focus(caller: Caller, requested: str | None, month: str) -> bytes:
        account_id = caller.account_for(requested)
        with focus_snapshot(engine_provider()) as session:
            return focus_csv(session, account_id, month)

    async def get_focus(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - FOCUS_PARAMETERS)
        if unknown:
            shown = unknown[0][:40] if is_clean_text(unknown[0]) else "?"
            raise ValidationError(
                f"unknown parameter {shown!r} for format=focus; use account_id and month",
                code="unknown_parameter",
                field=shown,
            )
        months = request.query_params.getlist("month")
        if len(months) != 1:
            raise ValidationError("give the month once, as YYYY-MM", code="invalid", field="month")
        requested = _account_param(request)
        body = await run_in_threadpool(focus, _caller(request), requested, months[0])
        # month passed focus_csv's check (YYYY-MM): safe in a file name.
        name = f"focus-{months[0]}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def get_costs(request: Request) -> Response:
        formats = request.query_params.getlist("format")
        if len(formats) > 1 or (formats and formats[0] not in COST_FORMATS):
            raise ValidationError(
                f"format is one of {', '.join(COST_FORMATS)}", code="unknown_format", field="format"
            )
        if formats == ["focus"]:
            return await get_focus(request)
        pairs = list(request.query_params.multi_items())
        return APIJSONResponse(await run_in_threadpool(report, "costs", _caller(request), pairs))

    def balance(caller: Caller, requested: str | None) -> dict[str, object]:
        account_id = caller.account_for(requested)
        with unit_of_work(engine_provider()) as session:
            return balance_answer(balance_view(session, account_id, at=clock()))

    async def get_balance(request: Request) -> Response:
        requested = _account_param(request)
        unknown = sorted(set(request.query_params) - {"account_id"})
        if unknown:
            shown = unknown[0][:40] if is_clean_text(unknown[0]) else "?"
            raise ValidationError(
                f"unknown parameter {shown!r}; use account_id", code="unknown_parameter", field=shown
            )
        return APIJSONResponse(await run_in_threadpool(balance, _caller(request), requested))

    return [
        Route("/api/v1/usage", guarded(get_usage, scope=USAGE_READ), methods=["GET"]),
        Route("/api/v1/costs", guarded(get_costs, scope=USAGE_READ), methods=["GET"]),
        Route("/api/v1/balance", guarded(get_balance, scope=BALANCE_READ), methods=["GET"]),
    ]
