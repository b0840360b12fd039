"""Command-line interface.

Thin: every command loads the config, calls the library, prints. A library error
(``NewsletterError``) becomes one ``Error: ...`` line per problem and a non-zero
exit; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import click

from . import __version__
from .config import Config, config_path, load_config
from .errors import ConfigError, NewsletterError, SubscriberNotFound, TemplateError
from .models import Digest, Subscriber
from .pipeline import (
    O_ALREADY,
    O_DRY,
    O_EMPTY,
    O_FAILED,
    O_FAILED_EARLIER,
    O_INACTIVE,
    O_RETRY,
    O_SENT,
    O_STOPPED,
    EditionRef,
    Outcome,
    Pipeline,
    run_once,
    summarise_missed,
)
from .store import Store, sqlite_path, utcnow

log = logging.getLogger("newsletter")


class Ctx:
    def __init__(self, config: str | None, debug: bool, quiet: bool) -> None:
        self.config_arg = config
        self.debug = debug
        self.quiet = quiet
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        """The config of a command that may send: every secret must be set."""
        return self.load(sending=True)

    def load(self, *, sending: bool) -> Config:
        """The config; a command that never sends (``sending=False``) runs without the
        SMTP password in the environment (a warning says it is missing)."""
        if self._config is None:
            self._config = load_config(config_path(self.config_arg), secrets=sending)
            for line in self._config.warnings:
                click.echo(f"Warning: {line}", err=True)
        return self._config


pass_ctx = click.make_pass_decorator(Ctx)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format: text for people, json for scripts.",
)


def _setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger("newsletter")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    metavar="PATH",
    help="Config file (default: $NEWSLETTER_CONFIG, else ./subscribers.yaml).",
)
@click.option("--debug", is_flag=True, help="Verbose logs and full tracebacks on errors.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool, quiet: bool) -> None:
    """Personalised research-paper digests: fetch feeds, pick papers per subscriber,
    and email each subscriber exactly one digest per edition."""
    _setup_logging(debug, quiet)
    ctx.obj = Ctx(config, debug, quiet)


# -- validate -------------------------------------------------------------------


@cli.command()
@format_option
@pass_ctx
def validate(c: Ctx, fmt: str) -> None:
    """Check the config (and the templates it uses); print a summary."""
    from .render import Renderer

    try:
        config = c.config
        Renderer(config.templates)  # a broken template is an error now, not mid-send
    except (ConfigError, TemplateError) as err:
        if fmt == "json":  # a script asked for JSON: it gets JSON, and the exit code
            problems = err.problems if isinstance(err, ConfigError) else [str(err)]
            path = str(config_path(c.config_arg))
            click.echo(json.dumps({"config": path, "ok": False, "errors": problems}, indent=2))
        raise
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "config": str(config.path),
                    "ok": True,
                    "state": config.state,
                    "transport": config.delivery.transport,
                    "sources": [
                        {"name": s.name, "type": s.type, "url": s.url, "enabled": s.enabled}
                        for s in config.sources
                    ],
                    "subscribers": [
                        {
                            "email": s.email,
                            "schedule": s.schedule,
                            "timezone": s.timezone,
                            "interests": [i.name for i in s.interests],
                            "trending": s.trending,
                        }
                        for s in config.subscribers
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"OK: {config.path}: {len(config.sources)} source(s), "
        f"{len(config.subscribers)} subscriber(s), transport {config.delivery.transport}"
    )
    click.echo("Sources:")
    for s in config.sources:
        flag = "" if s.enabled else "  (disabled)"
        click.echo(f"  {s.name:<24} {s.type:<10} {s.url}{flag}")
    click.echo("Subscribers:")
    for sub in config.subscribers:
        names = ", ".join(i.name for i in sub.interests) or "-"
        if sub.trending:
            names += " + trending"
        click.echo(
            f"  {sub.email:<32} {sub.schedule} {sub.timezone}  max {sub.max_papers}: {names}"
        )


# -- fetch ----------------------------------------------------------------------


@cli.command()
@format_option
@click.option(
    "--enable",
    "enable",
    metavar="NAME",
    multiple=True,
    help="Re-enable a source that was disabled (after an HTTP 410) before fetching; repeatable.",
)
@pass_ctx
def fetch(c: Ctx, fmt: str, enable: tuple[str, ...]) -> None:
    """Pull every enabled source into the store; print per-source counts.

    A source whose server answered 410 Gone is disabled; fix its url in the config and
    fetch with --enable NAME. Exits 1 when every source failed."""
    config = c.load(sending=False)
    names = [s.name for s in config.sources]
    for name in enable:
        if name not in names:
            raise click.BadParameter(
                f"no source named '{name}' in the config (sources: {', '.join(names) or 'none'})",
                param_hint="--enable",
            )
    with Store(config.state) as store:
        if enable:
            from .sources import enable_source

            for name in enable:
                enable_source(store, name)
                log.info("source '%s' enabled again", name)
        reports = Pipeline(config, store).fetch()
    if fmt == "json":
        click.echo(json.dumps({"sources": [r.as_json() for r in reports]}, indent=2))
    else:
        click.echo(f"{'source':<24} {'fetched':>7} {'new':>5} {'dup':>5} {'skipped':>7}  status")
        from .sources import fetch_status

        for r in reports:
            status = fetch_status(r)  # ok, not modified (304), partial, disabled, error
            click.echo(
                f"{r.name:<24} {r.fetched:>7} {r.new:>5} {r.duplicate:>5} {r.skipped:>7}  {status}"
            )
    if reports and all(not r.ok for r in reports):
        if all(r.errors for r in reports):
            raise NewsletterError("every source failed; see the errors above")
        raise NewsletterError(
            "no source could be fetched (each failed or is disabled); see the messages above"
        )


# -- preview --------------------------------------------------------------------


def _digest_json(digest: Digest, subject: str | None) -> dict[str, Any]:
    return {
        "subscriber": digest.subscriber.email,
        "edition": digest.edition,
        "subject": subject,
        "empty_reason": digest.empty_reason,
        "candidates": digest.candidates,
        "papers": [
            {
                "id": p.paper.id,
                "title": p.paper.title,
                "score": round(p.score, 4),
                "interest": p.interest,
                "reasons": list(p.reasons),
                "url": p.paper.url,
            }
            for p in digest.picks
        ],
    }


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date; use YYYY-MM-DD", param_hint="--date"
        ) from None


def _subscribers(pipe: Pipeline, email: str | None) -> list[Subscriber]:
    """``--subscriber``'s subscriber (or all): an unknown address is a usage error (exit 2)."""
    try:
        return pipe.subscribers(email)
    except SubscriberNotFound as e:
        raise click.BadParameter(str(e), param_hint="--subscriber") from None


