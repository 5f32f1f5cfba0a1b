"""Every panel the tab renders at run time speaks the host's language: plan, result, hashes, compare,
the details' scan and fingerprint sections, the leftovers warning, the chart and the tab's errors with
their remedies. Rendered under Chinese and Russian for sample models and jobs, a run of three or more
English words outside ``<code>`` (paths, keys, commands) fails the test.

Text the engine words in English only (its plan notes, its error messages) is marked ``lang="en"`` by
the views; it is allowed here and counted, so it cannot grow unnoticed.
"""

from __future__ import annotations

import html
import os
import re
from types import SimpleNamespace

import pytest

from lib_modeldoc.analysis.vae_test import VaeTestOptions
from lib_modeldoc.arch.families import FAMILIES
from lib_modeldoc.errors import OutputError
from lib_modeldoc.report.advice import Remedy
from lib_modeldoc.report.messages import Language
from lib_modeldoc.samples import write_demo_sample, write_sample
from lib_modeldoc.ui import actions, metadata, views

ENGLISH_RUN = re.compile(r"(?<![\w./-])[A-Za-z][A-Za-z'’-]*(?:[ ]+[A-Za-z][A-Za-z'’-]*){2,}(?![\w./-])")
# Names that stay as they are in every language (architectures, tools; the architecture tables' labels
# name a family as its community does), and data from the sample files (the tags the sample LoRA's
# metadata says it was trained on).
NAMES = (*sorted((f.label for f in FAMILIES), key=len, reverse=True), "Stable Diffusion", "model-toolkit",
         "solo, smile, red dress")


class Host(SimpleNamespace):
    """The little of a host the views and actions ask: its name, language and loaded model."""

    def loaded_checkpoint(self):
        return None

    def checkpoints(self):
        return []


class Job:
    stopped = False

    def cancelled(self):
        return self.stopped

    def progress(self, done, total, message):
        pass


def visible_english(page: str) -> list[str]:
    """Runs of >= 3 English words a reader sees in ``page`` (outside code, pre and lang="en" parts);
    a list of names (``UNet, VAE, CLIP-L``) is not a run."""
    page = re.sub(r"<(code|pre)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'<(\w+)\b[^>]*\blang="en"[^>]*>.*?</\1>', " ", page, flags=re.S)
    page = re.sub(r'<img\b[^>]*>', " ", page)
    titles = re.findall(r'\btitle="([^"]*)"', page)
    words = html.unescape(re.sub(r"<[^>]+>", " | ", page) + " | " + " | ".join(titles))
    for name in NAMES:
        words = words.replace(name, " ")
    return ENGLISH_RUN.findall(words)


def engine_english(page: str) -> int:
    return len(re.findall(r'\blang="en"', page))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    (folder / "notes.ckpt").write_bytes(b"not a model, not safetensors")
    return SimpleNamespace(
        folder=str(folder),
        demo=write_demo_sample(str(folder)),
        lora=write_sample(os.path.join(folder, "lora.safetensors"), "lora-sd15-kohya"),
        locon=write_sample(os.path.join(folder, "locon.safetensors"), "locon-sd15"),
        embedding=write_sample(os.path.join(folder, "emb.safetensors"), "embedding-sd15"),
        vae=write_sample(os.path.join(folder, "ae.safetensors"), "flux-ae"),
        notes=str(folder / "notes.ckpt"),
    )


def pages(models, language: Language) -> dict[str, str]:
    """Every run-time panel of the tab for the sample models, in ``language``."""
    host = Host(name="AUTOMATIC1111", language=language)
    job = Job()
    out = {
        "plan convert": actions.preview(actions.ConvertRequest(source=models.demo), host),
        "plan export": actions.preview(actions.ExportRequest(source=models.demo, component="vae"), host),
        "plan replace": actions.preview(actions.ReplaceRequest(source=models.demo, component="vae",
                                                               part_from=models.demo), host),
        "plan exists": actions.preview(actions.ConvertRequest(source=models.demo, name="damaged-merge-sd15"), host),
        "result": views.result_html({"output": "/m/out.safetensors", "size_bytes": 2 << 30, "keys": 1131,
                                     "verified": True}, listed_as="out [abc]", language=language),
        "hashes": actions.hashes(models.embedding, job, language=language),
        "compare same": actions.compare(models.lora, models.locon, job, language=language),
        "compare other": actions.compare(models.demo, models.lora, job, language=language),
        "leftovers": views.leftovers_html([SimpleNamespace(path="/m/.a.partial", size_bytes=5 << 20)] * 2,
                                          language=language),
        "error with remedy": actions.error_html(OutputError("/m/x.safetensors: already exists", remedy=Remedy.OVERWRITE), language=language),
        "error picked": actions.guard(lambda: actions.compare(models.lora, models.lora, job, language=language),
                                      language=language)[1],
    }
    stopped = Job()
    stopped.stopped = True
    out["interrupted"] = actions.guard(lambda: actions.hashes(models.embedding, stopped), language)[1]
    out["meta bad json"] = actions.guard(lambda: metadata.form_metadata({}, "[1]"), language)[1]
    out["meta not safetensors"] = actions.guard(lambda: metadata.require_safetensors(models.notes), language)[1]
    form = metadata.load_form(models.demo, host, job)
    out["meta loaded"] = metadata.loaded_html(form, language) + form.recipe_html
    saved = metadata.save_form(models.embedding, {"title": "x"}, "{}", f"saved-{language.value}", False, host, job)
    out["meta saved"] = metadata.saved_html(saved, in_place=False, language=language)
    out["error exists"] = actions.guard(lambda: metadata.save_form(  # the same name again: the output rule's error
        models.embedding, {"title": "x"}, "{}", f"saved-{language.value}", False, host, job), language)[1]
    scanned = actions.inspect_file(models.lora, scan=True, identify_components=True, host=host)
    out["details scan"] = scanned.details
    out["chart"] = actions.inspect_file(models.demo, host=host).chart
    # The VAE test: its section and its finding (the sample VAE's zero weights decode a flat picture).
    tested = actions.inspect_file(models.vae, vae_test=VaeTestOptions(size=64, device="cpu"), host=host)
    out["vae test"] = tested.verdict + tested.details
    assert "vae.broken_output" in out["vae test"]
    return out


@pytest.fixture(scope="module", params=[Language.ZH, Language.RU], ids=["zh", "ru"])
def rendered(request, models):
    return request.param, pages(models, request.param)


def test_the_check_finds_english(models):
    # In English the same pages hold runs of English words: the check can fail.
    english = pages(models, Language.EN)
    for name in ("plan exists", "result", "hashes", "compare same", "compare other", "leftovers",
                 "error with remedy", "error picked", "details scan", "meta bad json", "meta loaded", "meta saved",
                 "error exists", "vae test"):
        assert visible_english(english[name]), f"{name}: the check sees no English in the English page"


def test_every_run_time_panel_is_translated(rendered):
    language, found = rendered
    untranslated = {name: visible_english(page) for name, page in found.items()}
    untranslated = {name: runs for name, runs in untranslated.items() if runs}
    assert not untranslated, f"{language.value}: English left in {untranslated}"


def test_only_the_engine_notes_stay_english(rendered):
    # The plan's notes, the engine's errors and the evidence lines come from the engine in English
    # (marked lang="en"); nothing else is.
    language, found = rendered
    marked = {name: engine_english(page) for name, page in found.items() if engine_english(page)}
    assert set(marked) <= {"plan convert", "plan export", "plan replace", "plan exists", "error with remedy",
                           "details scan", "vae test"}, marked
    assert not {"error picked", "error exists", "interrupted", "hashes"} & set(marked)
