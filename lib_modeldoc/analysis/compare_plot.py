"""``compare --plot``: a heatmap of how much each block differs. Needs matplotlib (optional).

matplotlib is imported only here and only when a plot is asked for; the object-oriented API
(``Figure``) is used so no pyplot state or GUI backend is touched inside a WebUI.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import MissingDependencyError
from ..io.atomic import atomic_output
from ..io.output_rule import OutputKind, check_output
from .compare import Comparison

__all__ = ["require_matplotlib", "plot_comparison"]

_FLOOR = 1e-5  # relative differences below this share the lightest colour


def require_matplotlib() -> None:
    """Fail early, with the install hint, when matplotlib is missing.

    Raises:
        MissingDependencyError: matplotlib cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the comparison plot needs matplotlib, which is not installed; pip install matplotlib") from None


def plot_comparison(comparison: Comparison, path: str | os.PathLike[str], *, dpi: int = 120) -> str:
    """Write a PNG heatmap: one row per component, one cell per block, coloured by relative difference.

    Identical blocks are drawn light green; the colour scale is logarithmic from 1e-5 to 1.

    Args:
        comparison: a :func:`~lib_modeldoc.analysis.compare.compare_models` result.
        path: the PNG to write (an older plot there is replaced atomically; a model never is).
        dpi: resolution.

    Returns:
        The path written.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        OutputError: the file cannot be written, or is a model (or one of the compared files).

    Example:
        >>> plot_comparison(compare_models("a.safetensors", "b.safetensors"), "diff.png")
        'diff.png'
    """
    require_matplotlib()
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    rows = [(name, c) for name, c in comparison.components.items() if c.blocks]
    widest = max((len(c.blocks) for _, c in rows), default=1)
    fig = Figure(figsize=(min(24.0, 2.5 + 0.32 * widest), 1.6 + 1.25 * max(1, len(rows))), layout="constrained")
    title = f"{os.path.basename(comparison.a)}  vs  {os.path.basename(comparison.b)}"
    fig.suptitle(title, fontsize=10)
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#c8ecc8")
    norm = LogNorm(vmin=_FLOOR, vmax=1.0)
    if not rows:
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no component in common", ha="center", va="center")
    else:
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        image = None
        for ax, (name, comp) in zip(axes, rows):
            labels = [block for block, _ in comp.blocks]
            values = np.array([
                np.nan if stats.identical
                else (stats.relative_difference if stats.relative_difference is not None else 1.0)
                for _, stats in comp.blocks
            ], dtype=np.float64)
            data = np.ma.masked_invalid(np.clip(values, _FLOOR, 1.0))[None, :]
            image = ax.imshow(data, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
            for i, (_, stats) in enumerate(comp.blocks):
                if stats.identical:
                    ax.text(i, 0, "=", ha="center", va="center", fontsize=8, color="#2a7a2a")
            ax.set_yticks([0], [name])
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            ax.tick_params(length=0)
        assert image is not None
        fig.colorbar(image, ax=list(axes), label="relative difference ||A-B|| / ||A||  (green: identical)",
                     fraction=0.04)
    target = os.fspath(path)
    check_output(target, kind=OutputKind.REPORT, sources=(comparison.a, comparison.b))
    with atomic_output(target, like=comparison.a) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return target
