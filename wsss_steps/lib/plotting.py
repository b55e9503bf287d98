"""matplotlib for the stages that plot (figures, sweep): the file-only backend and atomic PNG writes."""

from __future__ import annotations

from .files import atomic_path


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> None:
    """Write ``fig`` as PNG to ``path`` atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    pyplot().close(fig)
