"""Edition schedules: parsing, fire times in a subscriber's time zone, edition keys.

Pure functions over ``zoneinfo``; no scheduler library. The daemon (``scheduler.py``)
and ``run --once`` both ask this module which editions are due, so they agree.

Fetch schedules (``scheduler.fetch_schedule``, a source's ``fetch_every``) also take an
interval: ``every 60m``, ``30m``, ``2h``, ``1d`` (``parse_interval``, ``parse_fetch_schedule``).

Grammar: ``daily HH:MM`` | ``weekdays HH:MM`` | ``weekly <mon..sun> HH:MM`` | a
five-field cron line (``minute hour day-of-month month day-of-week``).

An edition is keyed by the subscriber's *local* date (``2026-11-29``), or ISO week
for weekly schedules (``2026-W48``), or local date and time for cron lines that fire
more than once a day. A fire time that falls in a DST gap is moved forward by the
gap (never skipped); one that falls in a DST overlap fires once, at the first
occurrence (never twice).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = (  # English, whatever the locale (also used by the renderer)
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most each month has
# How far ``Schedule.next`` looks. A schedule from ``parse_schedule`` that fires at all
# fires within 8 years (Feb 29 only: 2096 -> 2104, 2100 is no leap year), since a cron
# line restricting both day-of-month and day-of-week fires when *either* matches. A
# ``Schedule`` built with both restricted and "and" semantics (Feb 29 on a Monday) can
# wait 40 years (the longest gap in the 400-year Gregorian cycle): 41 years covers both.
NEXT_HORIZON = timedelta(days=41 * 366)
_SIMPLE = re.compile(
    r"^(?P<kind>daily|weekdays|weekly)\s+(?:(?P<day>[a-z]{3})[a-z]*\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})$"
)


class NeverFires(ValueError):
    """A schedule that parses but names no date that exists (``0 7 31 2 *``)."""


def _field(
    text: str,
    lo: int,
    hi: int,
    names: tuple[str, ...] = (),
    base: int = 0,
    *,
    top: int | None = None,
) -> frozenset[int]:
    """Parse one cron field into the set of values it allows.

    ``top``: where ``*`` and ``N/step`` end when it is below ``hi`` (day-of-week: 7 is
    accepted as a value or a range end, but ``*`` means 0-6).
    """
    top = hi if top is None else top
    values: set[int] = set()

    def num(tok: str) -> int:
        tok = tok.lower()
        if tok[:3] in names:
            return names.index(tok[:3]) + base
        if not tok.isdigit():
            raise ValueError(f"'{tok}' is not a number")
        return int(tok)

    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_s = part.split("/", 1)
            if not step_s.isdigit() or int(step_s) == 0:
                raise ValueError(f"bad step '/{step_s}'")
            step = int(step_s)
        if part == "*":
            start, end = lo, top
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = num(a), num(b)
        else:
            start = num(part)
            end = top if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi and start <= end):
            raise ValueError(f"'{part}' is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Schedule:
    text: str
    kind: str  # daily | weekdays | weekly | cron
    minutes: frozenset[int]
    hours: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday
    monthdays: frozenset[int] = frozenset(range(1, 32))
    months: frozenset[int] = frozenset(range(1, 13))
    dom_restricted: bool = False
    dow_restricted: bool = False

    @property
    def per_day(self) -> int:
        return len(self.minutes) * len(self.hours)

    def _day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom_ok = d.day in self.monthdays
        dow_ok = d.weekday() in self.weekdays
        if self.kind == "cron" and self.dom_restricted and self.dow_restricted:
            return dom_ok or dow_ok  # cron's rule: either restricted field may match
        return dom_ok and dow_ok

    def fire_times(self, start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Fire times in ``(start, end]`` (aware datetimes), as aware local datetimes."""
        # Compare in UTC: aware datetimes sharing one tzinfo compare by wall time,
        # ignoring ``fold``, which would misorder the repeated hour of a fall-back.
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        d = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date() + timedelta(days=1)
        while d <= last:
            if self._day_matches(d):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        local = _resolve(datetime.combine(d, time(h, m)), tz)
                        if start < local <= end:
                            yield local
            d += timedelta(days=1)

    def previous(self, now: datetime, tz: ZoneInfo, *, within: timedelta) -> datetime | None:
        """The latest fire time in ``(now - within, now]``, or None."""
        last = None
        for fire in self.fire_times(now - within, now, tz):
            last = fire
        return last

    def never_fires(self) -> str | None:
        """Why no date ever matches (e.g. ``day 31 never comes in February``), or None.

        Exact for the day rule of ``_day_matches``: a month has every weekday, and every
        day of the year that exists falls on every weekday in some year, so a schedule
        fires unless none of its (day-of-month, month) pairs exists (Feb 29 exists).
        """
        if not (self.minutes and self.hours and self.months and self.weekdays):
            return "it has no minute, hour, month or weekday to fire at"
        if self.kind == "cron" and self.dom_restricted and self.dow_restricted:
            return None  # either field may match, and every month has every weekday
        if any(d <= _MONTH_DAYS[m - 1] for m in self.months for d in self.monthdays):
            return None
        days = sorted(self.monthdays)
        months = [MONTH_NAMES[m - 1] for m in sorted(self.months)]
        what = f"day {days[0]}" if len(days) == 1 else "days " + ", ".join(map(str, days))
        where = months[0] if len(months) == 1 else ", ".join(months[:-1]) + " or " + months[-1]
        verb = "never comes" if len(days) == 1 else "never come"
        return f"{what} {verb} in {where}"

    def next(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The first fire time after ``now``.

        Raises ``ValueError`` (never ``OverflowError``) for a schedule that never fires,
        or whose next fire time is beyond the search horizon or the year 9999.
        """
        why = self.never_fires()
        if why:
            raise ValueError(f"schedule '{self.text}' never fires: {why}")
        start, span = now, timedelta(days=2)
        try:
            end = now + NEXT_HORIZON
            while start < end:
                stop = min(start + span, end)
                for fire in self.fire_times(start, stop, tz):
                    return fire
                start, span = stop, span * 2
        except OverflowError:  # within NEXT_HORIZON of the year 9999
            pass
        raise ValueError(
            f"schedule '{self.text}' never fires within {NEXT_HORIZON.days // 365} years "
            f"of {now:%Y-%m-%d}"
        )

    def edition_key(self, fire: datetime) -> str:
        """The edition a local fire time belongs to."""
        if self.kind == "weekly":
            year, week, _ = fire.isocalendar()
            return f"{year}-W{week:02d}"
        if self.per_day > 1:
            return fire.strftime("%Y-%m-%dT%H:%M")
        return fire.date().isoformat()


def _resolve(naive: datetime, tz: ZoneInfo) -> datetime:
    """Attach ``tz`` to a wall time: gaps move forward, overlaps take the first."""
    local = naive.replace(tzinfo=tz, fold=0)
    roundtrip = local.astimezone(UTC).astimezone(tz)
    if roundtrip.replace(tzinfo=None) != naive:  # in a gap: the wall time does not exist
        later = local.replace(fold=1).astimezone(UTC).astimezone(tz)
        return roundtrip if roundtrip > local else later
    return local


_UNIT = r"(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)"
_INTERVAL = re.compile(rf"^(?:every\s+)?((?:\d+\s*{_UNIT}\s*)+)$")
_INTERVAL_PART = re.compile(rf"(\d+)\s*({_UNIT})")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> timedelta:
    """Parse ``every 60m`` / ``30m`` / ``1h30m`` / ``2h`` / ``1d`` / ``45s`` into a timedelta.

    The same grammar as ``config.parse_duration`` (plus spelled-out units).
    """
    raw = " ".join(str(text).split())
    m = _INTERVAL.match(raw.lower())
    seconds = 0
    if m:
        seconds = sum(int(n) * _UNIT_SECONDS[u[0]] for n, u in _INTERVAL_PART.findall(m[1]))
    if seconds <= 0:
        raise ValueError(
            f"'{raw}' is not an interval; use e.g. 'every 60m', '30m', '1h30m' or '1d' "
            "(positive numbers with s, m, h or d)"
        )
    return timedelta(seconds=seconds)


def parse_fetch_schedule(text: str) -> timedelta | Schedule:
    """A fetch schedule: an interval (``every 60m``) or a schedule (cron line, ``daily 06:00``).

    Schedules given this way fire in UTC. Raises ``ValueError`` saying how to fix it.
    """
    try:
        return parse_interval(text)
    except ValueError:
        pass
    try:
        return parse_schedule(text)
    except NeverFires:
        raise
    except ValueError:
        raw = " ".join(str(text).split())
        raise ValueError(
            f"'{raw}' is not a fetch schedule; use an interval like 'every 60m' or '2h', "
            "or a five-field cron line like '15 * * * *' (UTC)"
        ) from None


def parse_schedule(text: str) -> Schedule:
    """Parse a schedule; raise ``ValueError`` with a message that says how to fix it."""
    raw = " ".join(str(text).split())
    low = raw.lower()
    m = _SIMPLE.match(low)
    if m:
        h, mi = int(m["h"]), int(m["m"])
        if h > 23 or mi > 59:
            raise ValueError(f"'{raw}' has no valid time of day; use HH:MM from 00:00 to 23:59")
        kind = m["kind"]
        if kind == "weekly":
            if not m["day"] or m["day"] not in DAYS:
                raise ValueError(f"'{raw}' needs a day: weekly mon|tue|...|sun HH:MM")
            days = frozenset({DAYS.index(m["day"])})
        elif m["day"]:
            raise ValueError(f"'{raw}': only weekly schedules take a day")
        else:
            days = frozenset(range(7)) if kind == "daily" else frozenset(range(5))
        return Schedule(raw, kind, frozenset({mi}), frozenset({h}), days)
    fields = raw.split(" ")
    if len(fields) == 5 and not low.startswith(("daily", "weekdays", "weekly")):
        try:
            minutes = _field(fields[0], 0, 59)
            hours = _field(fields[1], 0, 23)
            monthdays = _field(fields[2], 1, 31)
            months = _field(fields[3], 1, 12, _MONTHS, base=1)
            # cron: 0 = Sunday, and 7 too (as in Vixie cron: "5-7", "1-7", "0,7"); "7/2"
            # starts on Sunday as "0/2" does (it was always read so)
            dow_field = re.sub(r"(^|,)7/", r"\g<1>0/", fields[4])
            dows = _field(dow_field, 0, 7, ("sun", *DAYS[:-1]), top=6)
        except ValueError as err:
            raise ValueError(f"'{raw}' is not a valid cron line ({err})") from None
        weekdays = frozenset((d - 1) % 7 for d in dows)  # to Python's 0 = Monday (7 -> 6)
        sched = Schedule(
            raw,
            "cron",
            minutes,
            hours,
            weekdays,
            monthdays,
            months,
            dom_restricted=fields[2] != "*",
            dow_restricted=fields[4] != "*",
        )
        why = sched.never_fires()
        if why:
            day = min(28 if m == 2 else _MONTH_DAYS[m - 1] for m in months)
            fix = " ".join([*fields[:2], str(day), *fields[3:]])
            has = "the month has" if len(months) == 1 else "those months have"
            raise NeverFires(f"'{raw}' never fires: {why} (use a day-of-month {has}, e.g. '{fix}')")
        return sched
    raise ValueError(
        f"'{raw}' is not a schedule; use 'daily HH:MM', 'weekdays HH:MM', "
        "'weekly mon HH:MM' or a five-field cron line"
    )
