"""What ``newsletter status`` shows: per subscriber and per source, from the state."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .config import Config
from .schedule import parse_schedule
from .store import ACTIVE, Store

_SKIPPED_MAX = 64  # fire times of editions already made, looked past for the next one


def collect_status(config: Config, store: Store, *, now: datetime) -> dict[str, Any]:
    """Per subscriber and per source, as ``newsletter status`` shows them.

    Subscribers are the effective ones the scheduler sends to (``Pipeline.subscribers``:
    the YAML with the preferences saved on the web applied), so ``schedule`` and
    ``next_edition`` are what will happen. ``next_edition`` is ``None`` for a subscriber
    who is unsubscribed or suppressed: no edition is sent to them.
    """
    from .pipeline import Pipeline, edition_made

    inactive = store.inactive_subscribers()
    subscribers = []
    for sub in Pipeline(config, store).subscribers():
        rows = store.deliveries(subscriber=sub.email)
        # The latest edition by the end of its window (as ``Store.last_sent``), not by its
        # key: after a schedule change "2026-W48" sorts after the later "2026-11-30", and
        # "2026-11-29T14:00" (a cron line firing twice a day) after the later "2026-11-29".
        last = max(
            rows,
            key=lambda d: (d.cutoff or d.updated_at or now, d.updated_at or now),
            default=None,
        )
        status, reason = inactive.get(sub.email, (ACTIVE, None))
        nxt = None
        if status == ACTIVE:
            sched, tz = parse_schedule(sub.schedule), ZoneInfo(sub.timezone)
            nxt = sched.next(now, tz)
            # A fire whose edition is already made (sent, empty or failed: after a move to
            # a time zone further west, say) sends nothing, as Pipeline.due skips it.
            made = {d.edition: d for d in rows}
            for _ in range(_SKIPPED_MAX):
                if not edition_made(made.get(sched.edition_key(nxt)), nxt):
                    break
                nxt = sched.next(nxt, tz)
        subscribers.append(
            {
                "email": sub.email,
                "status": status,
                "status_reason": reason,
                "schedule": sub.schedule,
                "timezone": sub.timezone,
                "next_edition": nxt.isoformat(timespec="minutes") if nxt else None,
                "last_edition": None
                if last is None
                else {
                    "edition": last.edition,
                    "state": last.state,
                    "papers": len(last.paper_ids),
                    "detail": last.reason or last.server_reply or "",
                    "sent_at": last.sent_at.isoformat() if last.sent_at else None,
                    "message_id": last.message_id,
                },
            }
        )
    sources = []
    for src in config.sources:
        st = store.fetch_state(src.name)
        sources.append(
            {
                "name": src.name,
                "type": src.type,
                "enabled": src.enabled and not st.disabled,
                "last_status": st.last_status,
                "last_fetch_at": st.last_fetch_at.isoformat() if st.last_fetch_at else None,
                "last_success_at": st.last_success_at.isoformat() if st.last_success_at else None,
                "last_new": st.last_new,
                "last_error": st.last_error or st.disabled_reason,
            }
        )
    return {"now": now.isoformat(), "subscribers": subscribers, "sources": sources}
