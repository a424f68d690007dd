"""PNG bytes of a matplotlib figure, headless: what the evaluations store beside their metrics."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # services have no display; set before pyplot is imported anywhere


def figure_png(fig: Any) -> bytes:
    """The figure as PNG (110 dpi, tight), then closed so that long-running services do not leak figures."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
