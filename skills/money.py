"""Formatting of money, percentages and changes the way people read them in chat."""

from __future__ import annotations

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}


def format_money(amount: float, currency: str = "USD") -> str:
    """Currency, thousands separators and cents: ``$12,345.67``, ``-€3.10``, ``<$0.01``."""
    symbol = SYMBOLS.get(currency.upper())
    if 0 < abs(amount) < 0.005:
        digits = "<" + (f"{symbol}0.01" if symbol else f"0.01 {currency}")
        return ("-" if amount < 0 else "") + digits
    number = f"{abs(round(amount, 2)):,.2f}"
    sign = "-" if round(amount, 2) < 0 else ""
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def format_change(current: float, previous: float, currency: str = "USD") -> str:
    """``up $1,234.50 (+12.3%)``, ``down $80.00 (-4.0%)``, or ``unchanged``."""
    delta = current - previous
    if round(delta, 2) == 0:
        return "unchanged"
    direction = "up" if delta > 0 else "down"
    text = f"{direction} {format_money(abs(delta), currency)}"
    percent = percent_change(current, previous)
    return f"{text} ({percent:+.1f}%)" if percent is not None else f"{text} (new spend)"


def percent_change(current: float, previous: float) -> float | None:
    """Percent change from `previous` to `current`; None when there was nothing before."""
    if abs(previous) < 0.005:
        return None
    return (current - previous) / abs(previous) * 100.0


def format_small_money(amount: float, currency: str) -> str:
    """Like `format_money`, with four decimals below one unit: LLM costs are often cents."""
    if abs(amount) < 1 and currency == "USD":
        return f"${amount:,.4f}"
    return format_money(amount, currency)
