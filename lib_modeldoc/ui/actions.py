"""What the tab's buttons do, without gradio: inspect, plan, write. The builder wires these up.

Each action returns plain values (HTML strings, dicts); errors a user can cause come back as a
:class:`~lib_modeldoc.errors.ModelDocError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..analysis.hash_cache import HashCache
from ..checks.diagnose import inspect_model
from ..errors import Cancelled, ModelDocError, OutputError
from ..io.atomic import Partial, find_partials
from ..io.model import open_model
from ..io.paths import same_file
from ..io.sniff import MODEL_SUFFIXES
from ..progress import Progress
from ..report.data import Report
from ..report.messages import Language, Phrase
from . import views
from .host import Choice, ClipIds, Host, JobContext
from .wording import say, tab_error

if TYPE_CHECKING:
    from ..analysis.vae_test import VaeTestOptions

__all__ = [
    "Inspection", "inspect_file", "ConvertRequest", "ExportRequest", "ReplaceRequest", "BuildRequest", "preview", "run",
    "output_path", "default_output_name", "job_progress", "hashes", "compare", "host_language",
]

EXTENSIONS = {"safetensors": ".safetensors", "ckpt": ".ckpt"}


@dataclass(frozen=True)
class Inspection:
    """The tab's view of one inspected file."""

    report: Report
    verdict: str
    chart: str
    details: str
    metadata: dict[str, Any]


def inspect_file(path: str, *, scan: bool = False, identify_components: bool = False,
                 progress: Progress | None = None, vae_test: VaeTestOptions | None = None,
                 hash_cache: HashCache | None = None, host: Host | None = None) -> Inspection:
    """Inspect ``path`` and render it for the tab (raises ``ModelDocError``).

    ``scan``, ``identify_components`` and ``vae_test`` read the whole file or its VAE (run them
    as a job, with ``progress``). With ``hash_cache`` (the WebUI's), a SHA-256 the WebUI already
    computed for this file, as it is now, is shown without reading the file. ``host`` words what
    the program does with the findings.
    """
    report = inspect_model(path, scan=scan, identify_components=identify_components, vae_test=vae_test,
                           progress=progress)
    dropped_by = host.name if host is not None and getattr(host, "clip_ids", None) is ClipIds.DROPPED else None
    language = host_language(host)
    details = views.details_html(report, dropped_by=dropped_by, language=language)
    cached = cached_sha256(hash_cache, path)
    if cached:
        details += views.cached_hash_html(cached, language)
    return Inspection(report, views.verdict_html(report, dropped_by=dropped_by, language=language),
                      views.chart_html(report, language), details, report.metadata)


def host_language(host: Host | None) -> Language:
    """The language the tab speaks in ``host``: the WebUI's Localization setting, the standalone
    page's locale (``Host.language``); English for a host that does not say."""
    return Language(getattr(host, "language", None) or Language.EN)


def cached_sha256(hash_cache: HashCache | None, path: str) -> str | None:
    """The SHA-256 the host's cache holds for ``path`` as it is now, or ``None`` (no cache, stale, broken)."""
    if hash_cache is None:
        return None
    try:
        return hash_cache.lookup(path)
    except Exception:  # the host's cache is an optimisation; a broken one must not break Inspect
        return None


def default_output_name(source: str, fmt: str = "safetensors", suffix: str = "-fixed") -> str:
    """``merge.ckpt`` -> ``merge-fixed.safetensors``; a diffusers folder keeps its whole name (``v1.5``)."""
    name = os.path.basename(os.path.normpath(source))
    stem = name if os.path.isdir(source) else os.path.splitext(name)[0]
    return f"{stem}{suffix}{EXTENSIONS.get(fmt, '.safetensors')}"


def output_path(folder: str, name: str, fmt: str) -> str:
    """The output file: ``name`` in ``folder``, with the extension the format needs."""
    name = os.path.basename((name or "").strip())
    if not name:
        raise tab_error(OutputError, "tab.error.no_output_name")
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
    keep_junk: bool = False  # keep the named junk groups
    drop_unknown: bool = False  # drop tensors no table describes (kept by default)
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
        from ..operations.convert import ConvertOptions

        return ConvertOptions(
            precision=self.precision, prune=self.prune, keep_junk=self.keep_junk, drop_unknown=self.drop_unknown,
            fix_clip=self.fix_clip,
            parts={"unet": self.unet, "vae": self.vae, "clip": self.clip, "other": "convert"},
            bake_vae=self.bake_vae or None, format=self.format, strip_metadata=self.strip_metadata,
        )


    def plan(self, stack: ExitStack) -> Any:
        from ..operations.convert import plan_convert

        source = stack.enter_context(open_model(self.source))
        vae = stack.enter_context(open_model(self.bake_vae)) if self.bake_vae else None
        return plan_convert(source, self.options(), bake_vae=vae)


