"""Subscriber self-service web app: one-click unsubscribe, preferences and feedback.

Public API::

    create_app(config: Config, store: Store, *, secret: str | None = None) -> Starlette
    serve(config: Config, *, host: str | None = None, port: int | None = None) -> None

Routes (every link is signed by ``newsletter.signing``; no logins, no sessions):

    GET  /unsubscribe/<token>    confirmation page with one button
    POST /unsubscribe/<token>    body ``List-Unsubscribe=One-Click`` (RFC 8058): unsubscribe
    POST /resubscribe/<token>    the done page's button (CSRF-protected)
    GET  /preferences/<token>    form: interests, schedule, max papers
    POST /preferences/<token>    validate, store (``Store.set_prefs``), show the form again
    GET  /feedback/<token>       confirmation page ("Mark as more like this?"), records nothing;
                                 the token: the reader's, the vote, the paper (or, in
                                 older emails, one signed per link; both are accepted)
    POST /feedback/<token>       the confirmation's button (CSRF-protected): record the vote
                                 (idempotent), thank-you page

Nothing here redirects: every response is a page rendered from the package's own
templates (``newsletter/web_templates``, Jinja2 with autoescape), and every link or form
action on those pages is a relative URL built from a token this app signed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from base64 import b64encode
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Config
from .errors import SubscriberNotFound
from .models import Subscriber
from .prefs import (
    LIST_FIELDS,
    MAX_PAPERS,
    Limits,
    apply_prefs,
    limits_for,
    prefs_of,
    trending_interests,
    validate_prefs,
)
from .signing import (
    VOTE,
    BadToken,
    feedback_token,
    secret_for,
    sign,
    verify,
    verify_feedback,
)
from .store import ACTIVE, SUPPRESSED, UNSUBSCRIBED, Store

__all__ = ["create_app", "serve"]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes: the largest form this app accepts
CSRF_COOKIE = "newsletter_csrf"
CSRF_MAX_AGE = 24 * 3600  # seconds a form stays valid
ONE_CLICK = ("List-Unsubscribe", "One-Click")
# In the reason of an unsubscribe recorded while deliveries were paused (suppressed), before
# the pause's own reason: a resubscribe then restores the pause instead of lifting it.
PAUSED_BEFORE = "; deliveries were paused before: "

# The only stylesheet; the CSP allows exactly this text by its hash, no other style or
# script, so injected markup (if any ever got through escaping) could do nothing.
CSS = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;
background:#f4f5f7;margin:0;padding:24px 12px}
main{max-width:640px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.4em;margin:0 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}
p.muted,small{color:#5b6475}.error{color:#a11a1a}
.errors{background:#fdecec;border:1px solid #f3b4b4;border-radius:6px;padding:8px 16px}
.ok{background:#e9f7ee;border:1px solid #a9dcba;border-radius:6px;padding:8px 16px}
button{font:inherit;padding:10px 18px;border:0;border-radius:6px;background:#2a5bd7;
color:#fff;cursor:pointer}button.secondary{background:#5b6475}
label{display:block;font-weight:600;margin:.6em 0 .2em}
input[type=text],input[type=number],textarea{width:100%;box-sizing:border-box;font:inherit;
padding:6px 8px;border:1px solid #c5cad3;border-radius:4px}
textarea{min-height:3.2em}fieldset{border:1px solid #dde1e7;border-radius:6px;
margin:1em 0;padding:8px 16px 16px}legend{font-weight:600;padding:0 6px}
label.inline{display:inline;font-weight:400}
""".strip()
CSS_HASH = b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

