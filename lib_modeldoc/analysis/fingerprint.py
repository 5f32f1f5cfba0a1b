"""Known components: the model-toolkit "metric" and an exact content fingerprint per component.

Two numbers per component, both computed from values rounded to fp16, so storage precision,
container (.safetensors / .ckpt / .pt), checkpoint prefix and the old NAI CLIP layout do not
change them:

* the **metric** of the model-toolkit extension (UNet, VAE, CLIP), four digits each, so that the
  numbers it published for well-known parts apply here: a VAE whose metric is 2982 is the NAI
  VAE. It is a checksum-like summary, not proof; a match within one unit is reported.
* the **fingerprint**: SHA-256 over the component's tensors in canonical key order (keys relative
  to the component, values rounded to fp16). Equal fingerprints mean the same weights, e.g. one
  VAE saved as ``.vae.pt``, inside a checkpoint and as an fp16 ``.safetensors``.

Both read every tensor of a component once, one tensor at a time, so they are opt-in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arch.components import COMPONENTS, MetricScale
from ..arch.identify import Identification, identify_model
from ..dtypes import DTYPES
from ..io.model import ModelFile
from ..io.tensor import TensorInfo
from ..progress import Progress
from ..report.data import Finding, Severity
from ._toolkit_sigmoid import SIGMOID_ULPS

__all__ = [
    "MetricScale", "METRIC_SCALES", "KnownComponent", "KNOWN_COMPONENTS", "KNOWN_TOLERANCE",
    "ComponentPrint", "KnownComponents", "component_tensors", "fingerprint_component",
    "fingerprint_model", "quick_fingerprint", "metric_sum", "metric_number", "known_for",
]


#: Component slot -> the toolkit's metric scale (the components table's ``metric`` column).
METRIC_SCALES: Mapping[str, MetricScale] = {c.id: c.metric for c in COMPONENTS if c.metric is not None}


@dataclass(frozen=True)
class KnownComponent:
    """A published metric value of a well-known component (the model-toolkit's table)."""

    scale: str  # a MetricScale label
    metric: int
    name: str  # the toolkit's name
    description: str


KNOWN_COMPONENTS: tuple[KnownComponent, ...] = (
    KnownComponent("VAE", 0, "SD-v1", "the Stable Diffusion 1.x VAE"),
    KnownComponent("VAE", 869, "SD-v2", "the Stable Diffusion 2.x VAE"),
    KnownComponent("VAE", 2982, "NAI", "the NAI (NovelAI) VAE"),
    KnownComponent("VAE", 155, "WD-VAE-v1", "the Waifu Diffusion VAE v1"),
    KnownComponent("VAE", 41, "WD-VAE-v2", "the Waifu Diffusion VAE v2"),
    KnownComponent("CLIP-L", 0, "SD-v1", "the original CLIP ViT-L/14 text encoder of SD 1.x"),
    KnownComponent("OpenCLIP-H", 1141, "SD-v2", "the OpenCLIP ViT-H text encoder of SD 2.x"),
    KnownComponent("OpenCLIP-H", 2543, "WD-v1-4", "the text encoder of Waifu Diffusion 1.4"),
)
KNOWN_TOLERANCE = 1  # metric units; fp16 rounding and summation order move the last digit

_WRAP = 10_000  # the toolkit folds numbers >= 10000 back into 5000..9999
_CHUNK = 1 << 22  # elements per step: bounds the temporaries of one tensor
_SKIP = ("position_ids",)  # fixed buffers, dropped by recent transformers: not part of the weights
_QUICK_MAX_NUMEL = 1 << 16


def known_for(component: str, metric: int | None) -> tuple[KnownComponent, ...]:
    """Known components of this slot whose published metric is within :data:`KNOWN_TOLERANCE`."""
    scale = METRIC_SCALES.get(component)
    if scale is None or metric is None:
        return ()
    return tuple(k for k in KNOWN_COMPONENTS if k.scale == scale.label and abs(k.metric - metric) <= KNOWN_TOLERANCE)


def metric_sum(values: np.ndarray) -> float:
    """``sum(sigmoid(t) - 0.5)`` over ``values`` rounded to fp16, computed in fp32.

    Each element's value is torch's float32 result, as in the toolkit; the sum is accumulated in
    float64 (the toolkit adds per-tensor sums in float32, which can move CLIP-L's number, where
    one unit is a relative 1e-6, by one).
    """
    flat = np.asarray(values).reshape(-1)
    total = 0.0
    for start in range(0, flat.size, _CHUNK):
        with np.errstate(over="ignore", invalid="ignore"):
            half = flat[start:start + _CHUNK].astype("<f2")
        total += _chunk_metric(half)
    return total


@functools.lru_cache(maxsize=1)
def _metric_table() -> np.ndarray:
    """``torch.sigmoid(t) - 0.5`` in float32 for each of the 65536 fp16 values ``t``, without torch.

    A correctly rounded sigmoid is corrected by the ulps torch differs by (generated data): over
    a CLIP-L's 57 M values torch's small, one-sided errors move the toolkit's number by several
    units, so its published values are only reproduced with torch's own float32 results.
    """
    halves = np.arange(1 << 16, dtype=np.uint16).view("<f2").astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        sigmoid = (1.0 / (1.0 + np.exp(-halves))).astype(np.float32)
    ulps = np.frombuffer(zlib.decompress(base64.b64decode("".join(SIGMOID_ULPS))), dtype=np.int8)
    sigmoid = (sigmoid.view(np.int32) + ulps).view(np.float32)
    return sigmoid - np.float32(0.5)


def _chunk_metric(half: np.ndarray) -> float:
    # A table lookup per element: the same float32 values as evaluating the formula, faster.
    return float(_metric_table()[half.view(np.uint16)].sum(dtype=np.float64))


def metric_number(total: float, component: str) -> int | None:
    """The toolkit's four-digit number for a component's :func:`metric_sum` total.

    ``None`` when the slot has no metric or the total is not finite (NaN/Inf weights).
    """
    scale = METRIC_SCALES.get(component)
    if scale is None or not math.isfinite(total):
        return None
    n = int(abs(total / scale.base - 1) * scale.scale)
    if n >= _WRAP:  # the toolkit subtracts 5000 until below 10000
        n = _WRAP // 2 + n % (_WRAP // 2)
    return n


@dataclass(frozen=True)
class ComponentPrint:
    """The fingerprint and metric of one component of one file."""

    component: str  # unet, vae, clip_l, clip_h, clip_g, ema_unet ...
    fingerprint: str  # SHA-256 hex of the canonical fp16 content
    keys: int  # tensors hashed
    metric: int | None = None  # toolkit number; None where the slot has none
    metric_total: float | None = None
    known: tuple[KnownComponent, ...] = ()

    @property
    def has_metric(self) -> bool:
        """Whether the model toolkit gives this component a number (UNet, VAE, CLIP)."""
        return self.component in METRIC_SCALES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fingerprint": self.fingerprint, "keys": self.keys}
        if self.has_metric:
            out["metric"] = self.metric
            out["metric_scale"] = METRIC_SCALES[self.component].label
        out["known"] = [{"name": k.name, "description": k.description, "metric": k.metric} for k in self.known]
        return out


@dataclass(frozen=True)
class KnownComponents:
    """What :func:`fingerprint_model` found, per component slot."""

    components: Mapping[str, ComponentPrint] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        """The toolkit's ``UNET/VAE/CLIP`` string, ``----`` for a part that is absent."""
        clip = self.components.get("clip_l") or self.components.get("clip_h")
        return "/".join(_digits(p) for p in (self.components.get("unet"), self.components.get("vae"), clip))

    def findings(self) -> list[Finding]:
        """One ``component.known`` info finding per component that matches a known one."""
        out = []
        for p in self.components.values():
            for k in p.known:
                out.append(Finding(
                    "component.known", Severity.INFO,
                    f"{METRIC_SCALES[p.component].label} is {k.description} ({k.name}; model-toolkit metric {p.metric})",
                ))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "components": {k: v.to_dict() for k, v in self.components.items()}}


