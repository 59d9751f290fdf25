"""The money-figure check of LLM answers: any amount a tool returned passes, others are flagged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.llm_tools import money_figures, unsupported_figures

AMOUNTS = st.decimals(min_value=0, max_value=10**9, places=2).map(float)


@given(AMOUNTS)
def test_an_amount_from_the_tool_results_is_supported_however_written(amount: float) -> None:
    results = [{"data": {"total": amount}}]
    for written in (f"${amount:,.2f}", f"{amount:,.2f} USD", f"${amount:.2f}"):
        assert unsupported_figures(f"You spent {written} this month.", results) == []
    assert unsupported_figures(f"About ${amount / 1000:,.1f}k.", results) == []


@given(AMOUNTS, AMOUNTS)
def test_an_amount_no_tool_returned_is_flagged(amount: float, other: float) -> None:
    if abs(amount - other) < 0.01:
        return
    text = f"You spent ${other:,.2f}."
    assert unsupported_figures(text, [{"total": amount}]) == [f"${other:,.2f}"]


def test_figures_inside_tool_text_count_and_negatives_match_their_size() -> None:
    results = [{"text": "Spend: $74,232.13, down $16,893.43", "data": {"change": -359.98}}]
    assert unsupported_figures("$74,232.13, down $16,893.43 and $359.98", results) == []
    (million, slack_m), (twelve, slack_12) = [
        (value, slack) for _, value, slack in money_figures("€1.5 million and 12 EUR")
    ]
    assert (million, twelve) == (1_500_000.0, 12.0)
    assert slack_m == pytest.approx(50_000) and slack_12 == pytest.approx(0.5)