def _edition_refs(
    pipe: Pipeline, subs: list[Subscriber], now: datetime, day: date | None
) -> list[EditionRef]:
    """The editions of ``subs`` now (or of ``--date``): a future date is a usage error."""
    _check_date(subs, now, day)
    return [pipe.edition_ref(sub, now=now, on_date=day) for sub in subs]


def _check_date(subs: list[Subscriber], now: datetime, day: date | None) -> None:
    """A ``--date`` after a subscriber's local today is a usage error (exit 2)."""
    for sub in subs if day is not None else ():
        today = now.astimezone(ZoneInfo(sub.timezone)).date()
        if day is not None and day > today:
            raise click.BadParameter(
                f"{day} is in the future for {sub.email} (local date {today} in "
                f"{sub.timezone}); only past and current editions can be replayed or sent",
                param_hint="--date",
            )


@cli.command()
@click.option(
    "--subscriber", "-s", "email", required=True, metavar="EMAIL", help="Whose digest to show."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text", "eml", "json"]),
    default="html",
    show_default=True,
    help="What to produce.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (html default: preview/<subscriber>-<edition>.html; "
    "other formats default to stdout).",
)
@click.option(
    "--date",
    "on_date",
    metavar="YYYY-MM-DD",
    help="Replay the edition of this local date from stored papers.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in the browser.")