AUTO = "auto"  # precision: what the engine picks (keep for a VAE, fp16 otherwise for export)


def _precision(value: str | None) -> str | None:
    return None if not value or value == AUTO else value


@dataclass(frozen=True)
class ExportRequest:
    """"Components → Export": one part of ``source`` as its own file."""

    source: str
    component: str = "vae"
    precision: str = AUTO
    fix_clip: bool = True
    format: str = "safetensors"
    folder: str = ""
    name: str = ""
    overwrite: bool = False
    verify: bool = True

    @property
    def output(self) -> str:
        name = self.name or default_output_name(self.source, self.format, f"-{self.component}")
        return output_path(self.folder or os.path.dirname(self.source), name, self.format)

    def plan(self, stack: ExitStack) -> Any:
        from ..operations.components import plan_export

        model = stack.enter_context(open_model(self.source))
        return plan_export(model, self.component, precision=_precision(self.precision), fix_clip=self.fix_clip,
                           format=self.format)


@dataclass(frozen=True)
class ReplaceRequest:
    """"Components → Replace": a copy of ``source`` with one part taken from ``part_from``."""

    source: str
    component: str = "vae"
    part_from: str = ""
    precision: str = "keep"
    format: str = "safetensors"
    folder: str = ""
    name: str = ""
    overwrite: bool = False
    verify: bool = True

    @property
    def output(self) -> str:
        name = self.name or default_output_name(self.source, self.format, f"-new-{self.component}")
        return output_path(self.folder or os.path.dirname(self.source), name, self.format)

    def plan(self, stack: ExitStack) -> Any:
        from ..operations.components import plan_replace

        if not self.part_from:
            raise tab_error(ModelDocError, "tab.error.pick_part_file", part=self.component)
        target = stack.enter_context(open_model(self.source))
        source = stack.enter_context(open_model(self.part_from))
        return plan_replace(target, self.component, source, precision=_precision(self.precision), format=self.format)


@dataclass(frozen=True)
class BuildRequest:
    """"Components → Build": a new checkpoint of ``arch`` from part files."""

    arch: str = "SD1"
    parts: tuple[tuple[str, str], ...] = ()  # (unet|vae|clip|clip_g, file)
    precision: str = "keep"
    fix_clip: bool = True
    allow_missing: bool = False
    format: str = "safetensors"
    folder: str = ""
    name: str = ""
    overwrite: bool = False
    verify: bool = True

    @property
    def source(self) -> str:
        return dict(self.parts).get("unet") or (self.parts[0][1] if self.parts else "")

    @property
    def output(self) -> str:
        name = self.name or f"built-{self.arch.lower()}{EXTENSIONS.get(self.format, '.safetensors')}"
        return output_path(self.folder or os.path.dirname(self.source or "."), name, self.format)

    def plan(self, stack: ExitStack) -> Any:
        from ..operations.components import plan_build

        opened: dict[str, Any] = {}
        parts = {}
        for name, path in self.parts:
            if path not in opened:
                opened[path] = stack.enter_context(open_model(path))
            parts[name] = opened[path]
        return plan_build(self.arch, parts, precision=_precision(self.precision), allow_missing=self.allow_missing,
                          fix_clip=self.fix_clip, format=self.format)


JOBS = ("inspect", "hashing", "compare", "writing", "saving")  # the jobs' names: ``tab.job.<name>``


def job_progress(job: JobContext, what: str) -> Progress:
    """A job's progress callback that also stops the reader (``Cancelled``: "``what``: interrupted",
    ``what`` one of :data:`JOBS`) when asked to."""
    def progress(done: int, total: int, message: str) -> None:
        if job.cancelled():
            raise tab_error(Cancelled, "tab.error.interrupted", what=Phrase(f"tab.job.{what}"))
        job.progress(done, total, message)

    return progress


VAE_TEST_SIZE = 256  # the tab's test image side: seconds per VAE on a CPU


def vae_test_options(host: Host) -> VaeTestOptions:
    """The tab's VAE test: the host's VAE folder is the comparison ("what to use instead").
    The job stops it through the inspection's progress (:func:`job_progress`)."""
    from ..analysis.vae_test import VaeTestOptions

    folder = host.folders().vae
    device = getattr(host, "compute_device", None)  # a WebUI runs it on its own device; elsewhere the CPU
    return VaeTestOptions(size=VAE_TEST_SIZE, vae_dir=folder if folder and os.path.isdir(folder) else None,
                          device=device() if callable(device) else "cpu")


