"""Time phrases from chat ("last month", "Q3 2026", "since 2026-09-01") as UTC date ranges."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal, NamedTuple, TypeVar

from skills.errors import UserError

Unit = Literal["day", "week", "month", "quarter", "year"]

_DAY = timedelta(days=1)
_HINT = (
    "try today, yesterday, this week, last week, this month, last month, mtd, this quarter, "
    "last quarter, Q3 2026, ytd, last year, 2025, September, Sep 2026, 2026-09, last 7 days, "
    "last 3 months, 2026-09-14, since 2026-09-01, 2026-09-01 to 2026-09-30 "
    "or from September to October"
)


class PeriodError(UserError):
    """A time phrase that is not understood, not a real date, reversed or in the future."""


@dataclass(frozen=True)
class Period:
    """Inclusive range of UTC dates; `unit` is the calendar unit it is aligned to."""

    start: date
    end: date
    label: str
    unit: Unit = field(default="day", kw_only=True)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends on {self.end} before it starts on {self.start}")

    @property
    def days(self) -> int:
        """Count the days in the period, both ends included."""
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict[str, str]:
        """The label and ISO dates, as replies carry them in their data."""
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def previous(self) -> Period:
        """Return the comparable period just before: the previous unit(s), or as many days."""
        try:
            return self._previous()
        except (ValueError, OverflowError):  # it would start before 0001-01-01
            raise PeriodError(f"There is no period before {self.label}.") from None

    def _previous(self) -> Period:
        if self.unit == "day":
            start = self.start - timedelta(days=self.days)
            name = "previous day" if self.days == 1 else f"previous {self.days} days"
            return _make(name, start, self.start - _DAY, "day")
        unit = self.unit
        first = _index(self.start, unit)
        start = _from_index(first - (_index(self.end, unit) - first + 1), unit)
        end = self.start - _DAY
        if self.end != _unit_end(self.end, unit):
            # To-date periods compare with as many days at the start of the previous unit, so
            # November 1-29 is set against October 1-29 rather than against all of October.
            end = min(end, start + timedelta(days=self.days - 1))
        return _make(_calendar_name(start, end, unit), start, end, unit)

    def start_datetime(self) -> datetime:
        """Return the naive UTC datetime at which the period starts."""
        return datetime.combine(self.start, time())

    def end_exclusive(self) -> datetime:
        """Return the naive UTC datetime just after the period (midnight after its last day)."""
        return datetime.combine(self.end + _DAY, time())


def parse_period(text: str, today: date) -> Period:
    """Read a whole phrase such as "last month" or "from 2026-09-01 to 2026-09-30" as a Period.

    Raises PeriodError, with a hint listing accepted forms, for a phrase that is not understood,
    not a real date, reversed or wholly in the future. Periods running past today end today.
    """
    phrase = " ".join(text.split()).strip(" .,;:!?")
    for pattern, build in _PARSE_RULES:
        if match := pattern.fullmatch(phrase):
            return build(match, today)
    raise PeriodError(f"I don't understand the time period {text.strip()!r}.", hint=_HINT)


def find_period(text: str, today: date) -> tuple[Period, tuple[int, int]] | None:
    """Find the first time phrase in a message; return its Period and (start, end) span.

    The span covers a leading "in"/"for"/"during"/"over"/"within"/"the", so cutting it out leaves
    the rest of the question. Where phrases overlap the longest wins. Returns None when there is
    no time phrase; raises PeriodError when the phrase found is invalid or in the future.
    """
    matches = [(match, build) for pattern, build in _FIND_RULES for match in pattern.finditer(text)]
    matches.sort(key=lambda item: (item[0].start(), -item[0].end()))
    for match, build in matches:
        period = build(match, today)
        if period is not None:
            return period, match.span()
    return None


# Calendar units ------------------------------------------------------------------------------


def _index(day: date, unit: Unit) -> int:
    """Number the unit that holds `day`, so consecutive units have consecutive numbers."""
    if unit == "week":
        return (day.toordinal() - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    if unit == "month":
        return day.year * 12 + day.month - 1
    if unit == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    if unit == "year":
        return day.year
    return day.toordinal()


def _from_index(index: int, unit: Unit) -> date:
    """First day of the unit numbered `index` by _index."""
    if unit == "week":
        return date.fromordinal(index * 7 + 1)
    if unit == "month":
        return date(index // 12, index % 12 + 1, 1)
    if unit == "quarter":
        return date(index // 4, index % 4 * 3 + 1, 1)
    if unit == "year":
        return date(index, 1, 1)
    return date.fromordinal(index)


def take_period(text: str, today: date) -> tuple[str | None, str]:
    """The time phrase in a message and the message with that phrase blanked out.

    Skills keep the phrase itself as their ``period`` argument (it parses back to the same
    period) and read their other arguments from what is left.
    """
    found = find_period(text, today)
    if found is None:
        return None, text
    _, (start, end) = found
    return text[start:end].strip(), text[:start] + " " * (end - start) + text[end:]


def _unit_start(day: date, unit: Unit) -> date:
    return _from_index(_index(day, unit), unit)


def _unit_end(day: date, unit: Unit) -> date:
    return _from_index(_index(day, unit) + 1, unit) - _DAY


def full_period(period: Period) -> tuple[date, date]:
    """The whole calendar unit(s) a period is aligned to: all of November for "this month"."""
    if period.unit == "day":
        return period.start, period.end
    return _unit_start(period.start, period.unit), _unit_end(period.end, period.unit)


def _whole(start: date, end: date, unit: Unit) -> bool:
    return start == _unit_start(start, unit) and end == _unit_end(end, unit)


def _title(day: date, unit: Unit) -> str:
    """Name of the unit holding `day`: "September 2026", "Q3 2026", "2026", "week 2026-W47"."""
    if unit == "month":
        return f"{calendar.month_name[day.month]} {day.year}"
    if unit == "quarter":
        return f"Q{(day.month - 1) // 3 + 1} {day.year}"
    if unit == "year":
        return str(day.year)
    if unit == "week":
        year, week, _ = day.isocalendar()
        return f"week {year}-W{week:02d}"
    return day.isoformat()


def _calendar_name(start: date, end: date, unit: Unit) -> str:
    """Name a unit-aligned range: "September 2026", "May 2026 to July 2026", "first 29 days of..."."""
    if end == _unit_end(end, unit):
        if _index(start, unit) == _index(end, unit):
            return _title(start, unit)
        return f"{_title(start, unit)} to {_title(end, unit)}"
    days = (end - start).days + 1
    return f"first {f'{days} days' if days > 1 else 'day'} of {_title(start, unit)}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _dates(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"


def _make(name: str, start: date, end: date, unit: Unit) -> Period:
    """Build a Period labelled "name (dates)", keeping `unit` only if the range is aligned to it."""
    aligned = start == _unit_start(start, unit) and (
        end == _unit_end(end, unit) or _index(start, unit) == _index(end, unit)
    )
    if _whole(start, end, "month") and _index(start, "month") == _index(end, "month"):
        detail = _title(start, "month")
    else:
        detail = _dates(start, end)
    label = name if name == detail else f"{name} ({detail})"
    return Period(start, end, label, unit=unit if aligned else "day")


def _infer_unit(start: date, end: date) -> Unit:
    """Largest calendar unit that whole explicit dates line up with, e.g. a month for 09-01..09-30."""
    for unit in ("year", "quarter", "month"):
        if _whole(start, end, unit):
            return unit
    return "day"


# Single points in time -----------------------------------------------------------------------


class _Span(NamedTuple):
    """A resolved point phrase before clipping to today."""

    start: date
    end: date
    name: str
    unit: Unit


def _unit_span(day: date, unit: Unit, name: str) -> _Span:
    return _Span(_unit_start(day, unit), _unit_end(day, unit), name, unit)


_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_UNITS: dict[str, Unit] = {"d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}
_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_NUMBERS = {word: number for number, word in enumerate(_NUMBER_WORDS, start=1)}


def _valid_date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise PeriodError(
            f"{text} is not a valid date.", hint="write dates as YYYY-MM-DD, e.g. 2026-09-14"
        ) from None


def _iso_day(match: re.Match[str], today: date, ref: date) -> _Span:
    day = _valid_date(int(match["y"]), int(match["m"]), int(match["d"]), match[0])
    return _Span(day, day, day.isoformat(), "day")


def _iso_month(match: re.Match[str], today: date, ref: date) -> _Span:
    if not 1 <= int(match["m"]) <= 12:
        raise PeriodError(f"{match[0]} is not a valid month.", hint="write months as YYYY-MM")
    first = date(int(match["y"]), int(match["m"]), 1)
    return _unit_span(first, "month", _title(first, "month"))


def _month_day(match: re.Match[str], today: date, ref: date) -> _Span:
    month, day = _MONTHS[match["mon"][:3]], int(match["d"])
    text = f"{calendar.month_name[month]} {day}"
    if match["y"]:
        found = _valid_date(int(match["y"]), month, day, f"{text}, {match['y']}")
        return _Span(found, found, found.isoformat(), "day")
    # Without a year it is the latest such day not after `ref`; February 29 may be years back.
    for year in range(ref.year, ref.year - 9, -1):
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if found <= ref:
            return _Span(found, found, found.isoformat(), "day")
    raise PeriodError(f"{text} is not a valid date.", hint="check the day of the month")


def _year_of(match: re.Match[str], month: int, ref: date) -> int:
    """The year written, else the latest year in which `month` has started by `ref`."""
    written = match.groupdict().get("y")
    if written:
        return int(written)
    return ref.year if month <= ref.month else ref.year - 1


def _month(match: re.Match[str], today: date, ref: date) -> _Span:
    month = _MONTHS[match["mon"][:3]]
    first = date(_year_of(match, month, ref), month, 1)
    return _unit_span(first, "month", _title(first, "month"))


def _quarter(match: re.Match[str], today: date, ref: date) -> _Span:
    month = int(match["q"]) * 3 - 2
    first = date(_year_of(match, month, ref), month, 1)
    return _unit_span(first, "quarter", _title(first, "quarter"))


def _year(match: re.Match[str], today: date, ref: date) -> _Span:
    return _unit_span(date(int(match["y"]), 1, 1), "year", match["y"])


def _today(match: re.Match[str], today: date, ref: date) -> _Span:
    day = today if match[0] == "today" else today - _DAY
    return _Span(day, day, match[0], "day")


def _current(match: re.Match[str], today: date, ref: date) -> _Span:
    groups = match.groupdict()
    unit = _UNITS[(groups["u"] or groups["x"])[0]]
    name = f"this {unit}" if match[0].startswith(("this", "current")) else f"{unit} to date"
    return _unit_span(today, unit, name)


def _last(match: re.Match[str], today: date, ref: date) -> _Span:
    unit = _UNITS[match["u"][0]]
    return _unit_span(_unit_start(today, unit) - _DAY, unit, f"last {unit}")


_MONTH_SAFE = (
    r"january|feb(?:ruary)?|apr(?:il)?|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?"
    r"|nov(?:ember)?|dec(?:ember)?"
)
# Month words that are also everyday words ("may I see", "march on", "ask jan") are months in a
# message only after in/for/during/over/within/since/from/between or before a year.
_MONTH_AMBIGUOUS = r"jan|mar(?:ch)?|may"
_ANY_MONTH = rf"(?P<mon>{_MONTH_SAFE}|{_MONTH_AMBIGUOUS})"
_UNIT_WORD = r"(?P<u>week|month|quarter|year)"

_ISO_DAY = r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
_ISO_MONTH = r"(?P<y>\d{4})-(?P<m>\d{2})"
_MONTH_DAY = rf"{_ANY_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?"
_MONTH_YEAR = rf"{_ANY_MONTH},?\s+(?:of\s+)?(?P<y>\d{{4}})"
_QUARTER_YEAR = r"q(?P<q>[1-4])(?:(?:\s+|-)(?P<y>\d{4}))?"
_YEAR_QUARTER = r"(?P<y>\d{4})(?:\s+|-)?q(?P<q>[1-4])"
_TODAY = r"today|yesterday"
_THIS = rf"(?:this|current)\s+{_UNIT_WORD}(?:\s+to\s+date)?"
_TO_DATE = rf"{_UNIT_WORD}[\s-]+to[\s-]+date|(?P<x>[wmqy])td"
_LAST = rf"(?:last|previous|prior)\s+{_UNIT_WORD}"
_SAFE_MONTH = rf"(?P<mon>{_MONTH_SAFE})"
_AMBIGUOUS_MONTH = rf"(?P<mon>{_MONTH_AMBIGUOUS})"
_BARE_YEAR = r"(?P<y>\d{4})"

# Order matters twice: fullmatch tries these in turn, and in the joined regexes below the first
# form that fits wins, so longer forms ("2026-09-14", "sep 2026") come before their prefixes.
_POINTS: list[tuple[re.Pattern[str], Callable[[re.Match[str], date, date], _Span]]] = [
    (re.compile(form), resolve)
    for form, resolve in [
        (_ISO_DAY, _iso_day),
        (_ISO_MONTH, _iso_month),
        (_MONTH_DAY, _month_day),
        (_MONTH_YEAR, _month),
        (_QUARTER_YEAR, _quarter),
        (_YEAR_QUARTER, _quarter),
        (_TODAY, _today),
        (_THIS, _current),
        (_TO_DATE, _current),
        (_LAST, _last),
        (_SAFE_MONTH, _month),
        (_AMBIGUOUS_MONTH, _month),
        (_BARE_YEAR, _year),
    ]
]


def _point(text: str, today: date, ref: date) -> _Span:
    """Resolve one point phrase; a month or quarter without a year is the latest one by `ref`."""
    phrase = " ".join(text.lower().split())
    for pattern, resolve in _POINTS:
        if match := pattern.fullmatch(phrase):
            try:
                return resolve(match, today, ref)
            except (ValueError, OverflowError):
                raise PeriodError(f"{text} is outside the calendar.", hint=_HINT) from None
    raise PeriodError(f"I don't understand {text!r} as a date.", hint=_HINT)


# Whole phrases -------------------------------------------------------------------------------


def _future(name: str, today: date) -> PeriodError:
    return PeriodError(
        f"{name} is in the future.",
        hint=f"today is {today.isoformat()} (UTC); ask about a period that has started",
    )


def _single(match: re.Match[str], today: date) -> Period:
    span = _point(match["p"], today, today)
    if span.start > today:
        raise _future(span.name, today)
    end = min(span.end, today)
    name = span.name
    if end < span.end and not name.startswith("this ") and not name.endswith("to date"):
        name += " to date"
    return _make(name, span.start, end, span.unit)


def _recent_year(match: re.Match[str], today: date) -> Period | None:
    # After "in"/"for" a number is only taken for a recent year: "for 2000 hours" is a count.
    if not today.year - 10 <= int(match["p"]) <= today.year:
        return None
    return _single(match, today)


def _since(match: re.Match[str], today: date) -> Period:
    span = _point(match["p"], today, today)
    if span.start > today:
        raise _future(span.name, today)
    return _make(f"since {span.name}", span.start, today, span.unit)


def _range(match: re.Match[str], today: date) -> Period:
    last = _point(match["b"], today, today)
    first = _point(match["a"], today, last.end)
    if last.end < first.start:
        raise PeriodError(
            f"{' '.join(match[0].split())!r} ends before it starts.",
            hint="put the earlier date first, e.g. 2026-09-01 to 2026-09-30",
        )
    if first.start > today:
        raise _future(first.name, today)
    end = min(last.end, today)
    unit = first.unit if first.unit == last.unit != "day" else _infer_unit(first.start, end)
    return _make(f"{first.name} to {last.name}", first.start, end, unit)


def _forward_range(match: re.Match[str], today: date) -> Period | None:
    # Without "from" or "between" a backwards pair is a comparison ("2026-10 vs 2026-09"), not a
    # range, so the caller falls back to the first date alone.
    if _point(match["b"], today, today).end < _point(match["a"], today, today).start:
        return None
    return _range(match, today)


def _last_n(match: re.Match[str], today: date) -> Period:
    groups = match.groupdict()
    if groups.get("n"):
        count = int(groups["n"])
    elif groups.get("w"):
        count = _NUMBERS[groups["w"].lower()]
    else:  # "past week"
        count = 1
    unit = _UNITS[match["u"][0].lower()]
    words = " ".join(match[0].lower().split())
    if count < 1:
        raise PeriodError(f"{words!r} is empty.", hint="ask for at least one, e.g. last 7 days")
    try:
        if unit in ("day", "week"):
            start = today - timedelta(days=count * (7 if unit == "week" else 1))
            start_unit: Unit = "day"
        else:
            start, start_unit = _from_index(_index(today, unit) - count, unit), unit
    except (ValueError, OverflowError):
        raise PeriodError(f"{words!r} goes back too far.", hint=_HINT) from None
    amount = _plural(count, unit) if groups.get("n") or groups.get("w") else unit
    name = f"{match['kw'].lower()} {amount}"
    return _make(name, start, _unit_start(today, start_unit) - _DAY, start_unit)


def _alternatives(*forms: str) -> str:
    """One regex for any of the point forms, with names dropped so it can appear twice."""
    unnamed = (re.sub(r"\(\?P<\w+>", "(?:", form) for form in forms)
    return f"(?:{'|'.join(unnamed)}){_END}"


_START = r"(?<![\w./-])"  # not inside "p4d.24xlarge", "faq3" or "inv-2026-09"
_END = r"(?![\w]|[./-]\w)"
_PREP = r"(?:(?:in|for|during|over|within)\s+)?(?:the\s+)?"
_TO = r"\s+(?:to|through|thru|until|till|-|–)\s+"
_NAMED = (_MONTH_YEAR, _QUARTER_YEAR, _YEAR_QUARTER, _TODAY, _THIS, _TO_DATE, _LAST)
_SAFE_MONTH_DAY = _MONTH_DAY.replace(_ANY_MONTH, _SAFE_MONTH)
_ISO = _alternatives(_ISO_DAY, _ISO_MONTH)
_STRICT = _alternatives(_ISO_DAY, _ISO_MONTH, _SAFE_MONTH_DAY, *_NAMED, _SAFE_MONTH)
_CONTEXT = _alternatives(_ISO_DAY, _ISO_MONTH, _MONTH_DAY, *_NAMED, _SAFE_MONTH, _AMBIGUOUS_MONTH)
_LOOSE = _alternatives(
    _ISO_DAY, _ISO_MONTH, _MONTH_DAY, *_NAMED, _SAFE_MONTH, _AMBIGUOUS_MONTH, _BARE_YEAR
)
_LAST_N = (
    rf"{_PREP}(?P<kw>last|past|previous|prior)\s+"
    rf"(?:(?P<n>\d+)\s*|(?P<w>{'|'.join(_NUMBER_WORDS)})\s+)"
    rf"(?P<u>days?|d|weeks?|wks?|w|months?|mos?|quarters?|years?|yrs?){_END}"
)
_PAST = rf"{_PREP}(?P<kw>past)\s+(?P<u>day|week|month|quarter|year){_END}"


_Build = TypeVar("_Build", bound=Callable[[re.Match[str], date], "Period | None"])


def _rules(*rules: tuple[str, _Build]) -> list[tuple[re.Pattern[str], _Build]]:
    return [(re.compile(_START + pattern, re.IGNORECASE), build) for pattern, build in rules]


_PARSE_RULES = _rules(
    (rf"{_PREP}(?P<p>{_LOOSE})", _single),
    (rf"since\s+(?P<p>{_LOOSE})", _since),
    (rf"{_PREP}(?:from\s+)?(?P<a>{_LOOSE}){_TO}(?P<b>{_LOOSE})", _range),
    (rf"{_PREP}between\s+(?P<a>{_LOOSE})\s+and\s+(?P<b>{_LOOSE})", _range),
    (_LAST_N, _last_n),
    (_PAST, _last_n),
)

# In a longer message only unmistakable phrases count: a bare year or an everyday month word
# needs a preposition, and a range without "from"/"between" must be ISO dates running forwards.
_FIND_RULES = _rules(
    (rf"{_PREP}(?P<p>{_STRICT})", _single),
    (rf"(?:in|for|during|over|within)\s+(?:the\s+)?(?P<p>{_CONTEXT})", _single),
    (rf"(?:in|for|during)\s+(?P<p>\d{{4}}){_END}", _recent_year),
    (rf"since\s+(?P<p>{_LOOSE})", _since),
    (rf"from\s+(?P<a>{_CONTEXT}){_TO}(?P<b>{_CONTEXT})", _range),
    (rf"between\s+(?P<a>{_CONTEXT})\s+and\s+(?P<b>{_CONTEXT})", _range),
    (rf"{_PREP}(?P<a>{_ISO}){_TO}(?P<b>{_ISO})", _forward_range),
    (_LAST_N, _last_n),
    (_PAST, _last_n),
)
