"""``inspect``: read a model's header, identify it, run the checks, return a :class:`Report`."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from ..arch.identify import Identification, identify_model
from ..arch.layout import EMA, layout_of
from ..dtypes import DTYPES
from ..io.model import ModelFile, open_model
from ..operations.convert import ConvertOptions, plan_convert
from ..progress import Progress
from ..report.data import (
    AdapterFit, ComponentSummary, Finding, Report, Severity, TensorCount, TensorGroup, TensorGroups, decode_metadata,
)
from ..report.messages import Language, Phrase, text
from . import CheckContext, run_checks

if TYPE_CHECKING:
    from ..analysis.vae_test import VaeTestOptions

__all__ = ["inspect_model", "inspect_open_model", "pruned_size", "fit_adapter"]


def inspect_model(path: str | os.PathLike[str], *, scan: bool = False, identify_components: bool = False,
                  vae_test: VaeTestOptions | None = None, progress: Progress | None = None) -> Report:
    """Inspect one model file: what it is, what is wrong, what pruning would save.

    Reads the header and the few tensors the checks need (CLIP position_ids); never the whole
    file, never code from it.

    Args:
        path: any supported model file.
        scan: also read every float tensor once (:func:`~lib_modeldoc.analysis.scan.scan_model`) and add
            ``values.*`` findings and the report's ``scan`` section.
        identify_components: also read every component once to compute its fingerprint and
            the model-toolkit metric (:mod:`~lib_modeldoc.analysis.fingerprint`): the report's
            ``known_components`` section and ``component.known`` findings.
        vae_test: also run the file's VAE on the built-in test image
            (:func:`~lib_modeldoc.analysis.vae_test.run_vae_test`, needs torch): the report's ``vae_test``
            section and ``vae.*`` findings.
        progress: ``progress(done_bytes, total_bytes, message)`` of the scan, the fingerprints
            and the VAE test (each counts from 0); raising :class:`~lib_modeldoc.errors.Cancelled`
            stops them.

    Returns:
        A :class:`~lib_modeldoc.report.data.Report`.

    Raises:
        ModelReadError: the file cannot be read as a model (one-line message).

    Example:
        >>> report = inspect_model("merge.safetensors")
        >>> [f.id for f in report.findings]
        ['clip.position_ids.offset', 'junk']
    """
    with open_model(path) as model:
        return inspect_open_model(model, scan=scan, identify_components=identify_components, vae_test=vae_test,
                                  progress=progress)


def inspect_open_model(model: ModelFile, *, scan: bool = False, identify_components: bool = False,
                       vae_test: VaeTestOptions | None = None, progress: Progress | None = None) -> Report:
    """:func:`inspect_model` for a file already opened with :func:`~lib_modeldoc.open_model`."""
    ident = identify_model(model)
    layout = layout_of(list(model), ident)
    ctx = CheckContext(model, ident, layout)
    findings = run_checks(ctx)
    # The opt-in readers are imported only when asked for: plain inspect stays quick to start.
    if scan:
        from ..analysis.scan import scan_model
    if identify_components:
        from ..analysis.fingerprint import fingerprint_model
    scanned = scan_model(model, layout, progress=progress) if scan else None
    if scanned is not None:
        findings += scanned.findings()
    known = fingerprint_model(model, ident, progress=progress) if identify_components else None  # reads whole components
    if known is not None:
        findings += known.findings()
    tested = None
    if vae_test is not None:
        from ..analysis.vae_test import run_vae_test

        tested = run_vae_test(model, size=vae_test.size, vae_dir=vae_test.vae_dir, fp16=vae_test.fp16,
                              device=vae_test.device, progress=progress)
        findings += tested.findings()
    junk_bytes = ctx.nbytes(ctx.junk_keys) + ctx.stray_bytes
    dtypes: Counter[str] = Counter()
    for info in model.values():
        dtypes[DTYPES[info.dtype].label] += info.nbytes
    return Report(
        path=model.path,
        format=model.format,
        size_bytes=model.size,
        architecture=ident.architecture,
        label=ident.label,
        components=_components(model, ident),
        junk=TensorGroups(
            len(ctx.junk_keys) + len(model.stray_tensors), junk_bytes,
            tuple(TensorGroup(g, n, b, ctx.junk_group_names.get(g, "junk")) for g, n, b in ctx.junk_groups),
        ),
        adapter=ctx.adapter,
        unknown=TensorGroups(len(ctx.unknown_keys), ctx.nbytes(ctx.unknown_keys),
                             tuple(TensorGroup(g, n, b) for g, n, b in ctx.unknown_groups)),
        ema=TensorCount(len(ctx.ema_keys), ctx.nbytes(ctx.ema_keys)),
        clip_position_ids=tuple(ctx.position_ids),
        pruned_size_bytes=pruned_size(model, ident),
        metadata=decode_metadata(model.metadata),
        findings=tuple(findings),
        evidence=tuple(ident.evidence),
        candidates=tuple(ident.candidates),
        dtypes=dict(dtypes.most_common()),
        tensors=len(model),
        extras=model.extras,
        container=model.container,
        scan=scanned,
        known_components=known,
        vae_test=tested,
    )


def fit_adapter(report: Report, checkpoint: str | os.PathLike[str]) -> Report:
    """Say whether the LoRA / embedding of ``report`` fits ``checkpoint`` (its header is read).

    Returns ``report`` with the ``adapter.fit`` finding and :attr:`~lib_modeldoc.report.data.Report.fit`
    added; a report of anything else is returned unchanged. Raises ModelReadError when the
    checkpoint cannot be read.
    """
    from ..arch.networks import checkpoint_base, fit_reason
    from .context import CheckContext as _Context

    if report.adapter is None:
        return report
    with open_model(checkpoint) as target:
        ident = identify_model(target)
        base = checkpoint_base(ident.architecture, ident.family.base if ident.family is not None else None)
        encoders = [s.component for s in ident.slots if s.present and s.component.startswith("clip")]
        context = next((info.shape[1] for k, info in target.items()
                        if k.endswith("attn2.to_k.weight") and len(info.shape) == 2), None)
    with open_model(report.path) as model:
        own = identify_model(model)
        summary = _Context(model, own, layout_of(list(model), own)).adapter
        assert summary is not None
        fits, why, facts = fit_reason(summary, ident.architecture, base, encoders, context)
    reason = Phrase(why, facts)
    fit = AdapterFit(str(checkpoint), ident.architecture, base, fits, text(why, Language.EN, **facts))
    severity = Severity.INFO if fits else Severity.WARNING
    finding = Finding.worded("adapter.fit", severity, checkpoint=os.path.basename(str(checkpoint)), reason=reason)
    return replace(report, fit=fit, findings=(*report.findings, finding))


def _signature_components(model: ModelFile, ident: Identification) -> dict[str, ComponentSummary]:
    """Parts of an SD3 / Flux file by key prefix (no table: ``complete`` only says the part is there)."""
    out: dict[str, ComponentSummary] = {}
    prefixed = any(k.startswith(p) for k in model for _, p in ident.parts)
    for name, prefix in ident.parts:
        if not prefixed and name != "transformer":
            continue
        where = prefix if prefixed else ""
        keys = [k for k in model if k.startswith(where)]
        if not keys:
            continue
        dtypes: Counter[str] = Counter()
        for k in keys:
            dtypes[DTYPES[model[k].dtype].label] += model[k].nbytes
        out[name] = ComponentSummary(name, True, True, len(keys), sum(dtypes.values()), "", where, dict(dtypes.most_common()))
    return out


def _components(model: ModelFile, ident: Identification) -> dict[str, ComponentSummary]:
    if ident.family is None and ident.parts:
        return _signature_components(model, ident)
    out: dict[str, ComponentSummary] = {}
    for slot in ident.slots:
        if slot.component == EMA and not slot.present:
            continue
        keys = slot.keys
        dtypes: Counter[str] = Counter()
        for k in keys:
            dtypes[DTYPES[model[k].dtype].label] += model[k].nbytes
        out[slot.component] = ComponentSummary(
            slot.component, slot.present, slot.complete, len(keys), sum(dtypes.values()),
            slot.table if slot.present else "", slot.mount.prefix if slot.present else "",
            dict(dtypes.most_common()),
        )
    return out


def pruned_size(model: ModelFile, ident: Identification) -> int:
    """Size of the ``.safetensors`` a default ``convert`` writes: no junk, no EMA, weights in fp16.

    Computed from the same plan ``convert`` carries out, so the two always agree. Nothing is
    called junk in an unidentified model: there every tensor is counted, in fp16.
    """
    options = ConvertOptions(keep_junk=not ident.prunable)
    return plan_convert(model, options, ident=ident).output_size
