"""Reports, plans and results as HTML for the tab. Plain strings: no gradio, no scripts.

Every value that comes from a file (keys, metadata, paths) is escaped.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..report.advice import count
from ..report.data import Finding, Health, Report, Severity, verdict
from ..report.messages import Counted, Language, counted, text
from ..report.render import CHECKPOINTS, pruning_saving, short_text, suggested_args, vae_test_lines
from ..report.units import human_bytes
from ..shell import Shell, module_command, shells_for
from ..report.advice import remedies_of
from .wording import component_text, engine_text, is_worded, repair_text

if TYPE_CHECKING:
    from ..analysis.fingerprint import KnownComponents
    from ..analysis.scan import ScanResult
    from ..analysis.vae_result import VaeTestResult

__all__ = [
    "verdict_html", "chart_html", "details_html", "plan_html", "result_html", "message_html",
    "live_clip_html", "loaded_html", "progress_html", "hashes_html", "comparison_html",
]

_ICON = {Severity.ERROR: "✖", Severity.WARNING: "!", Severity.INFO: "i"}
_STATE = {Health.HEALTHY: "ok", Health.PROBLEMS: "warning", Health.DAMAGED: "error"}  # CSS class, data-verdict
# What the tab offers for each finding (the CLI's option names stay in the command line shown):
# ``tab.reason.<id>`` and ``tab.action.<id>`` in the message catalogue.
_REASONS = ("clip.position_ids.offset", "clip.position_ids.float", "junk", "precision.fp64", "precision.waste")
_COMPONENT_ACTIONS = ("component.missing", "component.incomplete")
_SHELL_LABEL = {Shell.POSIX: "tab.shell.posix", Shell.CMD: "tab.shell.cmd", Shell.POWERSHELL: "tab.shell.powershell"}


def finding_text(finding: Any, *, dropped_by: str | None = None, language: Language | str = Language.EN) -> str:
    """A finding's message and, when something fixes it, what does, in the tab's terms and ``language``.

    ``dropped_by``: the program the tab runs in, when it rebuilds CLIP position_ids itself
    (Forge): shifted ids then do not affect it, only the programs that read them.
    """
    message = finding.message_in(language)
    fix = repair_text(finding.repair, language)
    if dropped_by and finding.id == "clip.position_ids.offset":
        message = text("finding.clip.position_ids.offset_dropped", language, dropped_by=dropped_by, **finding.params)
    return text("report.finding_fix", language, message=message, fix=fix) if fix else message


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def message_html(text: str, kind: str = "info") -> str:
    """A one-line notice (``info``, ``ok``, ``warning``, ``error``)."""
    return f'<div class="modeldoc-msg modeldoc-{e(kind)}">{e(text)}</div>'


def leftovers_html(partials: Iterable[Any], language: Language | str = Language.EN) -> str:
    """A warning naming the leftovers of killed writes (empty when there are none)."""
    found = list(partials)
    if not found:
        return ""
    size = human_bytes(sum(p.size_bytes for p in found))
    names = ", ".join(os.path.basename(p.path) for p in found[:5]) + (", ..." if len(found) > 5 else "")
    line = text("tab.leftovers", language, files=Counted("leftover_file", len(found)), size=e(size),
                names=f"<code>{e(names)}</code>")
    return f'<div class="modeldoc-msg modeldoc-warning">{line}</div>'


def english_html(item: Any, language: Language | str) -> str:
    """``item``'s text, escaped: a tab error worded in ``language``; engine text (English only)
    marked ``lang="en"`` when the page speaks another language."""
    message = e(engine_text(item, language))
    if is_worded(item) or Language(language) is Language.EN:
        return message
    return f'<span lang="en">{message}</span>'


def error_html(error: Any, kind: str = "error", language: Language | str = Language.EN) -> str:
    """An error (or a plan note) as one line: the tab's own errors in ``language``; the engine's
    message in English (marked ``lang="en"``), its remedies in ``language``."""
    return f'<div class="modeldoc-msg modeldoc-{e(kind)}">{note_html(error, language)}</div>'


def progress_html(done: int, total: int, message: str) -> str:
    """A progress bar for hosts without one of their own (the standalone server)."""
    share = 0.0 if total <= 0 else max(0.0, min(1.0, done / total))
    return (
        f'<div class="modeldoc-progress"><div class="modeldoc-progress-bar" style="width:{share * 100:.1f}%"></div>'
        f'<span>{share * 100:.0f}% {e(message)}</span></div>'
    )


def verdict_html(report: Report, *, dropped_by: str | None = None, language: Language | str = Language.EN) -> str:
    """What it is, what is wrong, what to do, space to gain: the first thing the tab shows, in
    ``language`` (the WebUI's). ``dropped_by``: see :func:`finding_text`."""
    judged = verdict(report)
    problems = judged.problems
    state = _STATE[judged.health]
    errors, warnings = Counted("error", judged.errors), Counted("warning", judged.warnings)
    if judged.health is Health.HEALTHY:
        word = text("tab.healthy", language)
    elif judged.health is Health.DAMAGED:
        word = text("tab.damaged", language, errors=errors, warnings=warnings)
    else:
        word = text("tab.works", language, warnings=warnings)
    kind = report.label if report.architecture == "unknown" else f"{report.label} ({report.architecture})"
    summary = text("tab.kind", language, kind=kind, format=report.format, size=human_bytes(report.size_bytes),
                   tensors=Counted("tensor", report.tensors))
    out = [
        f'<div class="modeldoc-verdict modeldoc-{state}" data-verdict="{state}">',
        f'<div class="modeldoc-file" title="{e(report.path)}">{e(os.path.basename(report.path))}</div>',
        f'<div class="modeldoc-kind">{e(summary)}</div>',
        f'<div class="modeldoc-state">{e(word)}</div>',
    ]
    if problems:
        out.append('<ul class="modeldoc-problems">')
        out += [f'<li class="modeldoc-{f.severity.value}"><b>{_ICON[f.severity]}</b> '
                f'{e(finding_text(f, dropped_by=dropped_by, language=language))}</li>' for f in problems]
        out.append("</ul>")
    saving = pruning_saving(report)
    if saving:
        gain = text("tab.gain", language, saving=e(human_bytes(saving)), size=e(human_bytes(report.size_bytes)),
                    pruned=e(human_bytes(report.pruned_size_bytes)))
        out.append(f'<div class="modeldoc-gain">{gain}</div>')
    known = _known_line(report, language)
    if known:
        out.append(f'<div class="modeldoc-known">{known}</div>')
    todo = _todo(report, language)
    if todo:
        out.append(f'<div class="modeldoc-todo">{e(text("tab.todo", language))}<ul>'
                   + "".join(f"<li>{e(t)}</li>" for t in todo) + "</ul></div>")
    out += [f'<div class="modeldoc-cli">{label}: <code>{e(command)}</code></div>'
            for label, command in command_lines(report, language=language)]
    out.append("</div>")
    return "".join(out)


def command_lines(report: Report, *, os_name: str = os.name, python: str | None = None,
                  folder: str | None = None, language: Language | str = Language.EN) -> list[tuple[str, str]]:
    """(label, line) of the repairing ``convert``, for each shell of this OS, pasteable as is.

    The line runs this Python (the WebUI's own) from the folder holding ``lib_modeldoc``, with
    absolute paths: ``cd``/``pushd``/``Set-Location`` first, then ``python -m lib_modeldoc``.
    """
    args = suggested_args(report)
    if args is None:
        return []
    shells = shells_for(os_name)
    return [(text(_SHELL_LABEL[s], language), module_command(args, s, python=python, folder=folder)) for s in shells]


def _todo(report: Report, language: Language | str = Language.EN) -> list[str]:
    ids = {f.id for f in report.findings if f.severity is not Severity.INFO} | (
        {"precision.waste"} if report.has("precision.waste") else set())
    todo: list[str] = []
    convert = [text(f"tab.reason.{i}", language) for i in _REASONS if i in ids]
    if report.format == "ckpt" and report.architecture in CHECKPOINTS:
        convert.append(text("tab.reason.pickle", language))
    if convert:
        reasons = text("list.semicolon", language).join(dict.fromkeys(convert))
        todo.append(text("tab.todo.convert", language, reasons=reasons))
    todo += [text(f"tab.action.{i}", language) for i in _COMPONENT_ACTIONS if i in ids]
    return todo


def _known_line(report: Report, language: Language | str = Language.EN) -> str:
    """``Known components: 0000/2982/0000 (UNET/VAE/CLIP) · uses the NAI (NovelAI) VAE``."""
    known = report.known_components
    if known is None:
        return ""
    uses = [text("tab.uses", language, description=k.description) for p in known.components.values() for k in p.known]
    return text("tab.known", language, metric=e(known.metric)) + "".join(f" · {e(u)}" for u in uses)


def chart_html(report: Report, language: Language | str = Language.EN) -> str:
    """A bar per file: what each component weighs, and the size after pruning."""
    total = max(report.size_bytes, 1)
    parts: list[tuple[str, str, int]] = []
    for name, comp in report.components.items():
        if comp.present and comp.bytes:
            parts.append((name, component_text(name, language), comp.bytes))
    if report.junk.bytes:
        parts.append(("junk", text("tab.chart.junk", language), report.junk.bytes))
    counted = sum(size for _, _, size in parts)
    rest = report.size_bytes - counted
    if rest > 0.005 * total:
        parts.append(("other", text("tab.chart.other", language), rest))
    out = ['<div class="modeldoc-chart">', _bar("file", text("tab.chart.now", language), parts, total)]
    if report.architecture in CHECKPOINTS and report.pruned_size_bytes < report.size_bytes:
        pruned = [("pruned", text("tab.chart.pruned", language), report.pruned_size_bytes)]
        out.append(_bar("pruned", text("tab.chart.after", language), pruned, total))
    out.append('<div class="modeldoc-legend">')
    for name, label, size in parts:
        out.append(
            f'<span class="modeldoc-key"><i class="modeldoc-seg-{e(name)}"></i>{e(label)} {e(human_bytes(size))} '
            f'({size / total:.0%})</span>'
        )
    out.append("</div></div>")
    return "".join(out)


def _bar(kind: str, label: str, parts: Iterable[tuple[str, str, int]], total: int) -> str:
    segs = []
    for name, title, size in parts:
        width = max(size / total * 100, 0.4)
        segs.append(
            f'<div class="modeldoc-seg modeldoc-seg-{e(name)}" style="width:{width:.2f}%" '
            f'title="{e(title)}: {e(human_bytes(size))}"></div>'
        )
    size = sum(s for _, _, s in parts)
    return (
        f'<div class="modeldoc-bar-row" data-bar="{e(kind)}"><span class="modeldoc-bar-label">{e(label)}</span>'
        f'<div class="modeldoc-bar">{"".join(segs)}</div><span class="modeldoc-bar-size">{e(human_bytes(size))}</span></div>'
    )


def details_html(report: Report, *, dropped_by: str | None = None, language: Language | str = Language.EN) -> str:
    """Components, every finding, position_ids, junk groups, storage, evidence (headings and findings
    in ``language``; the engine's evidence lines in English)."""
    def t(message_id: str, **params: Any) -> str:
        return text(message_id, language, **params)

    def cols(*names: str) -> list[str]:
        return [t(f"tab.col.{n}") if n not in ("", "id") else n for n in names]

    out = ['<div class="modeldoc-details">']
    if report.components:
        rows = []
        for c in report.components.values():
            dtypes = ", ".join(f"{k} {human_bytes(v)}" for k, v in c.dtypes.items()) or "-"
            rows.append([component_text(c.name, language), t(f"tab.state.{c.state}"), c.keys, human_bytes(c.bytes), dtypes, c.prefix])
        out.append(_table(t("tab.details.components"), cols("part", "state", "tensors", "size", "storage", "prefix"), rows))
    if report.findings:
        rows = [[_ICON[f.severity], f.id, finding_text(f, dropped_by=dropped_by, language=language),
                 human_bytes(f.bytes_affected) if f.bytes_affected else ""] for f in report.findings]
        out.append(_table(t("tab.details.findings"), cols("", "id", "what", "size"), rows))
    for ids in report.clip_position_ids:
        state = (t("tab.details.position_ids_wrong", positions=", ".join(str(i) for i in ids.wrong)) if ids.wrong
                 else t("tab.details.position_ids_correct"))
        out.append(f'<p><b>CLIP position_ids</b> <code>{e(ids.key)}</code>: {e(ids.dtype)}, {e(state)}</p>')
    if report.junk.groups:
        rows = [[g.pattern, g.keys, human_bytes(g.bytes)] for g in report.junk.groups]
        out.append(_table(t("tab.details.junk"), cols("group", "tensors", "size"), rows))
    if report.dtypes:
        out.append(f"<p><b>{e(t('tab.details.storage'))}</b>: "
                   + e(", ".join(f"{k} {human_bytes(v)}" for k, v in report.dtypes.items())) + "</p>")
    if report.extras:
        extras = ", ".join(f"{k}={short_text(v, 80)}" for k, v in list(report.extras.items())[:12])
        out.append(f"<p><b>{e(t('tab.details.other_entries'))}</b>: <code>{e(extras)}</code></p>")
    if report.scan is not None:
        out.append(_scan_section(report.scan, language))
    if report.known_components is not None:
        out.append(_known_section(report.known_components, language))
    if report.vae_test is not None:
        out.append(_vae_section(report.vae_test, report.findings, language))
    if report.evidence:
        out.append(f"<p><b>{e(t('tab.details.identified_by'))}</b></p><ul>"
                   + "".join(f"<li>{english_html(x, language)}</li>" for x in report.evidence[:8]) + "</ul>")
    if report.architecture == "unknown" and report.candidates:
        rows = [[c.name, f"{c.score:.2f}", c.matched, c.missing, c.mismatched] for c in report.candidates[:5]]
        out.append(_table(t("tab.details.closest"), cols("architecture", "score", "matched", "missing", "mismatched"), rows))
    out.append(f'<p class="modeldoc-path">{e(t("tab.details.file"))} <code>{e(report.path)}</code></p></div>')
    return "".join(out)


def _vae_section(test: VaeTestResult, findings: Iterable[Finding], language: Language | str = Language.EN) -> str:
    """The VAE test: its figures (the CLI's lines) and the test image beside its reconstruction."""
    from ..analysis.vae_image import png_bytes, side_by_side

    lines = vae_test_lines(test, language)
    out = f'<div class="modeldoc-vae-test"><p><b>{e(lines[0])}</b></p><ul>'
    out += "".join(f"<li>{e(line.strip())}</li>" for line in lines[1:]) + "</ul>"
    passing = [a.path for a in test.passing]
    if passing and any(f.id.startswith("vae.") for f in findings):
        names = ", ".join(os.path.basename(path) for path in passing[:3])
        out += f"<p>{text('tab.vae.use_passing', language, names=e(names))}</p>"
    data = base64.b64encode(png_bytes(side_by_side(test.original, test.decoded))).decode("ascii")
    out += (f'<p>{e(text("tab.vae.image", language))}</p>'
            f'<img class="modeldoc-vae-image" alt="{e(text("tab.vae.image_alt", language))}" '
            f'src="data:image/png;base64,{data}">')
    return out + "</div>"


def _scan_section(scan: ScanResult, language: Language | str = Language.EN) -> str:
    def t(message_id: str, **params: Any) -> str:
        return text(message_id, language, **params)

    kinds = (("nonfinite", "NaN/Inf"), ("zero", t("tab.scan.zero")), ("magnitude", t("tab.scan.huge")))
    rows, bad = [], []
    for part, c in scan.parts().items():
        name = component_text(part, language)
        counts = {"nonfinite": (c.nonfinite, c.nonfinite_keys), "zero": (c.zero, c.zero_keys),
                  "magnitude": (c.magnitude, c.magnitude_keys)}
        rows.append([name, c.tensors, human_bytes(c.bytes), f"{c.max_abs:.4g}", *[counts[kind][0] for kind, _ in kinds]])
        for kind, label in kinds:
            found, keys = counts[kind]
            if keys:
                more = found - len(keys[:12])
                bad.append(f"<li>{e(name)}, {e(label)}: <code>{e(', '.join(keys[:12]))}</code>"
                           + (" " + e(t("tab.scan.more", more=more)) if more > 0 else "") + "</li>")
    title = t("tab.scan.title", tensors=Counted("float_tensor", len(scan.tensors)), size=human_bytes(scan.bytes_read),
              seconds=f"{round(scan.seconds, 3):.1f}")
    head = [t("tab.col.part"), t("tab.col.tensors"), t("tab.col.size"), "max |x|", *[label for _, label in kinds]]
    out = '<div class="modeldoc-scan">' + _table(title, head, rows)
    out += (f"<p>{e(t('tab.scan.offending'))}</p><ul>" + "".join(bad) + "</ul>") if bad else f"<p>{e(t('tab.scan.clean'))}</p>"
    return out + "</div>"


def _known_section(known: KnownComponents, language: Language | str = Language.EN) -> str:
    rows = []
    for part, p in known.components.items():
        matches = "; ".join(f"{k.description} ({k.name})" for k in p.known) or "-"
        metric = p.metric if p.has_metric else None
        rows.append([component_text(part, language), "-" if metric is None else metric, matches, p.keys,
                     p.fingerprint[:16]])
    title = text("tab.known_section.title", language, metric=known.metric)
    head = [text(f"tab.col.{c}", language) for c in ("part", "metric", "matches", "tensors", "fingerprint")]
    return '<div class="modeldoc-known-components">' + _table(title, head, rows) + "</div>"


def cached_hash_html(sha256: str, language: Language | str = Language.EN) -> str:
    """The SHA-256 the WebUI's hash cache holds for the file (valid: the file has not changed since)."""
    return (f'<p class="modeldoc-cached-hash"><b>SHA-256</b> {html.escape(text("tab.hashes.cached_sha", language), quote=False)} <code>{e(sha256)}</code>'
            f' &middot; AutoV2 <code>{e(sha256[:10])}</code></p>')


def hashes_html(hashes: Any, language: Language | str = Language.EN) -> str:
    """A file's hashes, and the forms Civitai shows and searches by.

    BLAKE3 is shown only when it was computed (the optional ``blake3`` package is installed).
    """
    plain, civitai = hashes.to_dict(), hashes.civitai()
    rows = []
    for key, label in (("sha256", "SHA-256"), ("autov1", "AutoV1"), ("autov2", "AutoV2"), ("autov3", "AutoV3"),
                       ("crc32", "CRC32"), ("blake3", "BLAKE3")):
        if key == "blake3" and not plain[key]:
            continue
        rows.append([label, plain[key] or "-", civitai[key] or "-"])
    source = (f'<p class="modeldoc-cached-hash">{html.escape(text("tab.hashes.cached", language), quote=False)}</p>'
              if getattr(hashes, "sha256_cached", False) else "")
    title = text("tab.hashes.title", language, name=os.path.basename(hashes.path), size=human_bytes(hashes.size_bytes))
    head = [text(f"tab.col.{c}", language) for c in ("hash", "value", "civitai")]
    return (f'<div class="modeldoc-hashes" data-sha256="{e(hashes.sha256)}">' + _table(title, head, rows)
            + source + "</div>")








def comparison_html(result: Any, language: Language | str = Language.EN) -> str:
    """:func:`~lib_modeldoc.analysis.compare.compare_models` as a table per component, blocks collapsed."""
    def t(message_id: str, **params: Any) -> str:
        return text(message_id, language, **params)

    differing = [c for c in result.components.values() if not c.identical]
    if result.identical:
        verdict, state = t("tab.compare.identical"), "ok"
    else:
        verdict, state = t("tab.compare.different", differing=len(differing), total=len(result.components)), "warning"
    out = [f'<div class="modeldoc-compare" data-identical="{str(result.identical).lower()}">',
           f"<p>A: <code>{e(result.a)}</code> ({e(result.a_architecture)})<br>"
           f"B: <code>{e(result.b)}</code> ({e(result.b_architecture)})</p>",
           message_html(verdict, state)]
    rows = [[component_text(c.name, language), _part_verdict(c, language), c.stats.cosine_text, c.stats.relative_text,
             c.stats.keys_compared, c.stats.keys_different] for c in result.components.values()]
    if rows:
        head = [t(f"tab.col.{n}") for n in ("part", "verdict", "cosine", "relative", "keys", "keys_different")]
        out.append(_table(t("tab.compare.per_component"), head, rows))
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            shown = ", ".join(component_text(n, language) for n in names)
            out.append(f"<p>{e(t('tab.compare.only_in', side=side, names=shown))}</p>")
    for side, keys in (("A", result.missing_in_a), ("B", result.missing_in_b)):
        if keys:
            shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
            line = t("tab.compare.missing_in", side=side, keys=Counted("key", len(keys)))
            out.append(f"<p>{e(line)} (<code>{e(shown)}</code>)</p>")
    for c in result.components.values():
        if not c.blocks:
            continue
        changed = sum(1 for _, s in c.blocks if not s.identical)
        rows = [[name, t("tab.compare.identical_word") if s.identical else t("tab.compare.different_word"),
                 s.cosine_text, s.relative_text, f"{s.keys_different}/{s.keys_compared}"] for name, s in c.blocks]
        head = [t(f"tab.col.{n}") for n in ("block", "verdict", "cosine", "relative", "keys_different")]
        summary = t("tab.compare.blocks_differ", part=component_text(c.name, language), changed=changed,
                    total=len(c.blocks))
        out.append(f"<details><summary>{e(summary)}</summary>" + _table(t("tab.compare.blocks"), head, rows)
                   + "</details>")
    out.append("</div>")
    return "".join(out)


def _part_verdict(part: Any, language: Language | str) -> str:
    """A compared part's verdict (``ComponentDiff.verdict``) in ``language``."""
    if part.identical:
        return text("tab.compare.identical_word", language)
    if part.stats.keys_different_fp16:
        return text("tab.compare.different_word", language)
    values = text("tab.compare.same_values" if part.stats.keys_different == 0 else "tab.compare.same_fp16", language)
    only = [text("tab.compare.only_keys", language, keys=Counted("key", n), side=side)
            for n, side in ((part.missing_in_b, "A"), (part.missing_in_a, "B")) if n]
    return text("list.comma", language).join([values, *only])


def _table(title: str, head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<p><b>{e(title)}</b></p><table class="modeldoc-table"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def plan_html(plan: Mapping[str, Any], output: str, *, exists: bool, description: str = "", saving: bool = True,
              refused: Any = "", language: Language | str = Language.EN) -> str:
    """The preview before writing: sizes, every change, warnings, where it goes.

    ``saving`` is False for a new file that does not replace its source (an exported part, a
    built model): then only the output size is shown. ``refused`` says why Write will refuse this output
    (a text, or a :func:`~lib_modeldoc.ui.wording.tab_error`). The changes and warnings are the
    engine's notes: English (marked ``lang="en"`` on a page in another language), their remedies in ``language``.
    """
    before, after = int(plan.get("source_size_bytes", 0)), int(plan.get("size_bytes", 0))
    size = f"{e(human_bytes(before))} → {e(human_bytes(after))}" if saving else e(human_bytes(after))
    tensors = e(counted("tensor", int(plan.get("keys", 0)), language))
    saves = f', {e(text("tab.plan.saves", language, size=human_bytes(before - after)))}' if saving and before > after else ""
    out = [
        '<div class="modeldoc-plan">',
        f'<div class="modeldoc-plan-size"><b>{size}</b> ({e(plan.get("format", ""))}, {tensors}){saves}</div>',
        f'<div>{e(text("tab.plan.output", language))} <code>{e(output)}</code>'
        + (f' <span class="modeldoc-error">{english_html(refused, language)}</span>' if refused else
           f' <span class="modeldoc-warning">{e(text("tab.plan.exists", language))}</span>' if exists else "") + "</div>",
    ]
    changes = list(plan.get("changes") or [])
    if changes:
        out.append("<ul>" + "".join(f"<li>{note_html(c, language)}</li>" for c in changes) + "</ul>")
    for warning in plan.get("warnings") or []:
        out.append(f'<div class="modeldoc-msg modeldoc-warning">{note_html(warning, language)}</div>')
    if description:
        out.append(f'<details><summary>{e(text("tab.plan.full", language))}</summary><pre lang="en">{e(description)}</pre></details>')
    out.append("</div>")
    return "".join(out)


def note_html(note: Any, language: Language | str = Language.EN) -> str:
    """A plan note or an error: its text (see :func:`english_html`), its remedies in ``language``."""
    message = english_html(note, language)
    found = remedies_of(note)
    if not found:
        return message
    remedies = text("tab.error.or", language).join(text(f"tab.remedy.{r.value}", language) for r in found)
    return text("tab.error.with_remedy", language, message=message, remedies=e(remedies))


def result_html(result: Mapping[str, Any], *, listed_as: str | None = None, stamp: str = "",
                language: Language | str = Language.EN) -> str:
    """What was written. ``data-written`` (the file and ``stamp``) tells the page's script that a
    new file exists, so it can refresh the WebUI's own checkpoint and VAE dropdowns."""
    wrote = "tab.result.wrote_verified" if result.get("verified") else "tab.result.wrote"
    line = text(wrote, language, path=e(result["output"]), size=e(human_bytes(int(result["size_bytes"]))),
                tensors=e(counted("tensor", int(result["keys"]), language)))
    if listed_as:
        line += " " + text("tab.result.listed", language, label=e(listed_as))
    return f'<div class="modeldoc-msg modeldoc-ok" data-written="{e(result["output"])}|{e(stamp)}">{line}</div>'


def loaded_html(text: str, title: str | None, stamp: str) -> str:
    """A model was loaded. ``data-loaded-checkpoint`` (its title in the WebUI's list and ``stamp``)
    tells the page's script to show it in the WebUI's own checkpoint dropdown and footer."""
    marker = f' data-loaded-checkpoint="{e(title)}|{e(stamp)}"' if title else ""
    return f'<div class="modeldoc-msg modeldoc-ok"{marker}>{e(text)}</div>'


def live_clip_html(live: Any) -> str:
    """The loaded model's CLIP position_ids, checked in memory."""
    if not live.supported:
        return message_html(live.message, "info")
    if live.fixed:
        return message_html(live.message, "ok")
    return message_html(live.message, "error" if live.damaged else "ok")
