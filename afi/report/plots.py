"""Metric curves as PNG bytes (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

# One series: (step, value) points in step order.
Series = Sequence[tuple[int, float]]


def curves_png(
    panels: Mapping[str, Mapping[str, Series]], title: str | None = None, columns: int = 3
) -> bytes:
    """One panel per metric key, one line per run: {key: {run label: points}} -> PNG bytes."""
    # Imported here: matplotlib takes a second or more to import and only plots need it.
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot's import
    import matplotlib.pyplot as plt

    keys = sorted(panels)
    if not keys:
        keys = ["(no metrics logged yet)"]
    cols = min(columns, len(keys))
    rows = (len(keys) + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(keys):
            axis.set_visible(False)
            continue
        key = keys[index]
        for label, points in panels.get(key, {}).items():
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, marker="o" if len(points) < 20 else None, ms=3, label=label)
        axis.set_title(key, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if panels.get(key):
            axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