@click.option(
    "--serve",
    type=int,
    is_flag=False,
    flag_value=8026,
    default=None,
    metavar="[PORT]",
    help="Serve the HTML on localhost (default port 8026); re-render on changes.",
)
@pass_ctx
def preview(
    c: Ctx,
    email: str,
    fmt: str,
    output: Path | None,
    on_date: str | None,
    open_browser: bool,
    serve: int | None,
) -> None:
    """Show exactly what a subscriber would get, without sending or recording anything."""
    config = c.load(sending=False)
    day = _parse_date(on_date)
    if serve is not None:
        _serve_preview(c, email, day, serve)
        return
    with Store(config.state) as store:
        pipe = Pipeline(config, store)
        sub = _subscribers(pipe, email)[0]
        now = utcnow()
        ref = _edition_refs(pipe, [sub], now, day)[0]
        from .preview import settled_edition

        ref, notice = settled_edition(store, ref)  # already sent? say so, show what was sent
        if notice:
            click.echo(f"Note: {notice}", err=True)
        digest = next(iter(pipe.digests([ref])))
        rendered = pipe.render(digest)
        if digest.is_empty:
            reason = digest.empty_reason or "nothing to send"
            if store.count_papers() == 0:
                reason = (
                    "no papers are stored yet; run 'newsletter fetch' first (preview never fetches)"
                )
            click.echo(f"No email for {sub.email} in edition {digest.edition}: {reason}", err=True)
        if fmt == "json":
            data = json.dumps(_digest_json(digest, rendered.subject), indent=2, ensure_ascii=False)
            _emit(data + "\n", output)
        elif fmt == "text":
            _emit(rendered.text, output)
        elif fmt == "eml":
            msg = pipe.compose(digest, rendered, now=now, message_id=ref.message_id)
            if output is None:
                sys.stdout.buffer.write(msg.data)
            else:
                _emit(msg.data, output)
        else:
            from .preview import open_in_browser, preview_folder, preview_path

            default = preview_path(sub.email, digest.edition, folder=preview_folder(config))
            target = _emit(rendered.html, output or default)
            if open_browser and target and not open_in_browser(target):
                click.echo("Note: no browser could be started; open the file above.", err=True)


