"""CLIP position_ids of a model *in memory* (a loaded torch module), checked and reset in place.

The WebUI copies a checkpoint's position_ids into an int64 buffer when it loads the model, so a
merge's 75.9975 becomes 75 and stays wrong until the model is reloaded from a repaired file.
:func:`fix_position_ids` resets the buffers to ``0..n-1`` without reloading anything or
writing a file. torch is imported lazily (the engine itself needs only numpy).
"""

from __future__ import annotations

from typing import Any

__all__ = ["find_position_ids", "check_position_ids", "fix_position_ids"]

SUFFIX = "embeddings.position_ids"


def find_position_ids(module: Any) -> dict[str, Any]:
    """Every CLIP-style ``position_ids`` buffer of ``module``, by name; shared buffers once."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for name, buf in module.named_buffers():
        if not name.endswith(SUFFIX) or buf is None or buf.dim() == 0:
            continue
        ident = id(buf)
        if ident in seen:
            continue
        seen.add(ident)
        found[name] = buf
    return found


def check_position_ids(module: Any) -> dict[str, tuple[int, ...]]:
    """Buffer name -> indices whose value, read as int64, is not the index (empty tuple = right)."""
    import torch

    result = {}
    for name, buf in find_position_ids(module).items():
        values = buf.detach().reshape(-1).to("cpu")
        as_int = values.to(torch.int64)
        expected = torch.arange(values.numel(), dtype=torch.int64)
        result[name] = tuple(int(i) for i in torch.nonzero(as_int != expected).reshape(-1).tolist())
    return result


def fix_position_ids(module: Any) -> dict[str, tuple[int, ...]]:
    """Reset every damaged position_ids buffer to ``0..n-1`` in place; returns what was wrong."""
    import torch

    wrong = check_position_ids(module)
    buffers = find_position_ids(module)
    with torch.no_grad():
        for name, indices in wrong.items():
            if not indices:
                continue
            buf = buffers[name]
            buf.copy_(torch.arange(buf.numel(), dtype=torch.int64).reshape(buf.shape).to(buf.device, buf.dtype))
    return {name: indices for name, indices in wrong.items() if indices}
