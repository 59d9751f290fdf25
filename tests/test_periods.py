"""Time phrases to date ranges, checked against dates worked out by hand."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from skills.errors import UserError
from skills.periods import Period, PeriodError, find_period, parse_period

D = date.fromisoformat
SUNDAY = D("2026-11-29")
NEW_YEAR = D("2026-01-01")  # a Thursday in ISO week 2026-W01, which began on 2025-12-29
MARCH_END = D("2026-03-31")  # a Tuesday
MONDAY = D("2026-11-23")
LEAP_DAY = D("2028-02-29")  # a Tuesday
QUARTER_START = D("2026-07-01")  # a Wednesday

CASES = [
    # Sunday 2026-11-29, the last day of ISO week 2026-W48
    (SUNDAY, "today", "2026-11-29", "2026-11-29"),
    (SUNDAY, "yesterday", "2026-11-28", "2026-11-28"),
    (SUNDAY, "this week", "2026-11-23", "2026-11-29"),
    (SUNDAY, "last week", "2026-11-16", "2026-11-22"),
    (SUNDAY, "previous week", "2026-11-16", "2026-11-22"),
    (SUNDAY, "this month", "2026-11-01", "2026-11-29"),
    (SUNDAY, "month to date", "2026-11-01", "2026-11-29"),
    (SUNDAY, "month-to-date", "2026-11-01", "2026-11-29"),
    (SUNDAY, "MTD", "2026-11-01", "2026-11-29"),
    (SUNDAY, "last month", "2026-10-01", "2026-10-31"),
    (SUNDAY, "previous month", "2026-10-01", "2026-10-31"),
    (SUNDAY, "for the last month", "2026-10-01", "2026-10-31"),
    (SUNDAY, "  Last   Month ? ", "2026-10-01", "2026-10-31"),
    (SUNDAY, "this quarter", "2026-10-01", "2026-11-29"),
    (SUNDAY, "last quarter", "2026-07-01", "2026-09-30"),
    (SUNDAY, "Q3 2026", "2026-07-01", "2026-09-30"),
    (SUNDAY, "2026 Q3", "2026-07-01", "2026-09-30"),
    (SUNDAY, "q3-2026", "2026-07-01", "2026-09-30"),
    (SUNDAY, "Q3", "2026-07-01", "2026-09-30"),
    (SUNDAY, "during Q3", "2026-07-01", "2026-09-30"),
    (SUNDAY, "Q4", "2026-10-01", "2026-11-29"),
    (SUNDAY, "Q1 2026", "2026-01-01", "2026-03-31"),
    (SUNDAY, "this year", "2026-01-01", "2026-11-29"),
    (SUNDAY, "year to date", "2026-01-01", "2026-11-29"),
    (SUNDAY, "ytd", "2026-01-01", "2026-11-29"),
    (SUNDAY, "2026", "2026-01-01", "2026-11-29"),
    (SUNDAY, "last year", "2025-01-01", "2025-12-31"),
    (SUNDAY, "2025", "2025-01-01", "2025-12-31"),
    (SUNDAY, "in 2025", "2025-01-01", "2025-12-31"),
    (SUNDAY, "September", "2026-09-01", "2026-09-30"),
    (SUNDAY, "in September", "2026-09-01", "2026-09-30"),
    (SUNDAY, "sept", "2026-09-01", "2026-09-30"),
    (SUNDAY, "sep", "2026-09-01", "2026-09-30"),
    (SUNDAY, "September 2026", "2026-09-01", "2026-09-30"),
    (SUNDAY, "Sep 2026", "2026-09-01", "2026-09-30"),
    (SUNDAY, "2026-09", "2026-09-01", "2026-09-30"),
    (SUNDAY, "December", "2025-12-01", "2025-12-31"),
    (SUNDAY, "November", "2026-11-01", "2026-11-29"),
    (SUNDAY, "November 2026", "2026-11-01", "2026-11-29"),
    (SUNDAY, "may", "2026-05-01", "2026-05-31"),
    (SUNDAY, "Sep 14", "2026-09-14", "2026-09-14"),
    (SUNDAY, "December 25", "2025-12-25", "2025-12-25"),
    (SUNDAY, "last 7 days", "2026-11-22", "2026-11-28"),
    (SUNDAY, "over the last 7 days", "2026-11-22", "2026-11-28"),
    (SUNDAY, "past 30 days", "2026-10-30", "2026-11-28"),
    (SUNDAY, "previous 1 day", "2026-11-28", "2026-11-28"),
    (SUNDAY, "last 30d", "2026-10-30", "2026-11-28"),
    (SUNDAY, "last 2 weeks", "2026-11-15", "2026-11-28"),
    (SUNDAY, "last two weeks", "2026-11-15", "2026-11-28"),
    (SUNDAY, "past week", "2026-11-22", "2026-11-28"),
    (SUNDAY, "last 3 months", "2026-08-01", "2026-10-31"),
    (SUNDAY, "in the past 3 months", "2026-08-01", "2026-10-31"),
    (SUNDAY, "last 2 quarters", "2026-04-01", "2026-09-30"),
    (SUNDAY, "last 2 years", "2024-01-01", "2025-12-31"),
    (SUNDAY, "2026-09-14", "2026-09-14", "2026-09-14"),
    (SUNDAY, "since 2026-09-01", "2026-09-01", "2026-11-29"),
    (SUNDAY, "since September", "2026-09-01", "2026-11-29"),
    (SUNDAY, "since last month", "2026-10-01", "2026-11-29"),
    (SUNDAY, "from 2026-09-01 to 2026-09-30", "2026-09-01", "2026-09-30"),
    (SUNDAY, "2026-09-01 to 2026-09-30", "2026-09-01", "2026-09-30"),
    (SUNDAY, "between 2026-09-01 and 2026-09-30", "2026-09-01", "2026-09-30"),
    (SUNDAY, "from September to October", "2026-09-01", "2026-10-31"),
    (SUNDAY, "from October to September", "2025-10-01", "2026-09-30"),
    (SUNDAY, "from 2026-09-01 to 2026-12-31", "2026-09-01", "2026-11-29"),
    # Thursday 2026-01-01: new year, new quarter, new month, and an ISO week from December
    (NEW_YEAR, "today", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "yesterday", "2025-12-31", "2025-12-31"),
    (NEW_YEAR, "this week", "2025-12-29", "2026-01-01"),
    (NEW_YEAR, "last week", "2025-12-22", "2025-12-28"),
    (NEW_YEAR, "this month", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "last month", "2025-12-01", "2025-12-31"),
    (NEW_YEAR, "this quarter", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "last quarter", "2025-10-01", "2025-12-31"),
    (NEW_YEAR, "Q1", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "Q3", "2025-07-01", "2025-09-30"),
    (NEW_YEAR, "ytd", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "last year", "2025-01-01", "2025-12-31"),
    (NEW_YEAR, "September", "2025-09-01", "2025-09-30"),
    (NEW_YEAR, "January", "2026-01-01", "2026-01-01"),
    (NEW_YEAR, "last 7 days", "2025-12-25", "2025-12-31"),
    (NEW_YEAR, "last 3 months", "2025-10-01", "2025-12-31"),
    (NEW_YEAR, "since December", "2025-12-01", "2026-01-01"),
    (NEW_YEAR, "from November to January", "2025-11-01", "2026-01-01"),
    # Tuesday 2026-03-31: the last day of a month and of a quarter, after a 28-day February
    (MARCH_END, "this week", "2026-03-30", "2026-03-31"),
    (MARCH_END, "last week", "2026-03-23", "2026-03-29"),
    (MARCH_END, "this month", "2026-03-01", "2026-03-31"),
    (MARCH_END, "last month", "2026-02-01", "2026-02-28"),
    (MARCH_END, "last 1 month", "2026-02-01", "2026-02-28"),
    (MARCH_END, "this quarter", "2026-01-01", "2026-03-31"),
    (MARCH_END, "last quarter", "2025-10-01", "2025-12-31"),
    (MARCH_END, "Q2", "2025-04-01", "2025-06-30"),
    (MARCH_END, "February", "2026-02-01", "2026-02-28"),
    (MARCH_END, "last 30 days", "2026-03-01", "2026-03-30"),
    # Monday 2026-11-23: "this week" is one day, "last week" and "last 7 days" coincide
    (MONDAY, "this week", "2026-11-23", "2026-11-23"),
    (MONDAY, "last week", "2026-11-16", "2026-11-22"),
    (MONDAY, "last 7 days", "2026-11-16", "2026-11-22"),
    (MONDAY, "yesterday", "2026-11-22", "2026-11-22"),
    # Tuesday 2028-02-29, leap day
    (LEAP_DAY, "this week", "2028-02-28", "2028-02-29"),
    (LEAP_DAY, "this month", "2028-02-01", "2028-02-29"),
    (LEAP_DAY, "last month", "2028-01-01", "2028-01-31"),
    (LEAP_DAY, "last year", "2027-01-01", "2027-12-31"),
    (LEAP_DAY, "Q1", "2028-01-01", "2028-02-29"),
    (LEAP_DAY, "ytd", "2028-01-01", "2028-02-29"),
    (LEAP_DAY, "February", "2028-02-01", "2028-02-29"),
    (LEAP_DAY, "feb 29", "2028-02-29", "2028-02-29"),
    (LEAP_DAY, "2028-02-29", "2028-02-29", "2028-02-29"),
    (LEAP_DAY, "last 365 days", "2027-03-01", "2028-02-28"),
    (LEAP_DAY, "last 12 months", "2027-02-01", "2028-01-31"),
    (D("2027-03-01"), "feb 29", "2024-02-29", "2024-02-29"),
    # Wednesday 2026-07-01, the first day of Q3
    (QUARTER_START, "this quarter", "2026-07-01", "2026-07-01"),
    (QUARTER_START, "last quarter", "2026-04-01", "2026-06-30"),
    (QUARTER_START, "Q3", "2026-07-01", "2026-07-01"),
    (QUARTER_START, "Q3 2026", "2026-07-01", "2026-07-01"),
    (QUARTER_START, "Q4", "2025-10-01", "2025-12-31"),
    (QUARTER_START, "last 2 quarters", "2026-01-01", "2026-06-30"),
    (QUARTER_START, "July", "2026-07-01", "2026-07-01"),
    (QUARTER_START, "June", "2026-06-01", "2026-06-30"),
    (QUARTER_START, "this week", "2026-06-29", "2026-07-01"),
    (QUARTER_START, "last month", "2026-06-01", "2026-06-30"),
]


@pytest.mark.parametrize(("today", "phrase", "start", "end"), CASES)
def test_phrase_dates(today: date, phrase: str, start: str, end: str) -> None:
    period = parse_period(phrase, today)
    assert (period.start, period.end) == (D(start), D(end))
    assert period.days == (D(end) - D(start)).days + 1


@pytest.mark.parametrize(
    ("phrase", "label"),
    [
        ("last month", "last month (October 2026)"),
        ("last 7 days", "last 7 days (2026-11-22 to 2026-11-28)"),
        ("Q3 2026", "Q3 2026 (2026-07-01 to 2026-09-30)"),
        ("Q4", "Q4 2026 to date (2026-10-01 to 2026-11-29)"),
        ("september", "September 2026"),
        ("2026-09-14", "2026-09-14"),
        ("this week", "this week (2026-11-23 to 2026-11-29)"),
        ("since September", "since September 2026 (2026-09-01 to 2026-11-29)"),
    ],
)
def test_labels(phrase: str, label: str) -> None:
    assert parse_period(phrase, SUNDAY).label == label


@pytest.mark.parametrize(
    ("today", "phrase", "start", "end", "label"),
    [
        (SUNDAY, "last month", "2026-09-01", "2026-09-30", "September 2026"),
        (
            SUNDAY,
            "this month",
            "2026-10-01",
            "2026-10-29",
            "first 29 days of October 2026 (2026-10-01 to 2026-10-29)",
        ),
        (MARCH_END, "this month", "2026-02-01", "2026-02-28", "February 2026"),
        (D("2026-03-30"), "mtd", "2026-02-01", "2026-02-28", "February 2026"),
        (LEAP_DAY, "this month", "2028-01-01", "2028-01-31", "January 2028"),
        (LEAP_DAY, "last month", "2027-12-01", "2027-12-31", "December 2027"),
        (SUNDAY, "last quarter", "2026-04-01", "2026-06-30", "Q2 2026 (2026-04-01 to 2026-06-30)"),
        (SUNDAY, "this quarter", "2026-07-01", "2026-08-29", None),
        (QUARTER_START, "this quarter", "2026-04-01", "2026-04-01", None),
        (QUARTER_START, "this month", "2026-06-01", "2026-06-01", None),
        (
            SUNDAY,
            "last week",
            "2026-11-09",
            "2026-11-15",
            "week 2026-W46 (2026-11-09 to 2026-11-15)",
        ),
        (SUNDAY, "this week", "2026-11-16", "2026-11-22", None),
        (MONDAY, "this week", "2026-11-16", "2026-11-16", None),
        (SUNDAY, "last year", "2024-01-01", "2024-12-31", None),
        (SUNDAY, "ytd", "2025-01-01", "2025-11-29", None),
        (LEAP_DAY, "ytd", "2027-01-01", "2027-03-01", None),  # 60 days, as many as Jan-Feb 2028
        (
            SUNDAY,
            "last 7 days",
            "2026-11-15",
            "2026-11-21",
            "previous 7 days (2026-11-15 to 2026-11-21)",
        ),
        (SUNDAY, "2026-09-14", "2026-09-13", "2026-09-13", "previous day (2026-09-13)"),
        (SUNDAY, "2026-09-01 to 2026-09-30", "2026-08-01", "2026-08-31", "August 2026"),
        (SUNDAY, "last 3 months", "2026-05-01", "2026-07-31", None),
        (SUNDAY, "since 2026-11-20", "2026-11-10", "2026-11-19", None),
    ],
)
def test_previous(today: date, phrase: str, start: str, end: str, label: str | None) -> None:
    previous = parse_period(phrase, today).previous()
    assert (previous.start, previous.end) == (D(start), D(end))
    if label is not None:
        assert previous.label == label


def test_datetimes_are_naive_utc_midnights() -> None:
    period = parse_period("last month", SUNDAY)
    assert period.start_datetime() == datetime(2026, 10, 1)
    assert period.end_exclusive() == datetime(2026, 11, 1)
    assert period.start_datetime().tzinfo is None


def test_period_rejects_reversed_dates() -> None:
    with pytest.raises(ValueError):
        Period(D("2026-09-02"), D("2026-09-01"), "backwards")


@pytest.mark.parametrize(
    ("today", "phrase", "message"),
    [
        (SUNDAY, "banana", "don't understand"),
        (SUNDAY, "", "don't understand"),
        (SUNDAY, "last", "don't understand"),
        (SUNDAY, "next month", "don't understand"),
        (SUNDAY, "Q5 2026", "don't understand"),
        (SUNDAY, "last 0 days", "empty"),
        (SUNDAY, "December 2026", "future"),
        (SUNDAY, "2026-12", "future"),
        (SUNDAY, "2027", "future"),
        (SUNDAY, "Q1 2027", "future"),
        (SUNDAY, "2026-12-01", "future"),
        (SUNDAY, "since 2026-12-01", "future"),
        (SUNDAY, "from 2026-12-01 to 2027-01-31", "future"),
        (SUNDAY, "from 2026-09-30 to 2026-09-01", "ends before it starts"),
        (SUNDAY, "2026-09-30 to 2026-09-01", "ends before it starts"),
        (SUNDAY, "between October 2026 and September 2026", "ends before it starts"),
        (SUNDAY, "from last month to September", "ends before it starts"),
        (SUNDAY, "2026-02-30", "not a valid date"),
        (SUNDAY, "2026-13", "not a valid month"),
        (SUNDAY, "Sep 31", "not a valid date"),
        (LEAP_DAY, "2027-02-29", "not a valid date"),
        (SUNDAY, "last 100000000 days", "too far"),
    ],
)
def test_errors(today: date, phrase: str, message: str) -> None:
    with pytest.raises(PeriodError) as raised:
        parse_period(phrase, today)
    assert message in raised.value.message
    assert raised.value.hint
    assert isinstance(raised.value, UserError)


def test_not_understood_hint_lists_accepted_forms() -> None:
    with pytest.raises(PeriodError) as raised:
        parse_period("whenever", SUNDAY)
    assert raised.value.hint is not None
    for form in ("last month", "Q3 2026", "last 7 days", "since 2026-09-01", "2026-09-14"):
        assert form in raised.value.hint


@pytest.mark.parametrize(
    ("text", "phrase", "start", "end"),
    [
        ("what did we spend on ec2 last month by team?", "last month", "2026-10-01", "2026-10-31"),
        ("spend in September by team", "in September", "2026-09-01", "2026-09-30"),
        ("show me Q3 2026 spend", "Q3 2026", "2026-07-01", "2026-09-30"),
        ("top 5 services over the last 7 days", "over the last 7 days", "2026-11-22", "2026-11-28"),
        ("p4d.24xlarge cost since 2026-09-01", "since 2026-09-01", "2026-09-01", "2026-11-29"),
        (
            "g5 cost from September to October",
            "from September to October",
            "2026-09-01",
            "2026-10-31",
        ),
        ("may I see spend in May 2026?", "in May 2026", "2026-05-01", "2026-05-31"),
        ("march 2026 totals", "march 2026", "2026-03-01", "2026-03-31"),
        ("spend in may", "in may", "2026-05-01", "2026-05-31"),
        ("spend since may", "since may", "2026-05-01", "2026-11-29"),
        ("top 3 teams in 2025 by cost", "in 2025", "2025-01-01", "2025-12-31"),
        ("compare 2026-10 to 2026-09", "2026-10", "2026-10-01", "2026-10-31"),
        ("Q3 and Q4", "Q3", "2026-07-01", "2026-09-30"),
        ("what did we spend YESTERDAY?", "YESTERDAY", "2026-11-28", "2026-11-28"),
        ("mtd, please", "mtd", "2026-11-01", "2026-11-29"),
        (
            "spend between 2026-09-01 and 2026-09-30 per account",
            "between 2026-09-01 and 2026-09-30",
            "2026-09-01",
            "2026-09-30",
        ),
    ],
)
def test_find_in_message(text: str, phrase: str, start: str, end: str) -> None:
    found = find_period(text, SUNDAY)
    assert found is not None
    period, (begin, finish) = found
    assert text[begin:finish] == phrase
    assert (period.start, period.end) == (D(start), D(end))


@pytest.mark.parametrize(
    "text",
    [
        "top 5 services",
        "p4d.24xlarge and g5.48xlarge hourly rates",
        "tickets faq3 and sq1",
        "may I see the bill",
        "i may 2 things",
        "march the budget forward",
        "ask jan about the bill",
        "top 2025 services",
        "what would it cost for 2000 hours",
        "scale from 1000 to 2000 nodes",
        "what does the mtd-report say",
        "last 5 services",
    ],
)
def test_find_ignores_lookalikes(text: str) -> None:
    assert find_period(text, SUNDAY) is None


@pytest.mark.parametrize(
    "text",
    [
        "spend in December 2026",
        "spend on 2026-02-30 please",
        "from 2026-09-30 to 2026-09-01 by team",
    ],
)
def test_find_reports_invalid_phrases(text: str) -> None:
    with pytest.raises(PeriodError):
        find_period(text, SUNDAY)


# Properties --------------------------------------------------------------------------------

TODAYS = st.dates(date(2000, 1, 1), date(2100, 12, 31))
MONTH_WORDS = [name.lower() for name in calendar.month_name if name] + ["sept", "jun"]
RELATIVE = [
    "today",
    "yesterday",
    "this week",
    "last week",
    "this month",
    "last month",
    "month to date",
    "mtd",
    "this quarter",
    "last quarter",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "this year",
    "ytd",
    "year to date",
    "last year",
    "last 7 days",
    "past 30 days",
    "last 2 weeks",
    "last 3 months",
    "last 2 quarters",
    "since last month",
    "past week",
    *MONTH_WORDS,
]
# Periods that are complete, so the comparable one ends the day before they start.
COMPLETE = ["yesterday", "last week", "last month", "last quarter", "last year", "last 7 days"]
MONTH_SHAPED = ["this month", "mtd", "last month", *MONTH_WORDS]


@settings(max_examples=200)
@given(today=TODAYS, phrase=st.sampled_from(RELATIVE))
def test_relative_phrases_end_by_today(today: date, phrase: str) -> None:
    period = parse_period(phrase, today)
    assert period.start <= period.end <= today
    assert period.days == (period.end - period.start).days + 1


@settings(max_examples=200)
@given(today=TODAYS, days=st.integers(1, 1000))
def test_last_n_days(today: date, days: int) -> None:
    period = parse_period(f"last {days} days", today)
    assert period.days == days
    assert period.end == today - timedelta(days=1)


@settings(max_examples=200)
@given(today=TODAYS, months=st.integers(1, 36))
def test_last_n_months_are_whole_months_before_this_one(today: date, months: int) -> None:
    period = parse_period(f"last {months} months", today)
    assert period.start.day == 1
    assert period.end == today.replace(day=1) - timedelta(days=1)
    assert (period.end.year * 12 + period.end.month) - (
        period.start.year * 12 + period.start.month
    ) == months - 1


@settings(max_examples=200)
@given(today=TODAYS, phrase=st.sampled_from(RELATIVE))
def test_previous_comes_before(today: date, phrase: str) -> None:
    period = parse_period(phrase, today)
    previous = period.previous()
    assert previous.start <= previous.end < period.start
    if phrase in COMPLETE:
        assert previous.end == period.start - timedelta(days=1)


@settings(max_examples=200)
@given(today=TODAYS, phrase=st.sampled_from(MONTH_SHAPED))
def test_previous_of_a_month_is_the_month_before(today: date, phrase: str) -> None:
    period = parse_period(phrase, today)
    year, month = period.start.year, period.start.month
    year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    previous = period.previous()
    assert previous.start == date(year, month, 1)
    assert previous.end.month == month
    # A whole month compares with the whole month before; a month to date with as many days.
    length = calendar.monthrange(year, month)[1]
    whole = period.end.day == calendar.monthrange(period.end.year, period.end.month)[1]
    assert previous.days == (length if whole else min(period.days, length))


@settings(max_examples=200)
@given(today=TODAYS, length=st.integers(0, 5000), gap=st.integers(0, 5000))
def test_iso_ranges(today: date, length: int, gap: int) -> None:
    end = today - timedelta(days=gap)
    start = end - timedelta(days=length)
    for phrase in (f"from {start} to {end}", f"{start} to {end}", f"between {start} and {end}"):
        period = parse_period(phrase, today)
        assert (period.start, period.end) == (start, end)
    day = parse_period(start.isoformat(), today)
    assert (day.start, day.end) == (start, start)
    if length:
        with pytest.raises(PeriodError, match="ends before it starts"):
            parse_period(f"{end} to {start}", today)


@settings(max_examples=200)
@given(today=TODAYS)
def test_next_month_is_in_the_future(today: date) -> None:
    year, month = (today.year, today.month + 1) if today.month < 12 else (today.year + 1, 1)
    with pytest.raises(PeriodError, match="future"):
        parse_period(f"{calendar.month_name[month]} {year}", today)


# Phrases valid on any day from 2010, and words that must not join or shadow them.
EMBEDDABLE = [
    "today",
    "yesterday",
    "this week",
    "last week",
    "last month",
    "this month",
    "mtd",
    "ytd",
    "last quarter",
    "this quarter",
    "Q3",
    "Q1 2009",
    "2009 Q4",
    "September",
    "sept",
    "in September",
    "in may",
    "for the last month",
    "sep 2009",
    "March 2009",
    "2009-09",
    "2009-09-14",
    "Sep 14 2009",
    "since 2009-09-01",
    "since may",
    "from 2009-09-01 to 2009-09-30",
    "2009-09-01 to 2009-09-30",
    "between 2009-09-01 and 2009-09-30",
    "from September to October",
    "last 7 days",
    "past 30 days",
    "last 30d",
    "for the last 2 weeks",
    "over the past 3 months",
    "last two weeks",
    "during last week",
]
BEFORE = ["what", "did", "we", "spend", "on", "ec2", "top", "5", "services", "p4d.24xlarge"]
BEFORE += ["g5", "may", "i", "see", "cost", "per", "account", "compare", "march"]
AFTER = ["by", "team", "please", "for", "ec2", "on", "gpu", "services", "and", "vs", "g5"]


@settings(max_examples=200)
@given(
    today=st.dates(date(2010, 1, 1), date(2100, 12, 31)),
    phrase=st.sampled_from(EMBEDDABLE),
    case=st.sampled_from([str.lower, str.upper, str.title, str]),
    before=st.lists(st.sampled_from(BEFORE), max_size=5),
    after=st.lists(st.sampled_from(AFTER), max_size=5),
    ending=st.sampled_from(["", "?", ".", "!"]),
)
def test_find_embedded_phrase(
    today: date,
    phrase: str,
    case: Callable[[str], str],
    before: list[str],
    after: list[str],
    ending: str,
) -> None:
    # "may 2009" is a month reference by design, so a year may not follow an everyday month word.
    assume(not (before[-1:] in (["may"], ["march"]) and phrase[0].isdigit()))
    written = case(phrase)
    head = " ".join(before) + " " if before else ""
    text = head + " ".join([written, *after]) + ending
    found = find_period(text, today)
    assert found is not None
    period, span = found
    assert span == (len(head), len(head) + len(written))
    assert period.start <= period.end <= today
    # The phrase cut out of the message reads back as the same period on its own.
    assert parse_period(text[span[0] : span[1]], today) == period
