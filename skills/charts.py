"""Chart images for replies: PNG bytes drawn with matplotlib's Agg canvas, no GUI, no pyplot."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from skills.money import SYMBOLS

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#BBBBBB")


def stacked_weeks_png(
    weeks: list[str], series: dict[str, list[float]], title: str, currency: str = "USD"
) -> bytes:
    """A stacked bar chart, one bar per week and one colour per series, as PNG bytes.

    A Figure with its own Agg canvas (not pyplot) keeps this safe in threads and servers.
    """
    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bottoms = [0.0] * len(weeks)
    for index, (name, amounts) in enumerate(series.items()):
        axes.bar(
            weeks,
            amounts,
            bottom=bottoms,
            label=name,
            color=PALETTE[index % len(PALETTE)],
            width=0.7,
        )
        bottoms = [bottom + amount for bottom, amount in zip(bottoms, amounts, strict=True)]
    symbol = SYMBOLS.get(currency.upper(), "")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{symbol}{value:,.0f}"))
    axes.set_title(title, fontsize=11)
    axes.set_xlabel("Week starting (Monday, UTC)")
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    if series:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
