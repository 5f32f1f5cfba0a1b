"""The VAE test: run a model's VAE on the built-in image and tell a black, grey or broken VAE.

One encode -> decode of :func:`~lib_modeldoc.vae_image.vae_test_image` in float32 with a hook on
every layer records each layer's peak ``|activation|``:

* **half precision:** the first layer whose peak exceeds fp16's largest finite value (65504) is
  where an fp16 run turns to Inf and then NaN (black images); the same against bf16's largest.
  A second pass confirms it (NaN/Inf in its output, and the first layer whose output is not
  finite): in fp16 on an accelerator; on the CPU, whose fp16 convolution is ~100x slower than
  fp32, in fp32 with the weights and every layer's output rounded to fp16.
* **reconstruction:** PSNR, per-channel colour shift and contrast of the decoded image against
  the original. Only what is physical is flagged on its own (NaN, constant or saturated output);
  a low PSNR is flagged relative to the best VAE of the same family in the user's VAE folder.
* **what to use instead:** the VAEs in that folder that share the latent space and pass.

torch is imported only when a test runs (:func:`run_vae_test`); reading which tensors are the VAE
(:func:`locate_vae`) needs none.
"""

from __future__ import annotations

import enum
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IncompatibleComponentError, ModelDocError
from .io.tensor import TensorInfo
from .model import ModelFile, open_model
from .parts import find_part, identify_model
from .progress import Cancel, Progress, Tracker
from .advice import Repair
from .report import Finding, Severity

if TYPE_CHECKING:
    import torch

    from .vae_model import Autoencoder

__all__ = [
    "FP16_MAX", "BF16_MAX", "Fp16Mode", "VaeTestOptions", "VaeTensors", "Fp16Run", "VaeTestResult", "Alternative",
    "locate_vae", "open_autoencoder", "run_vae_test", "vae_test_open_model", "VAE_SUFFIXES",
]

FP16_MAX = 65504.0
BF16_MAX = 3.3895313892515355e38
VAE_SUFFIXES = (".safetensors", ".pt", ".ckpt", ".bin", ".pth")
DEFAULT_SIZE = 256
FAR_BELOW_DB = 3.0  # PSNR this far under the folder's best (an MSE twice as large) is flagged
CONSTANT_STD = 0.01  # decoded image std (0..1 scale) under this is a flat, constant image
SATURATED_SHARE = 0.5  # more than this share of decoded values clipped at black/white is saturated
SAME_LATENT_SPACE = 0.8  # mean per-channel latent correlation of two VAEs sharing a latent space
_FOLDER_LIMIT = 64  # VAE files compared at most
_SCORE_ROWS = 1024  # attention score rows computed at once (bounds the peak-score temporary)
_PREFIXES = ("first_stage_model.", "vae.", "model.first_stage_model.", "ae.", "")


class Fp16Mode(str, enum.Enum):
    """How the confirming half-precision pass runs."""

    AUTO = "auto"  # native on an accelerator; emulated on the CPU (native fp16 conv is ~100x slower there)
    NATIVE = "native"  # the model and image in torch.float16 (where the device's torch has fp16 ops)
    EMULATED = "emulated"  # fp32 arithmetic, weights and every layer's output rounded to fp16
    NONE = "none"  # no confirming pass; the fp32 peaks still predict overflow


class Fp16Run(str, enum.Enum):
    """What the half-precision pass showed."""

    NONFINITE = "nonfinite"  # NaN/Inf in the fp16 output: black images confirmed
    CLEAN = "clean"  # fp16 output finite
    UNSUPPORTED = "unsupported"  # native asked for, the device's torch has no fp16 convolution: unconfirmed
    SKIPPED = "skipped"  # not asked for


@dataclass(frozen=True)
class VaeTestOptions:
    """How ``inspect`` runs the VAE test (see :func:`run_vae_test`)."""

    size: int = DEFAULT_SIZE
    vae_dir: str | None = None
    fp16: Fp16Mode = Fp16Mode.AUTO
    device: str = "cpu"
    cancel: Cancel | None = None


@dataclass(frozen=True)
class VaeTensors:
    """Where a file keeps its VAE: LDM-named keys to the file's tensors."""

    tensors: dict[str, TensorInfo]  # LDM key (encoder.conv_in.weight) -> tensor in the file
    prefix: str  # first_stage_model., "", vae. ...
    layout: str  # "ldm" or "diffusers"
    source: str  # the file's architecture (SDXL, VAE ...)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.tensors.items()}