def hashes(path: str, job: JobContext, hash_cache: HashCache | None = None,
           language: Language | str = Language.EN) -> str:
    """Every hash of ``path`` (one read), as HTML with the Civitai forms.

    A SHA-256 the WebUI's ``hash_cache`` holds for the file as it is now is taken from there, so
    the read computes one SHA-256 stream (AutoV3) instead of two; one computed here goes into the
    cache, so the WebUI need not read the file again.
    """
    from ..analysis.hashing import hash_file

    result = hash_file(path, progress=job_progress(job, "hashing"), known_sha256=cached_sha256(hash_cache, path))
    if hash_cache is not None and not result.sha256_cached:
        try:
            hash_cache.store(path, result.sha256)
        except Exception:  # an optimisation only: the hashes are shown either way
            pass
    return views.hashes_html(result, language)


def compare(a: str, b: str, job: JobContext, language: Language | str = Language.EN) -> str:
    """How ``a`` and ``b`` differ per component and block, as HTML."""
    from ..analysis.compare import compare_models

    if os.path.realpath(a) == os.path.realpath(b):
        raise tab_error(ModelDocError, "tab.error.pick_different")
    return views.comparison_html(compare_models(a, b, progress=job_progress(job, "compare")), language)


def loaded_conflict(output: str, host: Host | None) -> ModelDocError | None:
    """Why ``output`` may not be written: it is the checkpoint ``host`` has loaded (``None`` if it is not).

    Replacing that file would leave the running model, and the hash the WebUI shows, out of step
    with the file, so it is refused whether or not "Overwrite" is ticked.
    """
    loaded = host.loaded_checkpoint() if host is not None else None
    if not (loaded and os.path.exists(output) and same_file(output, loaded)):
        return None
    return tab_error(OutputError, "tab.plan.loaded", name=os.path.basename(output), program=host.name)


def confined_output(request: Any, host: Host | None) -> str:
    """The request's output file, once the host allows it (the standalone server confines outputs).

    A host may offer ``confine_output(path) -> path`` (raising ``OutputError``); the WebUI's does not.
    """
    output = request.output
    confine = getattr(host, "confine_output", None)
    return confine(output) if confine is not None else output


def leftovers(host: Host) -> list[Partial]:
    """Leftovers of killed writes (stale ``.NAME.*.partial`` files) in the host's output folders."""
    folders = host.folders()
    seen: list[str] = []
    for folder in (folders.checkpoints, folders.vae, folders.lora, folders.components, folders.text_encoders):
        if folder and os.path.isdir(folder) and os.path.realpath(folder) not in seen:
            seen.append(os.path.realpath(folder))
    return [p for folder in seen for p in find_partials(folder) if p.stale]


def preview(request: Any, host: Host | None = None) -> str:
    """A request's plan as HTML: sizes before and after, every change, where it goes. Writes nothing."""
    with ExitStack() as stack:
        output = confined_output(request, host)
        plan = request.plan(stack)
        return views.plan_html(plan.to_dict(), output, exists=os.path.exists(output) and not request.overwrite,
                               description=plan.describe(say=say),
                               saving=isinstance(request, (ConvertRequest, ReplaceRequest)),
                               refused=loaded_conflict(output, host) or "", language=host_language(host))


def run(request: Any, job: JobContext, host: Host | None = None) -> dict[str, Any]:
    """Write a request's output; returns :meth:`WriteResult.to_dict`. ``Cancelled`` if stopped.

    Raises ``OutputError`` when the output is the checkpoint ``host`` has loaded (see :func:`loaded_conflict`).
    The output rule refuses it too (``protected``), whatever the caller checked.
    """
    from ..operations.writer import write_plan

    with ExitStack() as stack:
        output = confined_output(request, host)
        plan = request.plan(stack)
        conflict = loaded_conflict(output, host)
        if conflict:
            raise conflict
        os.makedirs(os.path.dirname(output), exist_ok=True)
        result = write_plan(plan, output, overwrite=request.overwrite, verify=request.verify,
                            progress=job_progress(job, "writing"),
                            protected=(host.loaded_checkpoint(),) if host is not None else ())
        return result.to_dict()




def error_html(exc: Exception, kind: str = "error", language: Language | str = Language.EN) -> str:
    """An error as one line of HTML, its remedies in the tab's terms and ``language``."""
    return views.error_html(exc, kind, language)


def guard(action: Callable[[], Any], language: Language | str = Language.EN) -> tuple[Any, str | None]:
    """Run ``action``; a ``ModelDocError`` becomes ``(None, one-line HTML message)``."""
    try:
        return action(), None
    except ModelDocError as exc:
        return None, error_html(exc, language=language)


def loaded_or_picked(host: Host, value: str | None) -> str | None:
    """The file the user means: what they picked or typed, else the loaded model's file."""
    path = host.resolve(value) if (value or "").strip() else None
    return path or host.loaded_checkpoint()
