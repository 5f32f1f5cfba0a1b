"""What the VAE test measured, and what it means: figures, verdicts, the ``vae_test`` JSON field.

No torch here: :mod:`lib_modeldoc.analysis.vae_test` runs the VAE and fills a :class:`VaeTestResult`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy only where values are computed: rendering a report must not import it
    import numpy as np

from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Language, Phrase, text
from ..strenum import StrEnum

__all__ = [
    "FP16_MAX", "BF16_MAX", "FAR_BELOW_DB", "CONSTANT_STD", "SATURATED_SHARE", "SAME_LATENT_SPACE",
    "Fp16Mode", "Fp16Run", "Alternative", "VaeTestResult", "Quality", "measure_quality", "latent_match", "to_uint8",
    "reported",
]

FP16_MAX = 65504.0
BF16_MAX = 3.3895313892515355e38
FAR_BELOW_DB = 3.0  # PSNR this far under the folder's best (an MSE twice as large) is flagged
CONSTANT_STD = 0.01  # decoded image std (0..1 scale) under this is a flat, constant image
SATURATED_SHARE = 0.5  # more than this share of decoded values clipped at black/white is saturated
SAME_LATENT_SPACE = 0.8  # mean per-channel latent correlation of two VAEs sharing a latent space


class Fp16Mode(StrEnum):
    """How the confirming half-precision pass runs."""

    AUTO = "auto"  # native on an accelerator; emulated on the CPU (native fp16 conv is ~100x slower there)
    NATIVE = "native"  # the model and image in torch.float16 (where the device's torch has fp16 ops)
    EMULATED = "emulated"  # fp32 arithmetic, weights and every layer's output rounded to fp16
    NONE = "none"  # no confirming pass; the fp32 peaks still predict overflow


class Fp16Run(StrEnum):
    """What the half-precision pass showed."""

    NONFINITE = "nonfinite"  # NaN/Inf in the fp16 output: black images confirmed
    CLEAN = "clean"  # fp16 output finite
    UNSUPPORTED = "unsupported"  # native asked for, the device's torch has no fp16 convolution: unconfirmed
    SKIPPED = "skipped"  # not asked for


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
        return {"path": self.path, "psnr_db": reported(self.psnr_db), "latent_match": reported(self.latent_match, 3),
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
    def layers_over_fp16(self) -> int:
        """Layers whose fp32 peak is past fp16's largest value (NaN counts)."""
        return sum(1 for v in self.layers.values() if not v <= FP16_MAX)

    @property
    def peak_layer(self) -> str | None:
        if not self.layers:
            return None
        return max(self.layers, key=lambda k: -1.0 if math.isnan(self.layers[k]) else self.layers[k])

    @property
    def broken_reason(self) -> str | None:
        """Why the decoded image is physically broken, or ``None`` (English; :attr:`broken_phrase` per language)."""
        phrase = self.broken_phrase
        return None if phrase is None else text(phrase.message_id, Language.EN, **phrase.params)

    @property
    def broken_phrase(self) -> Phrase | None:
        """:attr:`broken_reason` as a phrase of the message catalogue (``vae.broken.*``)."""
        if self.output_nonfinite:
            return Phrase("vae.broken.nonfinite", {"n": self.output_nonfinite})
        if self.output_std < CONSTANT_STD:
            return Phrase("vae.broken.constant", {"std": f"{self.output_std:.4f}"})
        if self.saturated_share > SATURATED_SHARE:
            return Phrase("vae.broken.saturated", {"share": f"{100 * self.saturated_share:.0f}"})
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
        instead = self._instead()
        if self.first_overflow_layer or self.fp16_run is Fp16Run.NONFINITE:
            layer = self.first_overflow_layer or self.fp16_first_nonfinite_layer
            if self.first_overflow_layer:
                peak = self.layers[self.first_overflow_layer]
                what = Phrase("vae.what.layer", {"layer": layer, "peak": f"{peak:.4g}", "max": f"{FP16_MAX:g}"})
            else:
                what = Phrase("vae.what.nonfinite", {"layer": layer, "max": f"{FP16_MAX:g}"})
            run = Phrase("vae.run.native" if self.fp16_mode is Fp16Mode.NATIVE else "vae.run.rounded_long")
            confirm: Any = {
                Fp16Run.NONFINITE: Phrase("vae.confirm.nonfinite", {"run": run}),
                Fp16Run.CLEAN: Phrase("vae.confirm.clean", {"run": run}),
                Fp16Run.UNSUPPORTED: Phrase("vae.confirm.unsupported"),
                Fp16Run.SKIPPED: "",
            }[self.fp16_run]
            out.append(Finding.worded("vae.fp16_overflow", Severity.WARNING, keys=(layer,) if layer else (),
                                      repair=Repair.FP32_VAE, what=what, confirm=confirm, instead=instead))
        if self.first_bf16_overflow_layer:
            peak = self.layers[self.first_bf16_overflow_layer]
            out.append(Finding.worded("vae.bf16_overflow", Severity.ERROR, keys=(self.first_bf16_overflow_layer,),
                                      layer=self.first_bf16_overflow_layer, peak=f"{peak:.4g}", instead=instead))
        reason = self.broken_phrase
        if reason:
            out.append(Finding.worded("vae.broken_output", Severity.ERROR, reason=reason, instead=instead))
        below = self.below_best_db
        if not reason and below is not None and below >= FAR_BELOW_DB:
            best = self.best_alternative
            assert best is not None
            out.append(Finding.worded(
                "vae.reconstruction", Severity.WARNING, below=f"{below:.1f}", best=os.path.basename(best.path),
                folder=self.folder, psnr=f"{self.psnr_db:.1f}", best_psnr=f"{best.psnr_db:.1f}",
                contrast=_fmt_list(self.contrast), instead=instead))
        return out

    @property
    def passing(self) -> list[Alternative]:
        """What to use instead: the folder's VAEs that pass and share this VAE's latent space, best first."""
        found = [a for a in self.alternatives if a.passes and self._same_space(a)]
        return sorted(found, key=lambda a: -(a.psnr_db or 0.0))

    def _instead(self) -> Any:
        """`` (passing VAEs in <folder>: a, b)`` as a phrase, or ``""`` when none passes."""
        names = ", ".join(os.path.basename(a.path) for a in self.passing[:3])
        return Phrase("vae.instead", {"folder": self.folder, "names": names}) if names else ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``vae_test`` field."""
        return {
            "peak_abs": reported(self.peak_abs, None),
            "peak_layer": self.peak_layer,
            "first_overflow_layer": self.first_overflow_layer,
            "first_bf16_overflow_layer": self.first_bf16_overflow_layer,
            "fp16_limit": FP16_MAX,
            "layers_over_fp16": self.layers_over_fp16,
            "fp16_run": self.fp16_run.value,
            "fp16_mode": self.fp16_mode.value,
            "fp16_first_nonfinite_layer": self.fp16_first_nonfinite_layer,
            "psnr_db": reported(self.psnr_db),
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
            "layers": {k: reported(v, None) for k, v in self.layers.items()},
            "folder": self.folder,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "below_best_db": reported(self.below_best_db),
            "passing": [a.path for a in self.passing],
        }


def reported(value: float | None, digits: int | None = 2) -> float | None:
    """A figure as reports give it: rounded to ``digits`` decimals (``None``: 6 significant digits);
    NaN as ``None``, ±Inf kept. The text and the tab show the same figures as the JSON."""
    if value is None or not math.isfinite(value):
        return None if value is None or math.isnan(value) else value  # inf stays visible in JSON as Infinity
    return round(value, digits) if digits is not None else float(f"{value:.6g}")


def _fmt_list(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def to_uint8(chw: np.ndarray) -> np.ndarray:
    """-1..1 CHW floats to HxWx3 uint8 (NaN as black)."""
    import numpy as np

    hwc = np.nan_to_num(chw.transpose(1, 2, 0), nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.round((np.clip(hwc, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


@dataclass(frozen=True)
class Quality:
    psnr_db: float | None
    colour_shift: tuple[float, ...]
    contrast: tuple[float, ...]
    nonfinite: int
    std: float
    saturated_share: float


def measure_quality(original: np.ndarray, decoded_chw: np.ndarray) -> Quality:
    """Reconstruction figures of ``decoded`` (-1..1, CHW) against ``original`` (0..1, HWC)."""
    import numpy as np

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
    return Quality(psnr, shift, contrast, nonfinite, float(out.std(axis=(1, 2)).max()), saturated)


def latent_match(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Mean per-channel correlation of two latents of the same image (1.0: the same latent space)."""
    import numpy as np

    if a is None or b is None or a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    values = []
    for ca, cb in zip(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)):
        flat_a, flat_b = ca.std() < 1e-9, cb.std() < 1e-9
        if flat_a and flat_b:
            continue  # a channel neither uses says nothing
        values.append(0.0 if flat_a or flat_b else float(np.corrcoef(ca, cb)[0, 1]))
    return float(np.mean(values)) if values else None