@dataclass
class Alternative:
    """A VAE from the user's folder, tested the same way."""

    path: str
    psnr_db: float | None
    latent_match: float | None  # mean per-channel correlation of its latent with the tested VAE's
    fp16_safe: bool
    bf16_safe: bool
    broken: bool

    @property
    def passes(self) -> bool:
        return self.fp16_safe and self.bf16_safe and not self.broken

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "psnr_db": _round(self.psnr_db), "latent_match": _round(self.latent_match, 3),
                "fp16_safe": self.fp16_safe, "bf16_safe": self.bf16_safe, "broken": self.broken,
                "passes": self.passes}


@dataclass
class VaeTestResult:
    """What the VAE test measured on one VAE."""

    path: str
    family: str  # SD (SD1/SD2/SDXL structure) or SD3/Flux
    source: str  # the file's architecture
    layout: str
    image_size: int
    layers: dict[str, float]  # layer -> peak |activation| in fp32, in execution order
    first_overflow_layer: str | None  # first layer over fp16's largest value
    first_bf16_overflow_layer: str | None
    fp16_run: Fp16Run
    fp16_mode: Fp16Mode  # how the fp16 pass ran (NATIVE or EMULATED; NONE when it did not)
    fp16_first_nonfinite_layer: str | None
    psnr_db: float | None  # None when the output is not finite
    colour_shift: tuple[float, ...]  # mean(decoded) - mean(original) per channel, 0..1 scale
    contrast: tuple[float, ...]  # std(decoded) / std(original) per channel
    output_nonfinite: int  # NaN/Inf values in the fp32 decoded image
    output_std: float
    saturated_share: float  # share of decoded values beyond black/white (clipped)
    seconds: float
    device: str
    original: np.ndarray = field(repr=False)  # uint8 HxWx3
    decoded: np.ndarray = field(repr=False)  # uint8 HxWx3 (NaN shown as black)
    latent: np.ndarray | None = field(default=None, repr=False)
    folder: str | None = None
    alternatives: list[Alternative] = field(default_factory=list)

    # Derived ------------------------------------------------------------------------------
    @property
    def peak_abs(self) -> float:
        peaks = list(self.layers.values())
        return math.nan if any(math.isnan(v) for v in peaks) else max(peaks, default=0.0)

    @property
    def peak_layer(self) -> str | None:
        if not self.layers:
            return None
        return max(self.layers, key=lambda k: -1.0 if math.isnan(self.layers[k]) else self.layers[k])

    @property
    def broken_reason(self) -> str | None:
        """Why the decoded image is physically broken, or ``None``."""
        if self.output_nonfinite:
            return f"{self.output_nonfinite} NaN/Inf values in the decoded image even in fp32"
        if self.output_std < CONSTANT_STD:
            return f"the decoded image is constant (std {self.output_std:.4f} on a 0..1 scale): a flat grey or black picture"
        if self.saturated_share > SATURATED_SHARE:
            return f"{100 * self.saturated_share:.0f}% of the decoded values are clipped at black or white (saturated output)"
        return None

    @property
    def best_alternative(self) -> Alternative | None:
        usable = [a for a in self.alternatives if a.passes and a.psnr_db is not None and self._same_space(a)]
        return max(usable, key=lambda a: a.psnr_db or 0.0, default=None)

    def _same_space(self, alt: Alternative) -> bool:
        return alt.latent_match is None or alt.latent_match >= SAME_LATENT_SPACE

    @property
    def below_best_db(self) -> float | None:
        """How far the PSNR is under the best passing VAE of the same latent space in the folder."""
        best = self.best_alternative
        if best is None or best.psnr_db is None or self.psnr_db is None:
            return None
        return best.psnr_db - self.psnr_db

    def findings(self) -> list[Finding]:
        """``vae.*`` findings: only what is physical, or relative to the user's own VAEs."""
        out: list[Finding] = []
        advice = "Black images in fp16: use the fp32 VAE, or bake a VAE that passes"
        instead = self._instead()
        if self.first_overflow_layer or self.fp16_run is Fp16Run.NONFINITE:
            layer = self.first_overflow_layer or self.fp16_first_nonfinite_layer
            if self.first_overflow_layer:
                peak = self.layers[self.first_overflow_layer]
                what = f"layer {layer} reaches |{peak:.4g}| in fp32, over fp16's largest value {FP16_MAX:g}"
            else:
                what = f"the fp16 run turns non-finite at layer {layer} (no fp32 activation exceeds {FP16_MAX:g})"
            run = "an fp16 run" if self.fp16_mode is Fp16Mode.NATIVE else "an fp16-rounded run (every layer's output rounded to fp16)"
            confirm = {
                Fp16Run.NONFINITE: f"; confirmed: {run} gives NaN/Inf",
                Fp16Run.CLEAN: f"; {run} stayed finite on this image (the overflow may still hit other images)",
                Fp16Run.UNSUPPORTED: "; unconfirmed (this device's torch has no fp16 convolution)",
                Fp16Run.SKIPPED: "",
            }[self.fp16_run]
            out.append(Finding("vae.fp16_overflow", Severity.WARNING, f"VAE overflows in fp16: {what}{confirm}. {advice}{instead}",
                               keys=(layer,) if layer else (), repair=Repair.FP32_VAE))
        if self.first_bf16_overflow_layer:
            peak = self.layers[self.first_bf16_overflow_layer]
            out.append(Finding("vae.bf16_overflow", Severity.ERROR,
                               f"VAE overflows even in bf16: layer {self.first_bf16_overflow_layer} reaches |{peak:.4g}|; "
                               f"use another VAE{instead}", keys=(self.first_bf16_overflow_layer,)))
        reason = self.broken_reason
        if reason:
            out.append(Finding("vae.broken_output", Severity.ERROR,
                               f"VAE output is broken: {reason}; use another VAE{instead}"))
        below = self.below_best_db
        if not reason and below is not None and below >= FAR_BELOW_DB:
            best = self.best_alternative
            assert best is not None
            out.append(Finding(
                "vae.reconstruction", Severity.WARNING,
                f"VAE reconstructs the test image {below:.1f} dB worse than {os.path.basename(best.path)} in "
                f"{self.folder} (PSNR {self.psnr_db:.1f} dB against {best.psnr_db:.1f} dB; contrast "
                f"{_fmt_list(self.contrast)}): a washed-out or damaged VAE{instead}"))
        return out

    def _instead(self) -> str:
        passing = [a for a in self.alternatives if a.passes and self._same_space(a)]
        if not passing:
            return ""
        passing.sort(key=lambda a: -(a.psnr_db or 0.0))
        names = ", ".join(os.path.basename(a.path) for a in passing[:3])
        return f" (passing VAEs in {self.folder}: {names})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``vae_test`` field."""
        return {
            "peak_abs": _round(self.peak_abs, None),
            "peak_layer": self.peak_layer,
            "first_overflow_layer": self.first_overflow_layer,
            "first_bf16_overflow_layer": self.first_bf16_overflow_layer,
            "fp16_limit": FP16_MAX,
            "layers_over_fp16": sum(1 for v in self.layers.values() if not v <= FP16_MAX),
            "fp16_run": self.fp16_run.value,
            "fp16_mode": self.fp16_mode.value,
            "fp16_first_nonfinite_layer": self.fp16_first_nonfinite_layer,
            "psnr_db": _round(self.psnr_db),
            "colour_shift": [round(v, 4) for v in self.colour_shift],
            "contrast": [round(v, 4) for v in self.contrast],
            "output": {"nonfinite": self.output_nonfinite, "std": round(self.output_std, 4),
                       "saturated_share": round(self.saturated_share, 4)},
            "broken": self.broken_reason,
            "seconds": round(self.seconds, 3),
            "image_size": self.image_size,
            "device": self.device,
            "family": self.family,
            "source": self.source,
            "layout": self.layout,
            "layers": {k: _round(v, None) for k, v in self.layers.items()},
            "folder": self.folder,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "below_best_db": _round(self.below_best_db),
        }


