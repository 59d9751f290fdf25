"""Money formatting: currency, thousands separators and cents, for any amount."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skills.money import format_change, format_money, percent_change


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (12345.678, "USD", "$12,345.68"),
        (0, "USD", "$0.00"),
        (-3.1, "EUR", "-€3.10"),
        (0.004, "USD", "<$0.01"),
        (-0.001, "USD", "-<$0.01"),
        (1234567.5, "CHF", "1,234,567.50 CHF"),
    ],
)
def test_examples(amount: float, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2))
def test_any_cent_amount_reads_back(amount: Decimal) -> None:
    text = format_money(float(amount), "USD")
    assert re.fullmatch(r"-?\$\d{1,3}(,\d{3})*\.\d{2}", text)
    assert Decimal(text.replace("$", "").replace(",", "")) == amount.quantize(
        Decimal("0.01"), ROUND_HALF_EVEN
    )


def test_changes() -> None:
    assert format_change(110.0, 100.0) == "up $10.00 (+10.0%)"
    assert format_change(90.0, 100.0) == "down $10.00 (-10.0%)"
    assert format_change(5.0, 0.0) == "up $5.00 (new spend)"
    assert format_change(1.001, 1.0) == "unchanged"
    assert percent_change(5.0, 0.0) is None
