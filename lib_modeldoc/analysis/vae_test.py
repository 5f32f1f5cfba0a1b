"""The VAE test: run a model's VAE on the built-in image and tell a black, grey or broken VAE.

One encode -> decode of :func:`~lib_modeldoc.analysis.vae_image.vae_test_image` in float32 with a hook on
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

import itertools
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arch.parts import find_part, identify_model
from ..errors import Cancelled, IncompatibleComponentError, ModelDocError
from ..io.folders import model_files
from ..io.model import ModelFile, open_model
from ..io.tensor import TensorInfo
from ..progress import Progress, Tracker
from .vae_result import (
    BF16_MAX, FP16_MAX, Alternative, Fp16Mode, Fp16Run, VaeTestResult, latent_match, measure_quality, to_uint8,
)

if TYPE_CHECKING:
    import torch

    from .vae_model import Autoencoder

__all__ = [
    "FP16_MAX", "BF16_MAX", "Fp16Mode", "VaeTestOptions", "VaeTensors", "Fp16Run", "VaeTestResult", "Alternative",
    "locate_vae", "open_autoencoder", "run_vae_test", "vae_test_open_model",
]

DEFAULT_SIZE = 256
_FOLDER_LIMIT = 64  # VAE files compared at most
_SCORE_ROWS = 1024  # attention score rows computed at once (bounds the peak-score temporary)
_PREFIXES = ("first_stage_model.", "vae.", "model.first_stage_model.", "ae.", "")


@dataclass(frozen=True)
class VaeTestOptions:
    """How ``inspect`` runs the VAE test (see :func:`run_vae_test`)."""

    size: int = DEFAULT_SIZE
    vae_dir: str | None = None
    fp16: Fp16Mode = Fp16Mode.AUTO
    device: str = "cpu"


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


def _fp16_mode(asked: Fp16Mode, device: str) -> Fp16Mode:
    if asked is Fp16Mode.AUTO:
        return Fp16Mode.EMULATED if device == "cpu" or not _fp16_supported(device) else Fp16Mode.NATIVE
    return asked


def vae_test_open_model(model: ModelFile, *, size: int = DEFAULT_SIZE, fp16: Fp16Mode = Fp16Mode.AUTO, device: str = "cpu",
                   attention_scores: bool = True, progress: Progress | None = None) -> VaeTestResult:
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
    tracker = Tracker(len(located.tensors) + layer_count * passes, progress, "VAE test")
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
    quality = measure_quality(image, decoded)
    return VaeTestResult(
        path=model.path, family=cfg.family, source=located.source, layout=located.layout, image_size=size,
        layers=recorder.peaks,
        first_overflow_layer=_first_over(recorder.peaks, FP16_MAX),
        first_bf16_overflow_layer=_first_over(recorder.peaks, BF16_MAX),
        fp16_run=fp16_state, fp16_mode=mode, fp16_first_nonfinite_layer=fp16_first,
        psnr_db=quality.psnr_db, colour_shift=quality.colour_shift, contrast=quality.contrast,
        output_nonfinite=quality.nonfinite, output_std=quality.std, saturated_share=quality.saturated_share,
        seconds=time.perf_counter() - started, device=device,
        original=np.round(image * 255).astype(np.uint8), decoded=to_uint8(decoded), latent=latent,
    )


def _layer_counter(cfg: Any) -> Autoencoder:
    """A weightless module of the same shape, to count the layers the hooks will see."""
    import torch

    from .vae_model import Autoencoder

    with torch.device("meta"):
        return Autoencoder(cfg)


def vae_files(folder: str) -> list[str]:
    """Regular files named as models under ``folder`` (subfolders too, links followed once, hidden
    names skipped, sorted), at most :data:`_FOLDER_LIMIT`."""
    if not os.path.isdir(folder):
        raise ModelDocError(f"{folder}: VAE folder not found")
    return [path for path, _ in itertools.islice(model_files(folder), _FOLDER_LIMIT)]


def run_vae_test(path: str | os.PathLike[str] | ModelFile, *, size: int = DEFAULT_SIZE, vae_dir: str | None = None,
                 fp16: Fp16Mode = Fp16Mode.AUTO, device: str = "cpu",
                 progress: Progress | None = None) -> VaeTestResult:
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
        progress: ``progress(done, total, message)`` in layers and tensors, called after each
            layer; raising :class:`~lib_modeldoc.errors.Cancelled` stops the test.

    Returns:
        A :class:`VaeTestResult`; ``findings()`` gives the ``vae.*`` findings.

    Raises:
        IncompatibleComponentError: the file holds no VAE this test can run.
        MissingDependencyError: torch is not installed.
        Cancelled: ``progress`` raised it.
    """
    _require_torch()
    if isinstance(path, ModelFile):
        result = vae_test_open_model(path, size=size, fp16=fp16, device=device, progress=progress)
    else:
        with open_model(path) as model:
            result = vae_test_open_model(model, size=size, fp16=fp16, device=device, progress=progress)
    if vae_dir:
        result.folder = vae_dir
        result.alternatives = compare_folder(result, vae_dir, size=size, device=device, progress=progress)
    return result


def compare_folder(result: VaeTestResult, folder: str, *, size: int, device: str = "cpu",
                   progress: Progress | None = None) -> list[Alternative]:
    """Test every VAE in ``folder`` of the tested VAE's structure (fp32 only), skipping the tested file."""
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
                                       progress=step)
        except Cancelled:
            raise
        except ModelDocError:
            continue  # not a VAE this test runs, or unreadable: folders also hold previews and other models
        if other.family != result.family:
            continue
        out.append(Alternative(
            path=path, psnr_db=other.psnr_db, latent_match=latent_match(result.latent, other.latent),
            fp16_safe=other.first_overflow_layer is None, bf16_safe=other.first_bf16_overflow_layer is None,
            broken=other.broken_reason is not None))
    return out


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("the VAE test needs torch (pip install torch)") from exc