def _serve_preview(c: Ctx, email: str, day: date | None, port: int) -> None:
    """``preview --serve``: re-read the config and templates whenever one changes."""
    from .preview import PreviewServer, settled_edition, watch_files
    from .render import Renderer

    path = config_path(c.config_arg)
    state: dict[str, Any] = {}

    def build() -> Any:
        config = load_config(path)
        renderer = Renderer(config.templates)
        state["templates"] = renderer.templates
        with Store(config.state) as store:
            pipe = Pipeline(config, store)
            pipe._renderer = renderer
            sub = pipe.subscribers(email)[0]
            ref = pipe.edition_ref(sub, now=utcnow(), on_date=day)
            ref, notice = settled_edition(store, ref)  # as plain preview: sent? say so
            return pipe.render(next(iter(pipe.digests([ref])))), notice

    def watched() -> tuple[Path, ...]:
        return watch_files(state.get("templates"), path)

    with PreviewServer(build, watched, port=port) as server:
        if server.notice:
            click.echo(f"Note: {server.notice}", err=True)
        click.echo(f"Serving the preview of {email} at {server.url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def _emit(content: str | bytes, output: Path | None) -> Path | None:
    """Print ``content``, or write it atomically to ``output`` and print the path."""
    if output is None:
        ends = content.endswith("\n") if isinstance(content, str) else content.endswith(b"\n")
        click.echo(content, nl=not ends)  # one final newline, never a blank line after
        return None
    from .preview import write_preview

    path = write_preview(content, output)
    click.echo(str(output))
    return path


# -- send / run -----------------------------------------------------------------

_LABEL = {
    O_SENT: "sent",
    O_ALREADY: "already sent",
    O_EMPTY: "empty",
    O_FAILED: "FAILED",
    O_RETRY: "will retry",
    O_INACTIVE: "not sent",
    O_DRY: "dry run",
    O_FAILED_EARLIER: "not resent",  # failed in an earlier run; --retry-failed resends
    O_STOPPED: "pending",  # not sent: the send stopped early (relay down); the row is pending
}


def _outcome_line(o: Outcome) -> str:
    papers = f"{o.papers} paper{'s' if o.papers != 1 else ''}"
    if o.state == O_STOPPED and not o.papers:
        papers = "-"  # never built: the run stopped before selecting it
    where = o.detail
    if o.path:  # an outbox file: shown relative to the current folder when inside it
        path = Path(o.path)
        where = str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else o.path
    label = _LABEL.get(o.state, o.state)
    return f"  {label:<12} {o.subscriber:<32} {o.edition:<10} {papers:>10}  {where}"


def _printer(total: int) -> tuple[Callable[[Outcome], None], Callable[[], None]]:
    """Per-outcome lines; on a terminal, a progress bar on stderr as well."""
    if sys.stderr.isatty() and total > 20:
        bar = click.progressbar(length=total, label="Sending", file=sys.stderr)
        bar.__enter__()

        def step(o: Outcome) -> None:
            bar.update(1)
            if o.state in (O_FAILED, O_RETRY, O_FAILED_EARLIER):
                click.echo(_outcome_line(o))

        return step, lambda: bar.__exit__(None, None, None)
    return (lambda o: click.echo(_outcome_line(o))), (lambda: None)


def _summary(outcomes: list[Outcome]) -> str:
    count = {state: 0 for state in _LABEL}
    for o in outcomes:
        count[o.state] = count.get(o.state, 0) + 1
    parts = [
        f"{count[O_SENT]} sent",
        f"{count[O_ALREADY]} already sent",
        f"{count[O_EMPTY]} empty",
        f"{count[O_FAILED]} failed",
        f"{count[O_RETRY] + count[O_STOPPED]} to retry",
        f"{count[O_INACTIVE]} unsubscribed/suppressed",
    ]
    if count[O_FAILED_EARLIER]:
        parts.append(
            f"{count[O_FAILED_EARLIER]} failed earlier (not resent; send --retry-failed resends)"
        )
    if count[O_DRY]:
        parts.insert(0, f"{count[O_DRY]} composed (dry run, nothing sent)")
    return "Summary: " + ", ".join(parts)


@cli.command()
@click.option("--subscriber", "-s", "email", metavar="EMAIL", help="Only this subscriber.")
@click.option(
    "--date",
    "on_date",
    metavar="YYYY-MM-DD",
    help="Send the edition of this local date (replayed from stored papers).",
)
@click.option(
    "--dry-run", is_flag=True, help="Compose what would be sent; send and record no delivery."
)
@click.option("--no-fetch", is_flag=True, help="Do not fetch stale sources first.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also send editions recorded as failed (after fixing the cause: an address, "
    "the relay); they are skipped otherwise.",
)
@pass_ctx
def send(
    c: Ctx,
    email: str | None,
    on_date: str | None,
    dry_run: bool,
    no_fetch: bool,
    retry_failed: bool,
) -> None:
    """Send the current (or given) edition now to every subscriber (or one) who has not
    had it. Sources not fetched within scheduler.freshness_minutes are fetched first.
    An edition that failed permanently in an earlier run is reported ("not resent") and
    skipped unless --retry-failed.

    Exits 1 if a message failed permanently in this run or sending stopped early (relay
    down: what was not sent is counted under "to retry"); editions that failed in an
    earlier run do not change the exit code. Exits 2 on a bad argument."""
    from .lock import StateLock

    config = c.config
    day = _parse_date(on_date)
    with (
        StateLock(sqlite_path(config.state), purpose="newsletter send"),
        Store(config.state) as store,
    ):
        pipe = Pipeline(config, store)
        now = utcnow()
        subs = _subscribers(pipe, email)  # a typo is an error before any fetch
        _check_date(subs, now, day)  # (so is a future --date)
        if not no_fetch and day is None:
            pipe.fetch(now=now, only_stale=True)
            now = utcnow()
        refs = [pipe.edition_ref(sub, now=now, on_date=day) for sub in subs]  # (date checked)
        step, done = _printer(len(refs))
        previous = signal.signal(signal.SIGTERM, _stop_on_term(pipe))
        try:
            outcomes = pipe.send(
                refs, now=now, dry_run=dry_run, progress=step, retry_failed=retry_failed
            )
        finally:
            signal.signal(signal.SIGTERM, previous)
            done()
    click.echo(_summary(outcomes))
    if pipe.aborted:
        raise NewsletterError(f"sending stopped early: {pipe.aborted}")
    failed = [o for o in outcomes if o.state == O_FAILED]  # in this run; not O_FAILED_EARLIER
    if failed:
        raise NewsletterError(f"{len(failed)} message(s) failed; see the lines above")


def _stop_on_term(pipe: Pipeline) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler for ``send`` (a service manager's stop, a cron timeout): finish
    the messages in flight, hand no new one over, leave the rest pending for the next
    run (each ledger row says what happened). A second SIGTERM stops at once."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        if pipe.stop_requested.is_set():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        click.echo(
            "Stopping: finishing the messages in flight (SIGTERM again stops at once)",
            err=True,
        )
        pipe.stop_requested.set()

    return on_term


@cli.command()
@click.option(
    "--once",
    is_flag=True,
    help="One pass (fetch, then the editions due now, incl. missed ones within "
    "the grace period), then exit. For cron or a systemd timer.",
)
@pass_ctx
def run(c: Ctx, once: bool) -> None:
    """The scheduler daemon: fetch on schedule and send each subscriber's edition at
    their local time. Stops cleanly on SIGTERM/SIGINT; SIGHUP reloads the config."""
    from .lock import StateLock

    config = c.config
    if once:
        with StateLock(sqlite_path(config.state), purpose="newsletter run --once"):
            step, done = _printer(len(config.subscribers))
            try:
                report = run_once(config, progress=step)
            finally:
                done()
        for line in summarise_missed(report.missed_new):  # each once: an earlier run said it
            click.echo(f"  skipped      {line}")
        if not report.outcomes:
            if not c.quiet:  # (-q in cron: a pass with nothing to do prints nothing)
                click.echo("No edition is due now.")
        else:
            click.echo(_summary(report.outcomes))
        if report.aborted:
            raise NewsletterError(f"sending stopped early: {report.aborted}")
        if report.failed:
            raise NewsletterError(f"{len(report.failed)} message(s) failed; see the lines above")
        return
    from .scheduler import run_daemon

    run_daemon(config_path(c.config_arg))


# -- status ---------------------------------------------------------------------


@cli.command()
@format_option
@pass_ctx
def status(c: Ctx, fmt: str) -> None:
    """Per subscriber: next edition, last edition and its outcome; per source: last fetch."""
    from .status import collect_status

    config = c.load(sending=False)
    with Store(config.state) as store:
        data = collect_status(config, store, now=datetime.now(UTC))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo("Subscribers:")
    for s in data["subscribers"]:
        last = s["last_edition"]
        last_s = f"{last['edition']} {last['state']}" if last else "none yet"
        if last and last.get("detail"):
            last_s += f" ({last['detail']})"
        nxt = s["next_edition"] or "-"  # None: unsubscribed or suppressed, none will be sent
        line = f"  {s['email']:<32} {s['status']:<12} next {nxt:<25} last {last_s}"
        click.echo(line.rstrip())
    click.echo("Sources:")
    for src in data["sources"]:
        line = (
            f"  {src['name']:<24} {src['last_status'] or 'never fetched':<14} "
            f"{src['last_fetch_at'] or '':<32} {src['last_error'] or ''}"
        )
        click.echo(line.rstrip())  # no trailing spaces when a column at the end is empty


# -- reactivate -----------------------------------------------------------------


@cli.command()
@click.argument("emails", nargs=-1, metavar="[EMAIL]...")
@click.option(
    "--all-suppressed",
    is_flag=True,
    help="Every suppressed subscriber in the state (after a relay refused everyone, say).",
)
@click.option(
    "--include-unsubscribed",
    is_flag=True,
    help="Also resubscribe the given addresses that unsubscribed themselves. Without it "
    "they stay unsubscribed (only do this with their consent).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_ctx
def reactivate(
    c: Ctx,
    emails: tuple[str, ...],
    all_suppressed: bool,
    include_unsubscribed: bool,
    dry_run: bool,
) -> None:
    """Lift a suppression: set each subscriber back to active and reset the count of
    permanent failures, so the next send mails them again.

    A subscriber is suppressed after delivery.max_failures permanent (5xx) failures in
    a row. Fix the cause first (the address, or the relay), then reactivate, then
    'newsletter send --retry-failed' sends the current edition again. Addresses that
    unsubscribed themselves are NOT resubscribed unless --include-unsubscribed is given.
    Prints one line per address."""
    from .store import ACTIVE, FAILED, SUPPRESSED, UNSUBSCRIBED

    if not emails and not all_suppressed:
        raise click.UsageError("give one or more EMAIL addresses, or --all-suppressed")
    config = c.load(sending=False)
    wanted: list[str] = []
    for email in emails:  # every address is checked before anything changes
        try:
            sub = config.subscriber(email)
        except SubscriberNotFound:
            raise click.BadParameter(
                f"no subscriber '{email}' in {config.path}; run 'newsletter validate' to list them",
                param_hint="EMAIL",
            ) from None
        if sub.email not in wanted:
            wanted.append(sub.email)
    listed = {s.email for s in config.subscribers}
    skipped = 0
    retry_hint = False
    with Store(config.state) as store:
        if all_suppressed:
            inactive = store.inactive_subscribers()
            for email in sorted(e for e, (st, _) in inactive.items() if st == SUPPRESSED):
                if email not in wanted:
                    wanted.append(email)
            if not wanted:
                click.echo("No subscriber is suppressed.")
                return
        for email in wanted:
            status, why = store.subscriber_status(email)
            note = "" if email in listed else " (not in the config)"
            if status == UNSUBSCRIBED and not include_unsubscribed:
                skipped += 1
                click.echo(
                    f"  {'skipped':<13} {email:<32} unsubscribed themselves ({why or 'no reason'});"
                    " pass --include-unsubscribed to resubscribe them"
                )
                continue
            was = "active already" if status == ACTIVE else f"was {status}: {why or ''}".strip()
            label = "reactivated" if status != ACTIVE else "active"
            if dry_run:
                label = "would " + ("reactivate" if status != ACTIVE else "reset")
            else:
                reason = (
                    "resubscribed by the sender ('newsletter reactivate --include-unsubscribed')"
                    if status == UNSUBSCRIBED
                    else "reactivated by the sender ('newsletter reactivate')"
                )
                kept = reason if status != ACTIVE else why
                if not store.reactivate(email, kept, unsubscribed_too=include_unsubscribed):
                    skipped += 1  # unsubscribed since the status was read: left alone
                    click.echo(f"  {'skipped':<13} {email:<32} unsubscribed a moment ago")
                    continue
            failed = [d.edition for d in store.deliveries(subscriber=email) if d.state == FAILED]
            if failed:
                retry_hint = True
                was += f"; failed edition(s): {', '.join(failed[-3:])}"
            reset = "would be reset" if dry_run else "reset"
            click.echo(f"  {label:<13} {email:<32} {was}{note}; failure count {reset}")
    if retry_hint and not dry_run:
        click.echo(
            "A failed edition is skipped by 'newsletter send' until you run "
            "'newsletter send --retry-failed'."
        )
    if skipped:
        raise NewsletterError(
            f"{skipped} address(es) not reactivated: they unsubscribed themselves "
            "(add --include-unsubscribed only with their consent)"
        )


# -- serve ----------------------------------------------------------------------


@cli.command()
@click.option("--host", help="Interface to listen on (default: web.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: web.port, 8025).")
@pass_ctx
def serve(c: Ctx, host: str | None, port: int | None) -> None:
    """Run the subscriber web app: one-click unsubscribe, preferences, feedback links."""
    from .web import serve as serve_web

    serve_web(c.load(sending=False), host=host, port=port)


# -- entry point ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="newsletter", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("Error: aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        hint = (
            f" (see 'newsletter {e.ctx.command_path.split(' ', 1)[1]} --help')"
            if (e.ctx and " " in e.ctx.command_path)
            else " (see 'newsletter --help')"
        )
        click.echo(f"Error: {e.format_message()}{hint}", err=True)
        sys.exit(2)
    except NewsletterError as e:
        if debug:
            raise
        for line in str(e).splitlines() or [type(e).__name__]:
            click.echo(f"Error: {line}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug: still one line, with the way to see more
        if debug:
            raise
        click.echo(
            f"Error: unexpected {type(e).__name__}: {e} (rerun with --debug for the "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