SECURITY_HEADERS = {
    "content-security-policy": (
        f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",  # pages carry signed tokens
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: the security headers above on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.raw if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True, slots=True)
class _Ctx:
    config: Config
    store: Store
    secret: str
    env: Environment
    secure_cookie: bool


class _Refused(Exception):
    """Stop handling a request and show a page with this status and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message
        super().__init__(message)


def _page(ctx: _Ctx, template: str, code: int = 200, **values: Any) -> HTMLResponse:
    html = ctx.env.get_template(template).render(css=CSS, **values)
    return HTMLResponse(html, status_code=code)


def _message(ctx: _Ctx, status: int, title: str, message: str) -> HTMLResponse:
    return _page(ctx, "message.html", status, title=title, message=message)


def _token(ctx: _Ctx, request: Request, purpose: str) -> dict[str, Any]:
    token = request.path_params["token"]
    try:
        if purpose == "feedback":  # per-reader tokens, and the per-link ones of older emails
            return verify_feedback(ctx.secret, token)
        return verify(ctx.secret, purpose, token)
    except BadToken as err:
        forged = "signature" in str(err)
        raise _Refused(
            403 if forged else 400,
            "This link is not valid",
            f"The link {'was changed or is not ours' if forged else 'is damaged'}: {err}. "
            "Copy the whole link from your latest email, or use the link in its footer.",
        ) from err


def _subscriber(ctx: _Ctx, email: str) -> Subscriber:
    try:
        return ctx.config.subscriber(email)
    except SubscriberNotFound as err:
        raise _Refused(
            404,
            "Not on the list",
            f"The address {email} is no longer on this newsletter's list, so there is "
            "nothing to change. If this is a mistake, write to the newsletter's sender.",
        ) from err


def _relative(purpose: str, token: str) -> str:
    """A link from a page at ``/<any>/<token>`` to ``/<purpose>/<token>`` (prefix-safe)."""
    return f"../{purpose}/{quote(token)}"


# -- CSRF: signed double-submit. A random nonce lives in a SameSite=Strict cookie; each
# form carries a token signed for (subscriber, form, nonce, time). A POST is accepted only
# when the form's token verifies, names this subscriber and form, is recent, and its nonce
# equals the cookie's: a page on another site can neither read nor set that cookie.


def _csrf_nonce(request: Request) -> tuple[str, bool]:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum():
        return nonce, False
    return secrets.token_urlsafe(24), True


def _csrf_token(ctx: _Ctx, email: str, form: str, nonce: str) -> str:
    return sign(ctx.secret, "csrf", {"s": email, "f": form, "n": nonce, "t": int(time.time())})


def _with_csrf_cookie(ctx: _Ctx, response: Response, nonce: str, fresh: bool) -> Response:
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=CSRF_MAX_AGE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=ctx.secure_cookie,
        )
    return response


def _check_csrf(ctx: _Ctx, request: Request, form: FormData, email: str, name: str) -> None:
    refused = _Refused(
        403,
        "Please try again",
        "This form has expired or was not sent from this site. "
        "Open the link from your email again and resubmit the form.",
    )
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise refused
    raw = form.get("csrf")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(raw, str) or not cookie:
        raise refused
    try:
        data = verify(ctx.secret, "csrf", raw)
    except BadToken as err:
        raise refused from err
    age = time.time() - float(data.get("t", 0))
    if (
        data.get("s") != email
        or data.get("f") != name
        or not hmac.compare_digest(str(data.get("n", "")).encode(), cookie.encode())
        or not -300 <= age <= CSRF_MAX_AGE
    ):
        raise refused


# -- handlers -----------------------------------------------------------------------------


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=400, max_part_size=MAX_BODY)


def _unsubscribe_done(ctx: _Ctx, request: Request, email: str, known: bool) -> Response:
    nonce, fresh = _csrf_nonce(request)
    resubscribe = sign(ctx.secret, "resubscribe", {"s": email})
    response = _page(
        ctx,
        "unsubscribed.html",
        email=email,
        known=known,
        resubscribe_action=_relative("resubscribe", resubscribe),
        csrf=_csrf_token(ctx, email, "resubscribe", nonce),
    )
    return _with_csrf_cookie(ctx, response, nonce, fresh)


async def unsubscribe(ctx: _Ctx, request: Request) -> Response:
    email = _token(ctx, request, "unsubscribe")["s"]
    try:
        sub: Subscriber | None = ctx.config.subscriber(email)
    except SubscriberNotFound:
        sub = None  # an unsubscribe is honoured even for an address no longer listed
    canonical = sub.email if sub else email.strip().lower()  # (the state's key)
    if request.method == "POST":
        form = await _form(request)
        if form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            raise _Refused(
                400,
                "Nothing was changed",
                "An unsubscribe request must carry List-Unsubscribe=One-Click (RFC 8058). "
                "Use the button on the unsubscribe page.",
            )
        status, reason = await run_in_threadpool(ctx.store.subscriber_status, canonical)
        if status != UNSUBSCRIBED:  # idempotent: a second click keeps the first record
            why = "one-click unsubscribe link"
            if status == SUPPRESSED:  # kept, so that resubscribing cannot lift the pause
                why += f"{PAUSED_BEFORE}{reason or 'bounces'}"
            await run_in_threadpool(ctx.store.set_subscriber_status, canonical, UNSUBSCRIBED, why)
        return _unsubscribe_done(ctx, request, canonical, sub is not None)
    status, _ = await run_in_threadpool(ctx.store.subscriber_status, canonical)
    if status == UNSUBSCRIBED:
        return _unsubscribe_done(ctx, request, canonical, sub is not None)
    return _page(ctx, "unsubscribe.html", email=canonical, one_click=ONE_CLICK)


async def resubscribe(ctx: _Ctx, request: Request) -> Response:
    email = _token(ctx, request, "resubscribe")["s"]
    sub = _subscriber(ctx, email)
    form = await _form(request)
    _check_csrf(ctx, request, form, sub.email, "resubscribe")
    status, reason = await run_in_threadpool(ctx.store.subscriber_status, sub.email)
    if status == UNSUBSCRIBED and reason and PAUSED_BEFORE in reason:
        # Unsubscribed while deliveries were paused for bounces: back to the pause, which
        # only the sender lifts (``newsletter reactivate``), not to active.
        paused = reason.split(PAUSED_BEFORE, 1)[1]
        await run_in_threadpool(ctx.store.set_subscriber_status, sub.email, SUPPRESSED, paused)
        status = SUPPRESSED
    if status == SUPPRESSED:
        return _message(
            ctx,
            409,
            "Deliveries are paused",
            f"Mail to {sub.email} kept bouncing, so deliveries were paused. "
            "Ask the newsletter's sender to check the address and lift the pause.",
        )
    if status == UNSUBSCRIBED:
        await run_in_threadpool(
            ctx.store.set_subscriber_status, sub.email, ACTIVE, "resubscribed via link"
        )
    prefs = sign(ctx.secret, "preferences", {"s": sub.email})
    return _page(
        ctx, "resubscribed.html", email=sub.email, preferences=_relative("preferences", prefs)
    )


def _split(text: str, *, commas: bool) -> list[str]:
    seps = text.replace("\r", "\n")
    if commas:
        seps = seps.replace(",", "\n")
    seps = seps.replace(";", "\n")
    return [part.strip() for part in seps.split("\n") if part.strip()]


def _prefs_from_form(
    form: FormData, trending: Collection[str], limits: Limits
) -> tuple[dict[str, Any], list[str]]:
    """The form's fields as a prefs dict; blank interest slots are ignored."""

    def text(key: str) -> str:
        value = form.get(key, "")
        return value if isinstance(value, str) else ""

    raw: dict[str, Any] = {"schedule": text("schedule"), "max_papers": text("max_papers")}
    interests = []
    try:
        count = min(int(text("count") or 0), limits.interests + 1)
    except ValueError:
        count = 0
    for i in range(count):
        item = {
            "name": text(f"i{i}_name"),
            "description": text(f"i{i}_description"),
            **{key: _split(text(f"i{i}_{key}"), commas=key != "authors") for key in LIST_FIELDS},
        }
        blank = not any(item[k] for k in ("name", "description", *LIST_FIELDS))
        if blank or text(f"i{i}_remove"):
            continue
        interests.append(item)
    raw["interests"] = interests
    return validate_prefs(raw, trending=trending, limits=limits)


def _joined(value: Any) -> str:
    return value if isinstance(value, str) else "\n".join(value)


def _form_values(prefs: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """A prefs dict as the form shows it (lists joined one per line), plus an empty slot."""
    interests = [
        {
            "name": i.get("name", ""),
            "description": i.get("description", ""),
            **{key: _joined(i.get(key, [])) for key in LIST_FIELDS},
        }
        for i in prefs.get("interests", [])
    ]
    if len(interests) < limits.interests:
        interests.append({"name": "", "description": "", **{k: "" for k in LIST_FIELDS}})
    return {
        "schedule": prefs.get("schedule", ""),
        "max_papers": prefs.get("max_papers", ""),
        "interests": interests,
    }


async def preferences(ctx: _Ctx, request: Request) -> Response:
    email = _token(ctx, request, "preferences")["s"]
    sub = _subscriber(ctx, email)
    stored = await run_in_threadpool(ctx.store.get_prefs, sub.email)
    current = prefs_of(apply_prefs(sub, stored))
    limits = limits_for(sub)  # (what the config gives this reader can always be saved)
    errors: list[str] = []
    saved = False
    shown = current
    if request.method == "POST":
        form = await _form(request)
        _check_csrf(ctx, request, form, sub.email, "preferences")
        clean, errors = _prefs_from_form(form, trending_interests(sub), limits)
        if not errors and not clean.get("interests") and not sub.trending:
            errors.append("interests: add at least one interest (or unsubscribe instead)")
        if errors:
            # Show what the reader typed, with the problems, and store nothing.
            shown = {
                "schedule": form.get("schedule", ""),
                "max_papers": form.get("max_papers", ""),
                "interests": _prefs_from_form_raw(form, limits),
            }
        else:
            await run_in_threadpool(ctx.store.set_prefs, sub.email, clean)
            shown = prefs_of(apply_prefs(sub, clean))
            saved = True
    status, _ = await run_in_threadpool(ctx.store.subscriber_status, sub.email)
    nonce, fresh = _csrf_nonce(request)
    values = _form_values(shown, limits)
    response = _page(
        ctx,
        "preferences.html",
        400 if errors else 200,
        email=sub.email,
        name=sub.name,
        state=status,
        errors=errors,
        saved=saved,
        csrf=_csrf_token(ctx, sub.email, "preferences", nonce),
        count=len(values["interests"]),
        list_fields=LIST_FIELDS,
        max_allowed=MAX_PAPERS,
        **values,
    )
    return _with_csrf_cookie(ctx, response, nonce, fresh)


def _prefs_from_form_raw(form: FormData, limits: Limits) -> list[dict[str, str]]:
    """The interests exactly as typed (to refill a form that had errors)."""
    out = []
    try:
        count = min(int(str(form.get("count", "0"))), limits.interests + 1)
    except ValueError:
        count = 0
    for i in range(count):
        item = {
            key: str(form.get(f"i{i}_{key}", "")) for key in ("name", "description", *LIST_FIELDS)
        }
        if any(v.strip() for v in item.values()) and not form.get(f"i{i}_remove"):
            out.append(item)
    return out


VOTES = {1: "more like this", -1: "less like this", 0: "no preference"}
VOTE_IDS = {1: "more", -1: "less", 0: "clear"}  # button ids on the thank-you page


async def feedback(ctx: _Ctx, request: Request) -> Response:
    """GET (and HEAD) only asks: mail link scanners open every link in a message, both
    "more" and "less" among them, so a vote is recorded only by the POST of the page's
    button (CSRF-protected, so another site cannot cast it either)."""
    data = _token(ctx, request, "feedback")
    paper_id, vote = data.get("p"), data.get("v")
    if (
        not isinstance(paper_id, str)
        or not paper_id
        or len(paper_id) > 300
        or isinstance(vote, bool)
        or vote not in VOTES
    ):
        raise _Refused(400, "This link is not valid", "The feedback link is damaged.")
    sub = _subscriber(ctx, data["s"])
    recorded = request.method == "POST"
    paper = await run_in_threadpool(ctx.store.get_paper, paper_id)
    if recorded:
        form = await _form(request)
        _check_csrf(ctx, request, form, sub.email, "feedback")
    if paper is None:  # (the paper id of a link is not signed: only known papers count)
        # (asked on GET too: no button for a vote that could not be recorded)
        raise _Refused(
            404,
            "Paper not found",
            "This paper is not in the newsletter's records (a damaged or very old link?), "
            "so nothing was recorded. Use the links under a paper in your latest digest.",
        )
    if recorded:
        # Idempotent: the same vote twice is one vote; another vote replaces it.
        await run_in_threadpool(ctx.store.set_feedback, sub.email, paper_id, vote)
    current = (await run_in_threadpool(ctx.store.feedback, sub.email)).get(paper_id)
    nonce, fresh = _csrf_nonce(request)
    reader = sign(ctx.secret, VOTE, {"s": sub.email})
    others = [
        (VOTE_IDS[v], VOTES[v], _relative("feedback", feedback_token(reader, paper_id, v)))
        for v in VOTES
        if v != vote
    ]
    response = _page(
        ctx,
        "feedback.html" if recorded else "feedback_confirm.html",
        vote=vote,
        label=VOTES[vote],
        current=VOTES.get(current) if current is not None else None,
        paper_title=paper.title if paper else paper_id,
        others=others,
        csrf=_csrf_token(ctx, sub.email, "feedback", nonce),
    )
    return _with_csrf_cookie(ctx, response, nonce, fresh)


async def home(ctx: _Ctx, request: Request) -> Response:
    return _message(
        ctx,
        200,
        "Paper digest",
        "Use the links at the bottom of your digest email to unsubscribe, change your "
        "interests or tell us which papers you liked.",
    )


async def health(ctx: _Ctx, request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(config: Config, store: Store, *, secret: str | None = None) -> Starlette:
    """The ASGI app. ``secret`` defaults to ``signing.secret_for(config, store)``."""
    ctx = _Ctx(
        config=config,
        store=store,
        secret=secret or secret_for(config, store),
        env=Environment(
            loader=PackageLoader("newsletter", "web_templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        ),
        secure_cookie=config.web.base_url.startswith("https://"),
    )

    def bind(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(ctx, request)
                return response
            except _Refused as err:
                return _message(ctx, err.status, err.title, err.message)
            except HTTPException:
                # Starlette's own refusals while reading the body (413 over MAX_BODY, also
                # when sent chunked; 400 for too many fields or a file part): their status,
                # shown by http_error, not a 500 with a traceback in the log.
                raise
            except Exception:  # a page, never a traceback, for the reader; details in the log
                log.exception("web: %s %s failed", request.method, _redacted(request.url.path))
                return _message(
                    ctx,
                    500,
                    "Something went wrong",
                    "The request could not be handled; please try again later.",
                )

        endpoint.__name__ = handler.__name__
        return endpoint

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        titles = {
            400: "Nothing was changed",
            404: "Page not found",
            405: "Not allowed",
            413: "Too large",
        }
        text = {
            400: "The form could not be read. Open the link from your email again.",
            404: "There is no page here. Use the links in your digest email.",
            405: "This page does not accept that kind of request.",
            413: "The form was too large to accept.",
        }
        response = _message(
            ctx,
            status,
            titles.get(status, "Something went wrong"),
            text.get(status, "The request could not be handled; please try again later."),
        )
        if isinstance(exc, HTTPException) and exc.headers:  # e.g. Allow on a 405 (RFC 9110)
            response.headers.update(exc.headers)
        return response

    routes = [
        Route("/", bind(home), methods=["GET"]),
        Route("/healthz", bind(health), methods=["GET"]),
        Route("/unsubscribe/{token}", bind(unsubscribe), methods=["GET", "POST"]),
        Route("/resubscribe/{token}", bind(resubscribe), methods=["POST"]),
        Route("/preferences/{token}", bind(preferences), methods=["GET", "POST"]),
        Route("/feedback/{token}", bind(feedback), methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: http_error},
        max_body_size=MAX_BODY,
    )
    # Starlette answers a path with an extra trailing slash with a redirect built from the
    # Host header (http://<any host>/unsubscribe/<token>): a page that never redirects
    # answers it with 404 instead.
    app.router.redirect_slashes = False
    app.add_middleware(SecurityHeaders)
    return app


_LINK_TOKEN = re.compile(
    r"/(unsubscribe|resubscribe|preferences|feedback)/[^/?#\s]+", flags=re.IGNORECASE
)


def _redacted(path: str) -> str:
    """``path`` with the token of a self-service link replaced by ``[token]``."""
    return _LINK_TOKEN.sub(r"/\1/[token]", path)


class RedactTokens(logging.Filter):
    """Access-log lines without the signed part of self-service links: whoever can read
    the log could otherwise unsubscribe, vote or edit preferences as the reader.
    (uvicorn's access records carry the path as their third argument.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _redacted(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging setup, with ``RedactTokens`` on its access log."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    conf = copy.deepcopy(LOGGING_CONFIG)
    conf.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    conf["loggers"]["uvicorn.access"].setdefault("filters", []).append("redact_tokens")
    return conf


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """Run the web app under uvicorn until interrupted (``newsletter serve``)."""
    import uvicorn

    with Store(config.state) as store:
        app = create_app(config, store)
        uvicorn.run(
            app,
            host=host or config.web.host,
            port=config.web.port if port is None else port,
            log_level="info",
            log_config=log_config(),
            server_header=False,
            proxy_headers=False,
        )
