"""The operators' dashboard: a server-rendered page at ``/dashboard``, signed in with an API key.

It shows each connection with its server's capabilities and its queue, throughput over time,
recent sync runs and failures, dead letters (with retry buttons), open conflicts and recent
handoffs with their findings. Viewing needs a key with the ``read`` scope; pressing a button
needs ``write`` (``admin`` holds both). Every answer is a page, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from fhir_bridge.config import Settings
from fhir_bridge.store import Conflict, Run, Store
from fhir_bridge.sync import server_limits

from . import _throughput as chart
from ._capability_cache import CapabilityCache
from ._dashboard_sessions import COOKIE, LIFETIME, DashboardSessions, SignInLimit
from ._deps import MAX_ROW_ID, SettingsDep, StoreDep

log = logging.getLogger("fhir_bridge.api")
router = APIRouter(prefix="/dashboard", include_in_schema=False)
SHOWN = 100  # rows of a list shown at most
RUNS_SHOWN = 20
VALUE_CHARS = 160  # a conflicting value is cut to this length on the page
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _took(run: Run) -> str:
    if run.finished_at is None:
        return "running"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _counts(counts: dict[str, Any]) -> str:
    shown = [f"{name.replace('_', ' ')} {n}" for name, n in counts.items() if n]
    return " · ".join(shown) or "nothing to do"


_templates = Environment(
    loader=PackageLoader("fhir_bridge.api", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(when=_when, took=_took, counts=_counts)


@dataclass(frozen=True)
class Operator:
    """Who is signed in: the scopes of their key."""

    scopes: tuple[str, ...]

    @property
    def can_view(self) -> bool:
        return "read" in self.scopes or "admin" in self.scopes

    @property
    def can_act(self) -> bool:
        return "write" in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class _State:
    sessions: DashboardSessions
    capabilities: CapabilityCache
    sign_ins: SignInLimit


_state_lock = threading.Lock()


def _state(request: Request) -> _State:
    """The dashboard's sessions and capability cache, one of each per app."""
    with _state_lock:
        state: _State | None = getattr(request.app.state, "dashboard", None)
        if state is None:
            state = _State(DashboardSessions(), CapabilityCache(), SignInLimit())
            request.app.state.dashboard = state
        return state


def _operator(request: Request, store: StoreDep) -> Operator | None:
    key = _state(request).sessions.key_of(request.cookies.get(COOKIE))
    grant = None if key is None else store.api_keys.check(key, datetime.now(UTC))
    if grant is None:
        return None
    request.state.actor = f"dashboard:{grant.name}"  # who, for the audit trail
    operator = Operator(grant.scopes)
    return operator if operator.can_view else None


OperatorDep = Annotated[Operator | None, Depends(_operator)]


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(f"dashboard/{template}").render(base=_base(request), **context)
    return HTMLResponse(html, status_code=code, headers=HEADERS)


def _to(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_base(request) + path, status.HTTP_303_SEE_OTHER, headers=HEADERS)


def _login_page(request: Request, message: str | None, code: int, error: bool = True) -> Response:
    return _page(request, "login.html", code, message=message, error=error)


@router.get("/login")
def login_form(request: Request, operator: OperatorDep, signed_out: str | None = None) -> Response:
    if operator is not None:
        return _to(request, "/dashboard")
    message = "You are signed out." if signed_out is not None else None
    return _login_page(request, message, 200, error=False)


def _same_origin(request: Request) -> bool:
    """Whether a form was sent from this service's own pages: the ``Origin`` header (else the
    ``Referer``) names the host the request was sent to. A request carrying neither (not a
    browser) passes here; the session's CSRF token still decides."""
    host = request.headers.get("host", "").lower()
    sent_from = request.headers.get("origin") or request.headers.get("referer")
    if sent_from is None:
        return True
    return bool(host) and urlsplit(sent_from).netloc.lower() == host


def _forged(request: Request, csrf: str) -> Response | None:
    """The refusal of a form post from another site or without the session's token."""
    expected = _state(request).sessions.csrf_of(request.cookies.get(COOKIE))
    token_ok = expected is not None and hmac.compare_digest(expected.encode(), csrf.encode())
    if _same_origin(request) and (token_ok or expected is None):
        return None  # (no session at all: the caller sends the visitor to sign in)
    log.warning("dashboard form refused", extra={"action": "dashboard.csrf"})
    return _page(
        request,
        "forbidden.html",
        status.HTTP_403_FORBIDDEN,
        message="This form was not sent from this dashboard (or its page is too old): "
        "reload the page and press the button again.",
    )


Csrf = Annotated[str, Form(max_length=100)]


