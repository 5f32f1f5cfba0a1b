"""Reports as text for people: the verdict first, then the details."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ..analysis.vae_result import Fp16Mode, Fp16Run, reported
from ..arch.families import CHECKPOINT_ARCHITECTURES
from ..commands.wording import repair_text
from ..shell import Shell, join, shells_for
from .advice import count
from .data import Finding, Health, Report, Severity, verdict
from .messages import Counted, Language, Phrase, text
from .units import human_bytes

if TYPE_CHECKING:
    from ..analysis.fingerprint import KnownComponents
    from ..analysis.vae_result import VaeTestResult

__all__ = ["render_report", "verdict_lines", "suggested_args", "suggested_command", "pruning_saving", "short_text", "CHECKPOINTS"]

_MARK = {Severity.ERROR: "x", Severity.WARNING: "!", Severity.INFO: "i"}
_VERDICT = {Health.DAMAGED: "verdict.damaged", Health.PROBLEMS: "verdict.works"}
CHECKPOINTS = CHECKPOINT_ARCHITECTURES
"""Architectures that are whole checkpoints: the only ones ``convert`` prunes and repairs."""


def pruning_saving(report: Report) -> int:
    """Bytes a default ``convert`` saves, when that is worth saying (a checkpoint, over 1 %); else 0."""
    saving = report.size_bytes - report.pruned_size_bytes
    return saving if report.architecture in CHECKPOINTS and saving > 0.01 * report.size_bytes else 0


def suggested_args(report: Report) -> list[str] | None:
    """The CLI arguments of the one ``convert`` that repairs and prunes this model, if it needs one."""
    if report.architecture not in CHECKPOINTS:
        return None
    saving = report.size_bytes - report.pruned_size_bytes
    repairable = {f.id for f in report.findings} & {
        "clip.position_ids.offset", "clip.position_ids.float", "clip.nai_layout", "junk", "precision.fp64",
    }
    if not repairable and saving < 0.05 * report.size_bytes and report.format == "safetensors":
        return None
    stem = os.path.splitext(report.path)[0]
    out = f"{stem}-fixed.safetensors"
    parts = ["convert", report.path, "-o", out]
    if report.has("clip.position_ids.offset") or report.has("clip.position_ids.float"):
        parts.append("--fix-clip")
    return parts


def suggested_command(report: Report, shell: Shell | None = None) -> str | None:
    """:func:`suggested_args` as ``python -m lib_modeldoc ...``, quoted for ``shell`` (default:
    this OS's usual one, the Command Prompt on Windows)."""
    args = suggested_args(report)
    if args is None:
        return None
    return join(["python", "-m", "lib_modeldoc", *args], shell or shells_for()[0])


def finding_text(finding: Finding, language: Language | str = Language.EN) -> str:
    """A finding's message and, when something fixes it, what does, in command-line terms."""
    fix = repair_text(finding.repair, language)
    message = finding.message_in(language)
    return text("report.finding_fix", language, message=message, fix=fix) if fix else message


def verdict_lines(report: Report, language: Language | str = Language.EN) -> list[str]:
    """The short verdict: what it is, what is wrong, what pruning saves, what to do (in ``language``;
    the catalogue's English by default)."""
    kind = report.label if report.architecture == "unknown" else f"{report.label} ({report.architecture})"
    lines = [text("verdict.summary", language, kind=kind, format=report.format, size=human_bytes(report.size_bytes),
                  tensors=Counted("tensor", report.tensors))]
    judged = verdict(report)
    if judged.health is Health.HEALTHY:
        lines.append(text("verdict.healthy", language))
    else:
        lines.append(text(_VERDICT[judged.health], language, errors=Counted("error", judged.errors),
                          warnings=Counted("warning", judged.warnings)))
        lines += [f"  {_MARK[f.severity]} {finding_text(f, language)}" for f in judged.problems]
    saving = pruning_saving(report)
    if saving:
        lines.append(text("verdict.pruning", language, saving=human_bytes(saving), size=human_bytes(report.size_bytes),
                          pruned=human_bytes(report.pruned_size_bytes)))
    command = suggested_command(report)
    if command:
        lines.append(text("verdict.to_fix", language, command=command))
    if report.has("component.missing") or report.has("component.incomplete"):
        lines.append(text("verdict.to_complete", language))
    return lines


def _is_network(adapter: object) -> bool:
    """Whether an adapter summary is a LoRA's (arch.networks, imported only for a file with an adapter)."""
    from ..arch.networks import NetworkSummary

    return isinstance(adapter, NetworkSummary)


def render_report(report: Report, *, details: bool = True, language: Language | str = Language.EN) -> str:
    """The full text report of ``inspect``: the verdict and the findings in ``language``, the
    details' tables in English."""
    lines = [report.path]
    lines += ["  " + line for line in verdict_lines(report, language)]
    if not details:
        return "\n".join(lines)
    if report.components:
        lines.append("Components:")
        for c in report.components.values():
            dtypes = ", ".join(c.dtypes) if c.dtypes else "-"
            lines.append(f"  {c.name:<9} {c.state:<10} {c.keys:>5} tensors {human_bytes(c.bytes):>10}  {dtypes}")
    if report.junk.keys:
        lines.append(f"  {'junk':<9} {'':<10} {report.junk.keys:>5} tensors {human_bytes(report.junk.bytes):>10}")
    if report.unknown.keys:
        lines.append(f"  {'unknown':<9} {'kept':<10} {report.unknown.keys:>5} tensors "
                     f"{human_bytes(report.unknown.bytes):>10}")
    if report.adapter is not None and _is_network(report.adapter):
        lines.append(f"Network blocks ({report.adapter.network} for {report.adapter.base}):")
        for block in report.adapter.blocks:
            ranks = ",".join(str(r) for r in sorted(block.ranks)) or "-"
            alphas = ",".join(f"{a:g}" for a in sorted(block.alphas)) or "-"
            modules = count(block.modules, "module")
            lines.append(f"  {block.name:<28} {modules:>12}  rank {ranks:<8} alpha {alphas}")
    infos = [f for f in report.findings if f.severity is Severity.INFO]
    if infos:
        lines.append(text("report.notes", language))
        lines += [f"  i {finding_text(f, language)}" for f in infos]
    if report.dtypes:
        lines.append("Storage: " + ", ".join(f"{k} {human_bytes(v)}" for k, v in report.dtypes.items()))
    if report.scan is not None:
        lines.append(f"Values scanned: {len(report.scan.tensors)} float tensors, {human_bytes(report.scan.bytes_read)} "
                     f"in {round(report.scan.seconds, 3):.1f} s")
    if report.known_components is not None:
        lines += _known_lines(report.known_components)
    if report.vae_test is not None:
        lines += vae_test_lines(report.vae_test)
    if report.extras:
        lines.append("Other entries: " + ", ".join(f"{k}={short_text(v)}" for k, v in list(report.extras.items())[:8]))
    if report.metadata:
        lines.append("Metadata:")
        for key, value in report.metadata.items():
            lines.append(f"  {key}: {short_text(value, 200)}")
    lines.append("Identified by: " + "; ".join(report.evidence[:4]))
    return "\n".join(lines)


def vae_test_lines(test: VaeTestResult, language: Language | str = Language.EN) -> list[str]:
    """``inspect --vae-test``: half-precision safety, reconstruction, alternatives (the JSON's figures),
    worded in ``language`` (the tab's; the command line's text is English)."""
    def t(message_id: str, **params: Any) -> str:
        return text(message_id, language, **params)

    lines = [t("vae.title", family=test.family, size=test.image_size, seconds=f"{round(test.seconds, 3):.1f}",
               device=test.device)]
    peak = reported(test.peak_abs, None)
    peak_text = "NaN" if peak is None else f"{peak:.4g}"
    over = test.first_overflow_layer
    run = Phrase("vae.run.native" if test.fp16_mode is Fp16Mode.NATIVE else "vae.run.rounded")
    fp16 = {Fp16Run.NONFINITE: t("vae.fp16.nonfinite", run=run), Fp16Run.CLEAN: t("vae.fp16.clean", run=run),
            Fp16Run.UNSUPPORTED: t("vae.fp16.unsupported"), Fp16Run.SKIPPED: t("vae.fp16.skipped")}[test.fp16_run]
    if over:
        lines.append("  " + t("vae.fp16_overflows", layer=over, peak=peak_text, peak_layer=test.peak_layer,
                              layers=test.layers_over_fp16, fp16=fp16))
    else:
        lines.append("  " + t("vae.fp16_safe", peak=peak_text, peak_layer=test.peak_layer, fp16=fp16))
    if test.first_bf16_overflow_layer:
        lines.append("  " + t("vae.bf16_overflows", layer=test.first_bf16_overflow_layer))
    psnr = reported(test.psnr_db)
    shift = "/".join(f"{255 * round(v, 4):+.1f}" for v in test.colour_shift)
    contrast = "/".join(f"{round(v, 4):.2f}" for v in test.contrast)
    lines.append("  " + t("vae.reconstruction", psnr="n/a" if psnr is None else f"{psnr:.2f} dB", shift=shift,
                          contrast=contrast))
    broken = test.broken_phrase
    if broken:
        lines.append("  " + t("vae.broken", reason=broken))
    if test.folder:
        alts = test.alternatives
        lines.append("  " + t("vae.folder", folder=test.folder, n=len(alts)))
        for alt in sorted(alts, key=lambda a: -(reported(a.psnr_db) or 0.0)):
            name = os.path.basename(alt.path)
            state = t("vae.alt.passes") if alt.passes else t("list.comma").join(
                t(w) for w, bad in (("vae.alt.fp16", not alt.fp16_safe), ("vae.alt.bf16", not alt.bf16_safe),
                                    ("vae.alt.broken", alt.broken)) if bad)
            match = reported(alt.latent_match, 3)
            space = "" if match is None else t("vae.alt.match", match=f"{match:.2f}") + (
                t("vae.alt.other_space") if match < 0.8 else "")
            psnr_alt = reported(alt.psnr_db)
            lines.append("    " + t("vae.alt", name=name, psnr="n/a" if psnr_alt is None else f"{psnr_alt:.2f} dB",
                                    space=space, state=state))
    return lines


def short_text(value: Any, limit: int = 60) -> str:
    """``value`` as one line of at most ``limit`` characters (JSON unless it is text), cut with ``...``."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _known_lines(known: KnownComponents) -> list[str]:
    """``inspect --components``: the toolkit metric, then each component's fingerprint and match."""
    lines = [f"Known components (model-toolkit metric UNET/VAE/CLIP {known.metric}):"]
    for name, part in known.components.items():
        match = ", ".join(f"{k.name} ({k.description})" for k in part.known) or "no known match"
        metric = f"metric {part.metric:04d}, " if part.has_metric and part.metric is not None else ""
        lines.append(f"  {name:<9} fingerprint {part.fingerprint[:16]}  {metric}{match}")
    return lines
