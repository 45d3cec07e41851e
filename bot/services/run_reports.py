"""What an admin is told when a fine-tune ends: a few lines of figures, and the loss curve as a picture."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from bot.domain import DEFAULT_STYLE


@dataclass(frozen=True)
class RunReport:
    run_id: int
    status: str  # promoted, rejected, failed, interrupted, skipped
    detail: str
    metrics: dict[str, Any]
    chart: bytes | None = None
    style: str = DEFAULT_STYLE  # the style fine-tuned


def format_report(report: RunReport) -> str:
    m = report.metrics
    style = f" (style {report.style})" if report.style != DEFAULT_STYLE else ""
    lines = [f"Training run {report.run_id}{style}: {report.status}", report.detail]
    if "old_ppl_after" in m:
        lines.append(f"old-text perplexity {m.get('old_ppl_before', float('nan')):.1f} -> {m['old_ppl_after']:.1f}")
        lines.append(f"new-text perplexity {m.get('new_ppl_before', float('nan')):.1f} -> "
                     f"{m.get('new_ppl_after', float('nan')):.1f}")
    if "seconds" in m:
        lines.append(f"{m['seconds']:.0f} s, {m.get('added_chars', 0):.0f} new characters")
    return "\n".join(lines)


def loss_chart(history: list[dict[str, float]], title: str) -> bytes | None:
    """A PNG of training and validation loss per epoch: a curve is read faster than numbers."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="training loss")
    ax.plot(epochs, [h["val_nll"] for h in history], marker="o", label="validation loss (old + new)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per character")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
