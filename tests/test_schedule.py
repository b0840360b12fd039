"""Pure schedule logic: parsing, fire times in a time zone, DST days, edition keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.models import Subscriber
from newsletter.prefs import apply_prefs, validate_prefs
from newsletter.schedule import NeverFires, Schedule, parse_fetch_schedule, parse_schedule

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
Z_UTC = ZoneInfo("UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(text: str, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    return list(parse_schedule(text).fire_times(start, end, tz))


# -- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "hours", "minutes", "weekdays"),
    [
        ("daily 07:00", "daily", {7}, {0}, set(range(7))),
        ("Daily   7:05", "daily", {7}, {5}, set(range(7))),
        ("weekdays 07:30", "weekdays", {7}, {30}, set(range(5))),
        ("weekly mon 09:00", "weekly", {9}, {0}, {0}),
        ("weekly sunday 18:15", "weekly", {18}, {15}, {6}),
        ("30 6 * * 1-5", "cron", {6}, {30}, set(range(5))),
        ("0 8,20 * * sun", "cron", {8, 20}, {0}, {6}),
        ("*/15 9 * * 7", "cron", {9}, {0, 15, 30, 45}, {6}),
    ],
)
def test_parse(text: str, kind: str, hours: set[int], minutes: set[int], weekdays: set[int]):
    s = parse_schedule(text)
    assert (s.kind, set(s.hours), set(s.minutes), set(s.weekdays)) == (
        kind,
        hours,
        minutes,
        weekdays,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("daily 25:00", "no valid time of day; use HH:MM"),
        ("weekly 09:00", "needs a day: weekly mon|tue|...|sun HH:MM"),
        ("weekly xyz 09:00", "needs a day"),
        ("daily mon 09:00", "only weekly schedules take a day"),
        ("every morning", "is not a schedule; use 'daily HH:MM'"),
        ("61 * * * *", "is not a valid cron line ('61' is outside 0-59)"),
        ("0 7 * * */0", "is not a valid cron line (bad step '/0')"),
        ("0 7 * foo *", "is not a valid cron line ('foo' is not a number)"),
    ],
)
def test_parse_errors_say_how_to_fix(text: str, message: str):
    with pytest.raises(ValueError) as err:
        parse_schedule(text)
    assert message in str(err.value)
    assert f"'{' '.join(text.split())}'" in str(err.value)  # names the bad value


# -- fire times in time zones --------------------------------------------------------


def test_daily_fires_at_local_time_in_each_zone():
    start, end = utc(2026, 6, 1), utc(2026, 6, 3)
    ny = fires("daily 07:00", start, end, NEW_YORK)
    tokyo = fires("daily 07:00", start, end, TOKYO)
    assert [f.astimezone(UTC) for f in ny] == [utc(2026, 6, 1, 11), utc(2026, 6, 2, 11)]
    assert [f.astimezone(UTC) for f in tokyo] == [
        utc(2026, 6, 1, 22),
        utc(2026, 6, 2, 22),
    ]
    assert all(f.hour == 7 and f.minute == 0 for f in ny + tokyo)


def test_weekdays_skip_the_weekend():
    # 2026-11-27 is a Friday.
    got = fires("weekdays 07:30", utc(2026, 11, 27), utc(2026, 12, 1), Z_UTC)
    assert [f.date().isoformat() for f in got] == ["2026-11-27", "2026-11-30"]


def test_cron_day_of_month_or_day_of_week():
    # cron: when both day fields are restricted, either may match.
    got = fires("0 9 1 * mon", utc(2026, 6, 1), utc(2026, 7, 2), Z_UTC)
    days = [f.date().isoformat() for f in got]
    assert "2026-07-01" in days  # the 1st (a Wednesday)
    assert "2026-06-08" in days  # a Monday
    assert "2026-06-09" not in days


def test_next_is_strictly_after_now():
    s = parse_schedule("daily 07:00")
    at_fire = utc(2026, 6, 1, 7)
    assert s.next(at_fire, Z_UTC) == utc(2026, 6, 2, 7)
    assert s.next(at_fire - timedelta(microseconds=1), Z_UTC) == at_fire


def test_next_finds_rare_schedules():
    s = parse_schedule("0 0 29 2 *")  # only in leap years
    assert s.next(utc(2026, 3, 1), Z_UTC) == utc(2028, 2, 29)


def test_previous_within_window():
    s = parse_schedule("daily 07:00")
    now = utc(2026, 6, 1, 9)
    assert s.previous(now, Z_UTC, within=timedelta(hours=6)) == utc(2026, 6, 1, 7)
    assert s.previous(now, Z_UTC, within=timedelta(hours=1)) is None


# -- DST ------------------------------------------------------------------------------


def test_fall_back_fires_once():
    """Europe/London 2026-10-25: 01:00-02:00 happens twice; a 01:30 edition fires once."""
    got = fires("daily 01:30", utc(2026, 10, 24, 12), utc(2026, 10, 26, 12), LONDON)
    on_day = [f for f in got if f.date().isoformat() == "2026-10-25"]
    assert len(on_day) == 1
    assert on_day[0].astimezone(UTC) == utc(2026, 10, 25, 0, 30)  # the first 01:30 (BST)
    s = parse_schedule("daily 01:30")
    assert [s.edition_key(f) for f in got] == ["2026-10-25", "2026-10-26"]


def test_fall_back_next_from_inside_the_repeated_hour():
    """Asked from the second 01:15 (GMT), the next fire is tomorrow, not the first 01:30."""
    s = parse_schedule("daily 01:30")
    second_0115 = datetime(2026, 10, 25, 1, 15, fold=1, tzinfo=LONDON)
    assert second_0115.astimezone(UTC) == utc(2026, 10, 25, 1, 15)
    assert s.next(second_0115, LONDON).astimezone(UTC) == utc(2026, 10, 26, 1, 30)
    # the same from a UTC "now"
    assert s.next(utc(2026, 10, 25, 1, 15), LONDON).astimezone(UTC) == utc(2026, 10, 26, 1, 30)


def test_spring_forward_moves_not_skips():
    """Europe/London 2026-03-29: 01:00-02:00 does not exist; 01:30 moves to 02:30 BST."""
    got = fires("daily 01:30", utc(2026, 3, 28, 12), utc(2026, 3, 30, 12), LONDON)
    by_day = {f.date().isoformat(): f for f in got}
    assert set(by_day) == {"2026-03-29", "2026-03-30"}
    moved = by_day["2026-03-29"]
    assert (moved.hour, moved.minute) == (2, 30)
    assert moved.astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    assert parse_schedule("daily 01:30").edition_key(moved) == "2026-03-29"


def test_new_york_dst_days():
    s = parse_schedule("daily 02:30")
    # 2026-03-08: 02:00 -> 03:00 in New York: 02:30 moves to 03:30 EDT.
    spring = list(s.fire_times(utc(2026, 3, 8), utc(2026, 3, 9), NEW_YORK))
    assert [(f.hour, f.minute) for f in spring] == [(3, 30)]
    # 2026-11-01: 01:00-02:00 repeats; 02:30 is unambiguous and fires once.
    fall = list(s.fire_times(utc(2026, 11, 1), utc(2026, 11, 2), NEW_YORK))
    assert len(fall) == 1


# -- edition keys ---------------------------------------------------------------------


def test_weekly_is_keyed_by_iso_week():
    s = parse_schedule("weekly mon 09:00")
    got = list(s.fire_times(utc(2026, 12, 20), utc(2027, 1, 12), LONDON))
    assert [s.edition_key(f) for f in got] == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]


def test_daily_keyed_by_local_date_not_utc_date():
    s = parse_schedule("daily 07:00")
    (fire,) = s.fire_times(utc(2026, 6, 1, 12), utc(2026, 6, 2, 12), TOKYO)
    assert fire.astimezone(UTC).date().isoformat() == "2026-06-01"  # 22:00 UTC
    assert s.edition_key(fire) == "2026-06-02"  # Tokyo's date


def test_several_a_day_keyed_by_time():
    s = parse_schedule("0 8,20 * * *")
    got = list(s.fire_times(utc(2026, 6, 1), utc(2026, 6, 2), Z_UTC))
    assert [s.edition_key(f) for f in got] == ["2026-06-01T08:00", "2026-06-01T20:00"]


# -- fetch schedules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("every 60m", 3600), ("30m", 1800), ("1h30m", 5400), ("2 hours", 7200), ("1d", 86400)],
)
def test_fetch_intervals(text: str, seconds: int):
    assert parse_fetch_schedule(text) == timedelta(seconds=seconds)


def test_fetch_cron_line_and_errors():
    sched = parse_fetch_schedule("15 * * * *")
    assert not isinstance(sched, timedelta) and sched.minutes == frozenset({15})
    for bad in ("0m", "every", "sometimes"):
        with pytest.raises(ValueError) as err:
            parse_fetch_schedule(bad)
        assert str(err.value) == (
            f"'{bad}' is not a fetch schedule; use an interval like 'every 60m' or '2h', "
            "or a five-field cron line like '15 * * * *' (UTC)"
        )


# -- schedules for a date that never comes -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0 7 31 2 *",
            "'0 7 31 2 *' never fires: day 31 never comes in February "
            "(use a day-of-month the month has, e.g. '0 7 28 2 *')",
        ),
        (
            "0 7 31 4 *",
            "'0 7 31 4 *' never fires: day 31 never comes in April "
            "(use a day-of-month the month has, e.g. '0 7 30 4 *')",
        ),
        (
            "30 6 30,31 feb *",
            "'30 6 30,31 feb *' never fires: days 30, 31 never come in February "
            "(use a day-of-month the month has, e.g. '30 6 28 feb *')",
        ),
        (
            "0 7 31 4,6,9,11 *",
            "'0 7 31 4,6,9,11 *' never fires: day 31 never comes in April, June, September "
            "or November (use a day-of-month those months have, e.g. '0 7 30 4,6,9,11 *')",
        ),
    ],
)
def test_a_date_that_never_comes_is_rejected_when_parsed(text: str, message: str):
    with pytest.raises(NeverFires) as err:
        parse_schedule(text)
    assert str(err.value) == message
    # a cron line is also a fetch schedule: the same message, not "not a fetch schedule"
    with pytest.raises(ValueError) as err:
        parse_fetch_schedule(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("0 7 29 2 *", utc(2026, 3, 1), utc(2028, 2, 29, 7)),  # Feb 29 exists (leap years)
        ("0 7 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29, 7)),  # 8 years: 2100 is no leap year
        ("0 7 31 2 mon", utc(2026, 1, 1), utc(2026, 2, 2, 7)),  # cron: either day field
        ("0 7 30,31 2,4 *", utc(2026, 1, 1), utc(2026, 4, 30, 7)),  # April 30 exists
    ],
)
def test_rare_dates_that_exist_still_fire(text: str, now: datetime, expected: datetime):
    assert parse_schedule(text).next(now, Z_UTC) == expected


def test_next_never_overflows_for_a_schedule_that_never_fires():
    # Built directly (no parse_schedule check): next() used to double its window until
    # the date overflowed (OverflowError) before reaching its own error.
    feb31 = Schedule(
        "0 7 31 2 *",
        "cron",
        frozenset({0}),
        frozenset({7}),
        frozenset(range(7)),
        frozenset({31}),
        frozenset({2}),
        dom_restricted=True,
    )
    with pytest.raises(ValueError) as err:
        feb31.next(utc(2026, 1, 1), Z_UTC)
    assert str(err.value) == "schedule '0 7 31 2 *' never fires: day 31 never comes in February"


def test_next_searches_far_enough_and_stops_before_the_year_9999():
    # "and" semantics (a Schedule built directly): Feb 29 on a Monday, 2072 then 2112.
    feb29_monday = Schedule(
        "feb 29 mon",
        "daily",
        frozenset({0}),
        frozenset({7}),
        frozenset({0}),
        frozenset({29}),
        frozenset({2}),
    )
    assert feb29_monday.next(utc(2072, 3, 1), Z_UTC) == utc(2112, 2, 29, 7)
    # No Feb 29 is left before the end of the calendar: a ValueError, not an OverflowError.
    with pytest.raises(ValueError, match="'0 0 29 2 \\*' never fires within 41 years"):
        parse_schedule("0 0 29 2 *").next(utc(9996, 3, 1), Z_UTC)


def test_web_preferences_reject_it_and_a_saved_one_keeps_the_yaml_schedule():
    clean, problems = validate_prefs({"schedule": "0 7 31 2 *"})
    assert "schedule" not in clean
    assert problems == [
        "schedule: '0 7 31 2 *' never fires: day 31 never comes in February "
        "(use a day-of-month the month has, e.g. '0 7 28 2 *')"
    ]
    # prefs saved before this check existed: the YAML schedule stays (status, daemon)
    sub = Subscriber(email="a@example.org", schedule="daily 07:00")
    assert apply_prefs(sub, {"version": 1, "schedule": "0 7 31 2 *"}).schedule == "daily 07:00"


# -- day-of-week 7 is Sunday, as in Vixie cron, also in ranges and lists ------------------


@pytest.mark.parametrize(
    ("dow", "weekdays"),
    [
        ("5-7", {4, 5, 6}),  # Fri-Sun: was "'5-0' is outside 0-6"
        ("1-7", set(range(7))),
        ("0-7", set(range(7))),
        ("6-7", {5, 6}),
        ("7", {6}),
        ("0,7", {6}),
        ("1,7", {0, 6}),
        ("3-5,7", {2, 3, 4, 6}),
        ("*/2", {6, 1, 3, 5}),  # Sun, Tue, Thu, Sat: the step starts at 0 and ends at 6
        ("1/2", {0, 2, 4}),  # Mon, Wed, Fri (not Sunday too)
        ("7/2", {6, 1, 3, 5}),  # as "0/2", as it always was read
        ("*", set(range(7))),
        ("sun", {6}),
    ],
)
def test_cron_day_of_week_7_is_sunday(dow: str, weekdays: set[int]):
    s = parse_schedule(f"30 2 * * {dow}")
    assert set(s.weekdays) == weekdays
    assert s.dow_restricted is (dow != "*")


def test_cron_fri_to_sun_fires_on_those_days_only():
    # 4 Dec 2026 is a Friday: Fri, Sat, Sun at 02:30, then the next Friday.
    got = fires("30 2 * * 5-7", utc(2026, 12, 1), utc(2026, 12, 12), Z_UTC)
    assert [f.strftime("%a %d") for f in got] == ["Fri 04", "Sat 05", "Sun 06", "Fri 11"]


@pytest.mark.parametrize("dow", ["8", "0-8", "7-1"])
def test_cron_day_of_week_beyond_7_or_backwards_is_still_an_error(dow: str):
    with pytest.raises(ValueError, match="is not a valid cron line"):
        parse_schedule(f"30 2 * * {dow}")