def _round(value: float | None, digits: int | None = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None if value is None or math.isnan(value) else value  # inf stays visible in JSON as Infinity
    return round(value, digits) if digits is not None else float(f"{value:.6g}")


def _fmt_list(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


# --------------------------------------------------------------------------------------------
# Finding the VAE in a file (no torch)


def locate_vae(model: ModelFile) -> VaeTensors:
    """The VAE tensors of a checkpoint or VAE file, any supported layout, by LDM key.

    Raises:
        IncompatibleComponentError: the file holds no VAE (or an incomplete one).
    """
    from .vae_model import ldm_keys

    ident = identify_model(model)
    part = find_part(model, "vae", ident)
    if part is not None and part.complete:
        prefix = next(iter(part.tensors.values())).key[: -len(next(iter(part.tensors)))]
        return VaeTensors(dict(part.tensors), prefix, "ldm", ident.architecture)
    # Layouts the tables do not describe: diffusers names, the 16-channel SD3/Flux autoencoder (whose
    # shapes differ from the table's, so the table calls it incomplete). The module checks completeness.
    for prefix in _PREFIXES:
        if prefix + "encoder.conv_in.weight" not in model:
            continue
        keys = [k[len(prefix):] for k in model if k.startswith(prefix)
                and re.match(r"^(encoder|decoder|quant_conv|post_quant_conv)\.", k[len(prefix):])]
        names = ldm_keys(keys)
        layout = "diffusers" if any(names[k] != k for k in keys) else "ldm"
        return VaeTensors({names[k]: model[prefix + k] for k in keys}, prefix, layout, ident.architecture)
    raise IncompatibleComponentError(f"{model.path}: no VAE in this file ({ident.architecture})")


# --------------------------------------------------------------------------------------------
# Running it


class _Recorder:
    """Forward hooks: each layer's peak |output|, progress and cancellation per layer."""

    def __init__(self, tracker: Tracker, label: str) -> None:
        self.peaks: dict[str, float] = {}
        self.first_nonfinite: str | None = None
        self._tracker = tracker
        self._label = label

    def hook(self, name: str) -> Callable[..., None]:
        import torch

        def record(_module: Any, _inputs: Any, output: Any) -> None:
            value = output.detach()
            low, high = torch.aminmax(value)
            peak = max(-float(low), float(high))
            if math.isnan(float(low)) or math.isnan(float(high)):
                peak = math.nan
            self.note(name, peak)
            self._tracker.advance(1, f"{self._label}: {name}")

        return record

    def note(self, name: str, peak: float) -> None:
        old = self.peaks.get(name)
        self.peaks[name] = peak if old is None or math.isnan(peak) or peak > old else old
        if self.first_nonfinite is None and not math.isfinite(peak):
            self.first_nonfinite = name


def _hooked_modules(model: Autoencoder) -> Iterator[tuple[str, Any]]:
    """Every layer whose output is worth a peak: convs, norms, and each residual sum."""
    from .vae_model import AttnBlock, ResnetBlock

    for name, module in model.named_modules():
        if not name:
            continue
        if not any(True for _ in module.children()) or isinstance(module, (ResnetBlock, AttnBlock)):
            yield name, module


def _attention_scores_hook(recorder: _Recorder, name: str) -> Callable[..., None]:
    """Pre-hook on an attention block: the peak of its scaled q.k scores (what fp16 attention computes)."""
    import torch
    import torch.nn.functional as F

    def record(module: Any, inputs: tuple[Any, ...]) -> None:
        x = inputs[0]
        b, c, h, w = x.shape
        # Functional calls, not the submodules: their own hooks must see each layer once.
        norm = module.norm
        normed = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
        q = F.conv2d(normed, module.q.weight, module.q.bias).reshape(b, c, h * w).transpose(1, 2)
        k = F.conv2d(normed, module.k.weight, module.k.bias).reshape(b, c, h * w)
        peak = 0.0
        for start in range(0, h * w, _SCORE_ROWS):  # a 4096x4096 score matrix at 512x512 is built in slices
            scores = torch.bmm(q[:, start:start + _SCORE_ROWS], k) / math.sqrt(c)
            low, high = torch.aminmax(scores)
            peak = max(peak, -float(low), float(high)) if math.isfinite(float(low) + float(high)) else math.nan
        recorder.note(name + ".scores", peak)

    return record


def _fp16_supported(device: str) -> bool:
    """Whether torch on ``device`` runs the VAE's fp16 ops (older CPU builds lack fp16 convolution)."""
    import torch
    import torch.nn.functional as F

    try:
        x = torch.ones(1, 32, 4, 4, dtype=torch.float16, device=device)
        y = F.conv2d(x, torch.ones(32, 32, 3, 3, dtype=torch.float16, device=device), padding=1)
        y = F.group_norm(y, 32)
        t = y.reshape(1, 1, 32, 16).transpose(2, 3)
        F.scaled_dot_product_attention(t, t, t)
        F.interpolate(y, scale_factor=2.0, mode="nearest")
        return True
    except (RuntimeError, NotImplementedError):
        return False


def _load_autoencoder(model: ModelFile, located: VaeTensors, tracker: Tracker, device: str) -> Autoencoder:
    import torch

    from .vae_model import Autoencoder

    def load(name: str) -> torch.Tensor:
        info = located.tensors.get(name)
        if info is None:
            raise IncompatibleComponentError(f"{model.path}: the VAE lacks tensor '{name}'")
        array = model.read(info)
        if not np.issubdtype(array.dtype, np.floating):
            raise IncompatibleComponentError(f"{model.path}: VAE tensor '{name}' is not floating point ({info.dtype})")
        return torch.from_numpy(np.array(array, dtype=np.float32))

    auto = Autoencoder.from_tensors(located.shapes, load, lambda name: tracker.advance(1, f"loading {name}"))
    return auto.to(device)


def open_autoencoder(model: ModelFile, device: str = "cpu") -> Autoencoder:
    """The VAE of an open checkpoint or VAE file as a float32 torch module (weights read one by one)."""
    located = locate_vae(model)
    return _load_autoencoder(model, located, Tracker(len(located.tensors)), device)


def _image_tensor(image: np.ndarray, dtype: Any, device: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None] * 2.0 - 1.0)).to(device=device, dtype=dtype)


