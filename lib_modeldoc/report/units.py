"""Human-readable sizes."""

from __future__ import annotations

__all__ = ["human_bytes"]


def human_bytes(n: int | float) -> str:
    """``2_132_000_000 -> '2.13 GB'`` (decimal units, as file managers show)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
