"""Pictures for replies: the skill's own chart, or one drawn from a spend breakdown's table.

A trend (spend by day, week or month) becomes a line, a breakdown of three or more groups a
horizontal bar chart; anything else stays text. Drawn on a Figure with its own Agg canvas (no
pyplot), so it is safe in the server's worker threads.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from skills.money import SYMBOLS
from skills.replies import Reply

TIME_DIMENSIONS = ("day", "week", "month")
MAX_BARS = 15


def chart_for(reply: Reply, title: str) -> bytes | None:
    """PNG bytes worth showing next to `reply`, or None when the text says it better."""
    if reply.chart is not None:
        return reply.chart
    table, group_by = reply.table, reply.data.get("group_by") or []
    if reply.is_error or table is None or len(group_by) != 1 or not table.money_columns:
        return None
    money = min(table.money_columns)
    points = [
        (str(row[0]), float(row[money]))
        for row in table.rows
        if isinstance(row[money], int | float) and row[0] is not None
    ]
    symbol = SYMBOLS.get(table.currency.upper(), "")
    if group_by[0] in TIME_DIMENSIONS and len(points) >= 2:
        return _draw(points, title, symbol, trend=True)
    if group_by[0] not in TIME_DIMENSIONS and len(points) >= 3:
        return _draw(points[:MAX_BARS], title, symbol, trend=False)
    return None


def _draw(points: list[tuple[str, float]], title: str, symbol: str, *, trend: bool) -> bytes:
    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [label for label, _ in points]
    values = [value for _, value in points]
    money = FuncFormatter(lambda value, _: f"{symbol}{value:,.0f}")
    if trend:
        axes.plot(labels, values, marker="o", color="#4C72B0")
        axes.yaxis.set_major_formatter(money)
        axes.set_ylim(bottom=0)
        axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    else:
        axes.barh(labels[::-1], values[::-1], color="#4C72B0")
        axes.xaxis.set_major_formatter(money)
        axes.tick_params(axis="y", labelsize=8)
    axes.set_title(title, fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