def _digits(p: ComponentPrint | None) -> str:
    if p is None:
        return "----"
    return "????" if p.metric is None else f"{p.metric:04d}"


def component_tensors(model: Mapping[str, TensorInfo], ident: Identification) -> dict[str, dict[str, TensorInfo]]:
    """Each present component's tensors by component-relative key (prefix and NAI layout undone).

    Example:
        >>> component_tensors(model, ident)["vae"]["encoder.conv_in.weight"].shape
        (128, 3, 3, 3)
    """
    out: dict[str, dict[str, TensorInfo]] = {}
    for slot in ident.slots:
        if not slot.present:
            continue
        tensors: dict[str, TensorInfo] = {}
        for key in slot.keys:
            table_key = slot.table_key(key)
            if table_key is not None:
                tensors[table_key] = model[key]
        out[slot.component] = tensors
    return out


def _canonical(model: ModelFile, info: TensorInfo) -> Iterator[np.ndarray]:
    """A tensor's values in canonical form (floats as fp16, integers as int64), flat, in chunks."""
    values = model.read(info).reshape(-1)
    target = "<f2" if DTYPES[info.dtype].is_float else "<i8"
    for start in range(0, values.size, _CHUNK):
        with np.errstate(over="ignore", invalid="ignore"):  # beyond fp16 is inf, as torch rounds it
            chunk = np.ascontiguousarray(values[start:start + _CHUNK], dtype=target)
        yield chunk