def _round_output(dtype: Any) -> Callable[..., Any]:
    """A forward hook that stores a layer's output in ``dtype`` (Inf past its range), as a half-precision run does."""
    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        return output.to(dtype).to(output.dtype)

    return hook


def _roundtrip(auto: Autoencoder, image: np.ndarray, recorder: _Recorder, dtype: Any, device: str,
               scores: bool, round_to: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """encode -> decode with every layer hooked; returns (decoded CHW float32 in -1..1, latent).

    With ``round_to`` (a torch dtype), every hooked layer's output is rounded to it before the
    next layer sees it (and before ``recorder`` does).
    """
    import torch

    from .vae_model import AttnBlock

    handles = []
    try:
        for name, module in _hooked_modules(auto):
            if round_to is not None:
                handles.append(module.register_forward_hook(_round_output(round_to)))
            handles.append(module.register_forward_hook(recorder.hook(name)))
            if scores and isinstance(module, AttnBlock):
                handles.append(module.register_forward_pre_hook(_attention_scores_hook(recorder, name)))
        with torch.inference_mode():
            x = _image_tensor(image, dtype, device)
            latent = auto.encode(x if round_to is None else x.to(round_to).to(dtype))
            decoded = auto.decode(latent)
        return decoded[0].float().cpu().numpy(), latent[0].float().cpu().numpy()
    finally:
        for handle in handles:
            handle.remove()


def _first_over(peaks: dict[str, float], limit: float) -> str | None:
    return next((name for name, peak in peaks.items() if not peak <= limit), None)


def _to_uint8(chw: np.ndarray) -> np.ndarray:
    """-1..1 CHW floats to HxWx3 uint8 (NaN as black)."""
    hwc = np.nan_to_num(chw.transpose(1, 2, 0), nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.round((np.clip(hwc, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


@dataclass(frozen=True)
class _Quality:
    psnr_db: float | None
    colour_shift: tuple[float, ...]
    contrast: tuple[float, ...]
    nonfinite: int
    std: float
    saturated_share: float


def _quality(original: np.ndarray, decoded_chw: np.ndarray) -> _Quality:
    """Reconstruction figures of ``decoded`` (-1..1, CHW) against ``original`` (0..1, HWC)."""
    raw = decoded_chw.astype(np.float64)
    nonfinite = int(np.count_nonzero(~np.isfinite(raw)))
    finite = np.nan_to_num(raw, nan=0.0, posinf=1.0, neginf=-1.0)
    saturated = float(np.mean(np.abs(finite) > 1.0))
    out = (np.clip(finite, -1.0, 1.0) + 1.0) / 2.0  # CHW 0..1, clipped as a WebUI saves it
    ref = original.transpose(2, 0, 1).astype(np.float64)
    mse = float(np.mean((out - ref) ** 2))
    psnr = None if nonfinite else (math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
    shift = tuple(float(out[c].mean() - ref[c].mean()) for c in range(ref.shape[0]))
    contrast = tuple(float(out[c].std() / max(ref[c].std(), 1e-9)) for c in range(ref.shape[0]))
    return _Quality(psnr, shift, contrast, nonfinite, float(out.std(axis=(1, 2)).max()), saturated)


def _latent_match(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Mean per-channel correlation of two latents of the same image (1.0: the same latent space)."""
    if a is None or b is None or a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    values = []
    for ca, cb in zip(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)):
        flat_a, flat_b = ca.std() < 1e-9, cb.std() < 1e-9
        if flat_a and flat_b:
            continue  # a channel neither uses says nothing
        values.append(0.0 if flat_a or flat_b else float(np.corrcoef(ca, cb)[0, 1]))
    return float(np.mean(values)) if values else None


def _fp16_mode(asked: Fp16Mode, device: str) -> Fp16Mode:
    if asked is Fp16Mode.AUTO:
        return Fp16Mode.EMULATED if device == "cpu" or not _fp16_supported(device) else Fp16Mode.NATIVE
    return asked


def vae_test_open_model(model: ModelFile, *, size: int = DEFAULT_SIZE, fp16: Fp16Mode = Fp16Mode.AUTO, device: str = "cpu",
                   attention_scores: bool = True, progress: Progress | None = None,
                   cancel: Cancel | None = None) -> VaeTestResult:
    """Run the VAE test on one open model (see :func:`run_vae_test`), without a folder comparison."""
    import torch

    located = locate_vae(model)
    from .vae_model import config_from_shapes

    cfg = config_from_shapes(located.shapes)
    if size % cfg.downscale or size < 2 * cfg.downscale:
        raise ModelDocError(f"VAE test image size must be a multiple of {cfg.downscale} and at least {2 * cfg.downscale} (got {size})")
    from .vae_image import vae_test_image

    image = vae_test_image(size)
    started = time.perf_counter()
    mode = _fp16_mode(Fp16Mode(fp16), device)
    if mode is Fp16Mode.NATIVE and not _fp16_supported(device):
        mode, fp16_state = Fp16Mode.NONE, Fp16Run.UNSUPPORTED
    else:
        fp16_state = Fp16Run.SKIPPED
    layer_count = sum(1 for _ in _hooked_modules(_layer_counter(cfg)))
    passes = 1 if mode is Fp16Mode.NONE else 2
    tracker = Tracker(len(located.tensors) + layer_count * passes, progress, cancel, "VAE test")
    auto = _load_autoencoder(model, located, tracker, device)
    recorder = _Recorder(tracker, "fp32 encode/decode")
    decoded, latent = _roundtrip(auto, image, recorder, torch.float32, device, attention_scores)
    fp16_first = None
    if mode is not Fp16Mode.NONE:
        half = _Recorder(tracker, f"fp16 ({mode.value}) encode/decode")
        if mode is Fp16Mode.NATIVE:
            half_out, _ = _roundtrip(auto.half(), image, half, torch.float16, device, False)
        else:
            with torch.no_grad():
                for param in auto.parameters():
                    param.copy_(param.to(torch.float16).to(torch.float32))
            half_out, _ = _roundtrip(auto, image, half, torch.float32, device, False, round_to=torch.float16)
        nonfinite = not np.isfinite(half_out).all()
        fp16_state = Fp16Run.NONFINITE if nonfinite else Fp16Run.CLEAN
        fp16_first = half.first_nonfinite if nonfinite else None
    del auto
    quality = _quality(image, decoded)
    return VaeTestResult(
        path=model.path, family=cfg.family, source=located.source, layout=located.layout, image_size=size,
        layers=recorder.peaks,
        first_overflow_layer=_first_over(recorder.peaks, FP16_MAX),
        first_bf16_overflow_layer=_first_over(recorder.peaks, BF16_MAX),
        fp16_run=fp16_state, fp16_mode=mode, fp16_first_nonfinite_layer=fp16_first,
        psnr_db=quality.psnr_db, colour_shift=quality.colour_shift, contrast=quality.contrast,
        output_nonfinite=quality.nonfinite, output_std=quality.std, saturated_share=quality.saturated_share,
        seconds=time.perf_counter() - started, device=device,
        original=np.round(image * 255).astype(np.uint8), decoded=_to_uint8(decoded), latent=latent,
    )


def _layer_counter(cfg: Any) -> Autoencoder:
    """A weightless module of the same shape, to count the layers the hooks will see."""
    import torch

    from .vae_model import Autoencoder

    with torch.device("meta"):
        return Autoencoder(cfg)


def vae_files(folder: str) -> list[str]:
    """Model files under ``folder`` (subfolders too, sorted), at most :data:`_FOLDER_LIMIT`."""
    if not os.path.isdir(folder):
        raise ModelDocError(f"{folder}: VAE folder not found")
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, n) for n in sorted(files) if n.lower().endswith(VAE_SUFFIXES)]
        if len(found) >= _FOLDER_LIMIT:
            break
    return found[:_FOLDER_LIMIT]


def run_vae_test(path: str | os.PathLike[str] | ModelFile, *, size: int = DEFAULT_SIZE, vae_dir: str | None = None,
                 fp16: Fp16Mode = Fp16Mode.AUTO, device: str = "cpu", progress: Progress | None = None,
                 cancel: Cancel | None = None) -> VaeTestResult:
    """Test the VAE of a checkpoint or VAE file on the built-in image.

    Args:
        path: a checkpoint (SD1/SD2/SDXL/SD3/Flux with its VAE) or a VAE file (LDM or diffusers
            keys, ``.safetensors`` or a torch pickle), or an open :class:`ModelFile`.
        size: the test image's side in pixels (a multiple of 8; 256 takes seconds on a CPU).
        vae_dir: the user's VAE folder: each VAE in it of the same structure is tested too (fp32
            only), for the relative verdict and "what to use instead".
        fp16: the confirming half-precision pass (:class:`Fp16Mode`): by default native fp16 on
            an accelerator, an fp16-rounded fp32 pass on the CPU (whose fp16 convolution is two
            orders of magnitude slower); ``NONE`` skips it.
        device: a torch device (``cpu``; a WebUI passes its own).
        progress: ``progress(done, total, message)`` in layers and tensors.
        cancel: polled after each layer; ``True`` stops with :class:`~lib_modeldoc.progress.Cancelled`.

    Returns:
        A :class:`VaeTestResult`; ``findings()`` gives the ``vae.*`` findings.

    Raises:
        IncompatibleComponentError: the file holds no VAE this test can run.
        MissingDependencyError: torch is not installed.
    """
    _require_torch()
    if isinstance(path, ModelFile):
        result = vae_test_open_model(path, size=size, fp16=fp16, device=device, progress=progress, cancel=cancel)
    else:
        with open_model(path) as model:
            result = vae_test_open_model(model, size=size, fp16=fp16, device=device, progress=progress, cancel=cancel)
    if vae_dir:
        result.folder = vae_dir
        result.alternatives = compare_folder(result, vae_dir, size=size, device=device, progress=progress, cancel=cancel)
    return result


def compare_folder(result: VaeTestResult, folder: str, *, size: int, device: str = "cpu",
                   progress: Progress | None = None, cancel: Cancel | None = None) -> list[Alternative]:
    """Test every VAE in ``folder`` of the tested VAE's structure (fp32 only), skipping the tested file."""
    from .progress import Cancelled

    own = os.path.realpath(result.path)
    out = []
    files = [f for f in vae_files(folder) if os.path.realpath(f) != own]
    for index, path in enumerate(files):
        def step(done: int, total: int, message: str, _i: int = index) -> None:
            if progress is not None:
                progress(_i * total + done, len(files) * total, f"{os.path.basename(path)}: {message}")
        try:
            with open_model(path) as model:
                other = vae_test_open_model(model, size=size, fp16=Fp16Mode.NONE, device=device, attention_scores=True,
                                       progress=step, cancel=cancel)
        except Cancelled:
            raise
        except ModelDocError:
            continue  # not a VAE this test runs, or unreadable: folders also hold previews and other models
        if other.family != result.family:
            continue
        out.append(Alternative(
            path=path, psnr_db=other.psnr_db, latent_match=_latent_match(result.latent, other.latent),
            fp16_safe=other.first_overflow_layer is None, bf16_safe=other.first_bf16_overflow_layer is None,
            broken=other.broken_reason is not None))
    return out


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        from .errors import MissingDependencyError

        raise MissingDependencyError("the VAE test needs torch (pip install torch)") from exc
