"""What the tab's buttons do, without gradio: inspect, plan, write. The builder wires these up.

Each action returns plain values (HTML strings, dicts); errors a user can cause come back as a
:class:`~lib_modeldoc.errors.ModelDocError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from ..diagnose import inspect_model
from ..errors import ModelDocError, OutputError
from ..model import open_model
from ..report import Report
from . import views
from .host import Choice, Host, JobContext

__all__ = ["Inspection", "inspect_file", "ConvertRequest", "preview_convert", "run_convert", "output_path", "default_output_name"]

EXTENSIONS = {"safetensors": ".safetensors", "ckpt": ".ckpt"}
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")


@dataclass(frozen=True)
class Inspection:
    """The tab's view of one inspected file."""

    report: Report
    verdict: str
    chart: str
    details: str
    metadata: dict[str, Any]


def inspect_file(path: str) -> Inspection:
    """Inspect ``path`` and render it for the tab (raises ``ModelDocError``)."""
    report = inspect_model(path)
    return Inspection(report, views.verdict_html(report), views.chart_html(report), views.details_html(report),
                      report.metadata)


def default_output_name(source: str, fmt: str = "safetensors", suffix: str = "-fixed") -> str:
    """``merge.ckpt`` -> ``merge-fixed.safetensors``."""
    stem = os.path.splitext(os.path.basename(source))[0]
    return f"{stem}{suffix}{EXTENSIONS.get(fmt, '.safetensors')}"


def output_path(folder: str, name: str, fmt: str) -> str:
    """The output file: ``name`` in ``folder``, with the extension the format needs."""
    name = os.path.basename((name or "").strip())
    if not name:
        raise OutputError("no output file name given")
    stem, ext = os.path.splitext(name)
    if ext.lower() in MODEL_SUFFIXES:
        name = stem
    folder = os.path.abspath(os.path.expanduser((folder or "").strip() or "."))
    return os.path.join(folder, name + EXTENSIONS.get(fmt, ".safetensors"))


def label_for(path: str, choices: list[Choice]) -> str | None:
    """The list label of a file, if the list holds it."""
    real = os.path.realpath(path)
    return next((c.label for c in choices if os.path.realpath(c.path) == real), None)


@dataclass(frozen=True)
class ConvertRequest:
    """Everything the "Fix / prune / convert" panel sends."""

    source: str
    precision: str = "fp16"
    prune: str = "no-ema"
    fix_clip: bool = True
    keep_junk: bool = False
    unet: str = "convert"
    vae: str = "convert"
    clip: str = "convert"
    bake_vae: str | None = None  # a VAE file
    format: str = "safetensors"
    strip_metadata: bool = False
    folder: str = ""
    name: str = ""
    overwrite: bool = False
    verify: bool = True

    @property
    def output(self) -> str:
        return output_path(self.folder or os.path.dirname(self.source), self.name or default_output_name(self.source, self.format), self.format)

    def options(self) -> Any:
        from ..convert import ConvertOptions

        return ConvertOptions(
            precision=self.precision, prune=self.prune, keep_junk=self.keep_junk, fix_clip=self.fix_clip,
            parts={"unet": self.unet, "vae": self.vae, "clip": self.clip, "other": "convert"},
            bake_vae=self.bake_vae or None, format=self.format, strip_metadata=self.strip_metadata,
        )


def _plan(stack: ExitStack, request: ConvertRequest) -> Any:
    from ..convert import plan_convert

    source = stack.enter_context(open_model(request.source))
    vae = stack.enter_context(open_model(request.bake_vae)) if request.bake_vae else None
    return plan_convert(source, request.options(), bake_vae=vae)


def preview_convert(request: ConvertRequest) -> str:
    """The plan as HTML: sizes before and after, every change, where it goes."""
    with ExitStack() as stack:
        plan = _plan(stack, request)
        output = request.output
        return views.plan_html(plan.to_dict(), output, exists=os.path.exists(output) and not request.overwrite,
                               description=plan.describe())


def run_convert(request: ConvertRequest, job: JobContext) -> dict[str, Any]:
    """Write the converted file; returns :meth:`WriteResult.to_dict`. ``Cancelled`` if stopped."""
    from ..writer import write_plan

    with ExitStack() as stack:
        plan = _plan(stack, request)
        output = request.output
        os.makedirs(os.path.dirname(output), exist_ok=True)
        result = write_plan(plan, output, overwrite=request.overwrite, verify=request.verify,
                            progress=job.progress, cancel=job.cancelled)
        return result.to_dict()


def guard(action: Callable[[], Any]) -> tuple[Any, str | None]:
    """Run ``action``; a ``ModelDocError`` becomes ``(None, one-line HTML message)``."""
    try:
        return action(), None
    except ModelDocError as exc:
        return None, views.message_html(str(exc), "error")


def loaded_or_picked(host: Host, value: str | None) -> str | None:
    """The file the user means: what they picked or typed, else the loaded model's file."""
    path = host.resolve(value) if (value or "").strip() else None
    return path or host.loaded_checkpoint()