@router.post("/login")
def login(
    request: Request, store: StoreDep, key: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    if not _same_origin(request):
        return _login_page(request, "Sign in from this dashboard's page.", 403)
    address = request.client.host if request.client else "unknown"
    limit = _state(request).sign_ins
    wait = limit.wait(address)
    if wait is not None:
        log.warning("dashboard sign-in limited", extra={"action": "dashboard.login"})
        page = _login_page(
            request,
            f"Too many failed sign-ins: try again in {wait} seconds.",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )
        page.headers["Retry-After"] = str(wait)
        return page
    key = key.strip()
    if not key:
        return _login_page(request, "Enter an API key.", status.HTTP_400_BAD_REQUEST)
    grant = store.api_keys.check(key, datetime.now(UTC))
    if grant is None:
        limit.failed(address)
        log.info("dashboard sign-in refused", extra={"action": "dashboard.login", "ok": False})
        return _login_page(
            request, "That API key is unknown, revoked or expired.", status.HTTP_401_UNAUTHORIZED
        )
    request.state.actor = f"dashboard:{grant.name}"  # who, for the audit trail
    if not Operator(grant.scopes).can_view:
        return _login_page(
            request,
            "That API key lacks the 'read' scope the dashboard needs.",
            status.HTTP_403_FORBIDDEN,
        )
    response = _to(request, "/dashboard")
    response.set_cookie(
        COOKIE,
        _state(request).sessions.open(key),
        max_age=int(LIFETIME),
        path=_base(request) + "/dashboard",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    log.info("dashboard sign-in", extra={"action": "dashboard.login", "ok": True})
    return response


@router.post("/logout")
def logout(request: Request, csrf: Csrf = "") -> Response:
    refused = _forged(request, csrf)
    if refused is not None:
        return refused
    _state(request).sessions.close(request.cookies.get(COOKIE))
    response = _to(request, "/dashboard/login?signed_out")
    response.delete_cookie(COOKIE, path=_base(request) + "/dashboard")
    return response


@router.get("")
async def dashboard(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    operator: OperatorDep,
    requeued: str | None = None,
) -> Response:
    if operator is None:
        return _to(request, "/dashboard/login")
    now = datetime.now(UTC)
    snapshot = await run_in_threadpool(_snapshot, store, settings, now)
    servers = await _state(request).capabilities.views(settings.connections)
    return _page(
        request,
        "page.html",
        operator=operator,
        csrf=_state(request).sessions.csrf_of(request.cookies.get(COOKIE)),
        notice=_requeued_notice(requeued),
        now=now,
        servers=servers,
        box=_box(snapshot["chart"]),
        **snapshot,
    )


@router.post("/dead-letters/{entry_id}/retry")
def retry(
    request: Request,
    entry_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    store: StoreDep,
    operator: OperatorDep,
    csrf: Csrf = "",
) -> Response:
    return _requeue(request, store, operator, [entry_id], csrf)


@router.post("/dead-letters/retry-all")
def retry_all(
    request: Request, store: StoreDep, operator: OperatorDep, csrf: Csrf = ""
) -> Response:
    return _requeue(request, store, operator, None, csrf)


def _requeue(
    request: Request, store: Store, operator: Operator | None, ids: list[int] | None, csrf: str
) -> Response:
    if operator is None:
        return _to(request, "/dashboard/login")
    refused = _forged(request, csrf)
    if refused is not None:
        return refused
    if not operator.can_act:
        return _page(
            request,
            "forbidden.html",
            status.HTTP_403_FORBIDDEN,
            message="This API key can view the dashboard but not retry: that needs the "
            "'write' scope.",
        )
    count = store.outbox.requeue(ids, datetime.now(UTC))
    log.info("dead letters requeued", extra={"action": "dashboard.retry", "count": count})
    return _to(request, f"/dashboard?requeued={count}#dead-letters")


def _requeued_notice(requeued: str | None) -> str | None:
    if requeued is None or not requeued.isdigit():
        return None
    count = int(requeued)
    if count == 0:
        return "Nothing was queued again: that entry is no longer a dead letter."
    if count == 1:
        return "1 dead letter is queued again; the next push sends it."
    return f"{count} dead letters are queued again; the next push sends them."


def _snapshot(store: Store, settings: Settings, now: datetime) -> dict[str, Any]:
    """Everything the page shows from the store, read in one go."""
    runs = store.runs.recent(200)
    return {
        "queues": {name: store.outbox.depth(name) for name in settings.connections},
        "routes": {name: c.enrol for name, c in settings.connections.items()},
        "enrolled": store.enrolments.counts(),
        "limits": server_limits(store),
        "totals": store.outbox.depth(),
        "chart": chart.throughput(runs, now),
        "runs": runs[:RUNS_SHOWN],
        "dead": store.outbox.dead_letters()[:SHOWN],
        "failures": store.log.recent("failed", RUNS_SHOWN),
        "conflicts": [_conflict_rows(c) for c in store.conflicts.find()[:SHOWN]],
        "handoffs": store.handoffs.recent(RUNS_SHOWN),
        "modes": {n: c.effective_patient_mode for n, c in settings.connections.items()},
        "patients": store.matches.counts(),
        "held": store.matches.held()[:SHOWN],
    }


def _conflict_rows(conflict: Conflict) -> dict[str, Any]:
    return {
        "id": conflict.id,
        "connection": conflict.connection,
        "record": f"{conflict.kind}/{conflict.record_id}",
        "created_at": conflict.created_at,
        "fields": [
            {
                "name": name,
                "local": _value(conflict.local.get(name)),
                "remote": _value(conflict.remote.get(name)),
            }
            for name in conflict.fields
        ]
        or [{"name": "", "local": "", "remote": ""}],
    }


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _box(throughput: chart.Throughput) -> dict[str, Any]:
    """The chart's frame in SVG units, and the label of its middle grid line."""
    top, base = chart.TOP, chart.HEIGHT - chart.BOTTOM
    half = throughput.peak / 2
    return {
        "width": chart.WIDTH,
        "height": chart.HEIGHT,
        "left": chart.LEFT,
        "top": top,
        "base": base,
        "mid": (top + base) / 2,
        "mid_label": f"{half:g}",
    }