def _header(table_key: str, info: TensorInfo) -> bytes:
    kind = "f16" if DTYPES[info.dtype].is_float else "i64"
    return f"{table_key}\0{kind}\0{','.join(map(str, info.shape))}\n".encode()


def _hashed_keys(tensors: Mapping[str, TensorInfo]) -> list[str]:
    return sorted(k for k in tensors if not k.endswith(_SKIP))


def fingerprint_component(
    model: ModelFile,
    component: str,
    tensors: Mapping[str, TensorInfo],
    *,
    on_tensor: Callable[[TensorInfo], None] | None = None,
) -> ComponentPrint:
    """Fingerprint and metric of one component, reading its tensors once, one at a time.

    Args:
        model: the open file the tensors belong to.
        component: the slot name (``vae``, ``unet``, ``clip_l`` ...); decides the metric.
        tensors: component-relative key -> tensor (see :func:`component_tensors`).
        on_tensor: called after each tensor (progress).

    Returns:
        A :class:`ComponentPrint`.

    Raises:
        ModelReadError: a tensor cannot be read (truncated file).
    """
    hasher = hashlib.sha256()
    total = 0.0
    keys = _hashed_keys(tensors)
    for key in keys:
        info = tensors[key]
        hasher.update(_header(key, info))
        measure = component in METRIC_SCALES and METRIC_SCALES[component].selects(key)
        for chunk in _canonical(model, info):
            hasher.update(chunk)
            if measure:
                if chunk.dtype != np.float16:  # an integer tensor: the toolkit casts it too
                    with np.errstate(over="ignore"):
                        chunk = chunk.astype("<f2")
                total += _chunk_metric(chunk)
        if on_tensor is not None:
            on_tensor(info)
    metric = metric_number(total, component)
    return ComponentPrint(
        component, hasher.hexdigest(), len(keys), metric,
        total if component in METRIC_SCALES else None, known_for(component, metric),
    )


def quick_fingerprint(model: ModelFile, tensors: Mapping[str, TensorInfo], *, samples: int = 16) -> str:
    """A cheap stand-in for the fingerprint: the key/shape structure plus a few small tensors.

    Equal fingerprints imply equal quick fingerprints, so comparing these first avoids reading
    components that cannot be duplicates.
    """
    hasher = hashlib.sha256()
    keys = _hashed_keys(tensors)
    for key in keys:
        hasher.update(_header(key, tensors[key]))
    small = [k for k in keys if tensors[k].numel <= _QUICK_MAX_NUMEL]
    step = max(1, len(small) // samples) if small else 1
    for key in small[::step][:samples]:
        hasher.update(key.encode())
        for chunk in _canonical(model, tensors[key]):
            hasher.update(chunk)
    return hasher.hexdigest()


def fingerprint_model(
    model: ModelFile,
    ident: Identification | None = None,
    *,
    components: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> KnownComponents:
    """Fingerprint every component of an open model (reads each component's tensors once).

    Args:
        model: an open :class:`~lib_modeldoc.io.model.ModelFile`.
        ident: its identification, computed from the header when omitted.
        components: restrict to these slot names (default: every present component).
        progress: ``progress(done_bytes, total_bytes, message)``.

    Returns:
        :class:`KnownComponents` (empty when the architecture has no components, e.g. a LoRA).

    Example:
        >>> with open_model("animevae.pt") as model:
        ...     print(fingerprint_model(model).metric)
        ----/2982/----
    """
    ident = ident if ident is not None else identify_model(model)
    parts = component_tensors(model, ident)
    if components is not None:
        wanted = set(components)
        parts = {k: v for k, v in parts.items() if k in wanted}
    total = sum(tensors[k].nbytes for tensors in parts.values() for k in _hashed_keys(tensors))
    done = 0
    prints: dict[str, ComponentPrint] = {}
    for name, tensors in parts.items():
        def step(info: TensorInfo, name: str = name) -> None:
            nonlocal done
            done += info.nbytes
            if progress is not None:
                progress(done, total, f"fingerprinting {name}")
        prints[name] = fingerprint_component(model, name, tensors, on_tensor=step)
    return KnownComponents(prints)
