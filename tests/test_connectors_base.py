"""Connector helpers: month windows and OpenAI line-item parsing, over open-ended inputs."""

from __future__ import annotations

from datetime import date, datetime
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from storage.connectors.base import daily_periods, month_end, month_starts
from storage.connectors.openai import _line_item


def test_month_window_crosses_the_year():
    now = datetime(2027, 1, 3, 8, 0)
    assert month_starts(now, 3) == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    assert month_end(date(2027, 1, 1), now) == date(2027, 1, 4)  # today's partial day included
    assert month_end(date(2026, 12, 1), now) == date(2027, 1, 1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)), st.integers(1, 24))
def test_month_window_is_whole_consecutive_months(day: date, months: int):
    starts = month_starts(datetime(day.year, day.month, day.day, 12), months)
    assert len(starts) == months and starts[-1] == day.replace(day=1)
    assert all(start.day == 1 for start in starts)
    assert all((b.year * 12 + b.month) - (a.year * 12 + a.month) == 1 for a, b in pairwise(starts))
    periods = daily_periods(day)
    assert periods["BillingPeriodStart"] == f"{day:%Y-%m}-01 00:00:00"
    assert periods["ChargePeriodStart"] == f"{day.isoformat()} 00:00:00"


model_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=","), min_size=1
).filter(lambda text: text.strip())


@given(model_text, st.sampled_from(["input", "cached input", "output", "Batch Output"]))
def test_line_items_split_into_model_and_kind(model: str, kind: str):
    assert _line_item(f"{model}, {kind}") == (model.strip(), kind.lower())
    assert _line_item(model) == (model.strip(), None)
    assert _line_item(None) == (None, None)
