"""``serve`` as an attacker finds it: confined paths, a login, no other site or host name, no file
routes, and jobs that end with their page. Against the real server (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from ui_helpers import ROOT, free_port, start_serve, stop_serve

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

from lib_modeldoc.errors import ModelDocError, OutputError  # noqa: E402
from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample  # noqa: E402
from lib_modeldoc.ui.gate import HostPolicy  # noqa: E402
from lib_modeldoc.ui.host import Session  # noqa: E402
from lib_modeldoc.ui.standalone import ORPHAN_AFTER_S, FolderHost, write_sample_library  # noqa: E402

GRADIO3 = int(gr.__version__.split(".")[0]) < 4
EVIL = "http://evil.example"


def slim_sd1(path: str) -> str:
    """A real-key SD1 checkpoint of its small tensors only (identified as SD1, ~2 MB, sparse)."""
    return write_safetensors_sample(path, [s for s in family_specs("SD1", dtype="F16") if s.nbytes <= 4096])


def request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
            method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --- confinement (no server needed) -----------------------------------------------------------------

def test_only_served_files_resolve_and_the_refusal_does_not_tell_existence(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    slim_sd1(str(models / "a.safetensors"))
    secret = tmp_path / "secret.safetensors"
    slim_sd1(str(secret))
    (models / "link.safetensors").symlink_to(secret)  # offered by the listing: followed
    (models / "notes.txt").symlink_to("/etc/passwd")  # not offered: refused
    host = FolderHost(str(models))
    assert host.resolve("a.safetensors") == str(models / "a.safetensors")
    assert host.resolve("link.safetensors") == str(models / "link.safetensors")
    messages = set()
    for text in ("/etc/shadow", "/etc/does-not-exist", str(secret), "../secret.safetensors", "notes.txt",
                 str(models / "notes.txt"), "~/.ssh/id_rsa"):
        with pytest.raises(ModelDocError) as caught:
            host.resolve(text)
        messages.add(str(caught.value).replace(text, "PATH"))
    assert messages == {"PATH: only files in the served model folder can be opened here"}


def test_outputs_only_into_the_served_folders(tmp_path):
    library = write_sample_library(str(tmp_path / "library"))
    host = FolderHost(library)
    assert host.output_folders() == [library, os.path.join(library, "Stable-diffusion"), os.path.join(library, "VAE")]
    inside = os.path.join(library, "VAE", "x.safetensors")
    assert host.confine_output(inside) == inside
    (tmp_path / "library" / "escape").symlink_to(tmp_path)
    for outside in ("/etc/x/y/z.safetensors", str(tmp_path / "x.safetensors"),
                    os.path.join(library, "escape", "x.safetensors"), os.path.join(library, "new", "x.safetensors")):
        with pytest.raises(OutputError, match="writes only into the served model folders"):
            host.confine_output(outside)
    assert not os.path.exists("/etc/x")


def test_host_policy():
    loopback = HostPolicy.for_bind("127.0.0.1")
    assert loopback.allows("127.0.0.1:7870") and loopback.allows("localhost:7870") and loopback.allows("[::1]:7870")
    assert not loopback.allows("evil.example:7870") and not loopback.allows(None) and not loopback.allows("10.0.0.2")
    wild = HostPolicy.for_bind("0.0.0.0")
    assert wild.allows("192.168.1.7:7870") and wild.allows("[fe80::1]:7870") and not wild.allows("evil.example")
    named = HostPolicy.for_bind("0.0.0.0", ["NAS.example.org"])
    assert named.allows("nas.example.org:7870") and not named.allows("evil.example")


# --- the command line -------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7"])
def test_listening_beyond_loopback_without_a_login_is_refused(host):
    done = subprocess.run([sys.executable, "-m", "lib_modeldoc", "serve", "--host", host], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"modeldoc: error: --host {host} would let other machines in without a login; "
                           "add --auth USER:PASS (or --no-auth to accept that)\n")


def test_auth_needs_user_and_password():
    done = subprocess.run([sys.executable, "-m", "lib_modeldoc", "serve", "--auth", "nopassword"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "USER:PASS" in done.stderr


# --- the running server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``serve --models DIR`` on loopback; DIR holds a slim SD1 model and a big sparse one to hash."""
    models = tmp_path_factory.mktemp("served")
    slim_sd1(str(models / "slim.safetensors"))
    # ~40 GB, sparse: big enough that no read path (pread or Windows' locked seek) hashes it all
    # before a page that went is noticed
    write_safetensors_sample(str(models / "big.safetensors"),
                             family_specs("SDXL", dtype="F32") + [Spec("pad", "F32", (7_500_000_000,))])
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    proc, _ = start_serve(["--models", str(models), "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    status, _, body = request(base + "/config")
    assert status == 200
    yield proc, base, models, json.loads(body)
    stop_serve(proc)


def _fn_index(config: dict, elem_id: str) -> int:
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id}
    for index, dep in enumerate(config["dependencies"]):
        targets = [t[0] if isinstance(t, (list, tuple)) else t for t in dep["targets"]]
        if ids & set(targets):
            return index
    raise KeyError(elem_id)


def _write_body(config: dict, models, name: str) -> bytes:
    fields = ["fp16", "no-ema", True, False, False, "convert", "convert", "convert", "None", False, "safetensors",
              str(models), name, False, False]
    return json.dumps({"fn_index": _fn_index(config, "modeldoc_convert_write"), "session_hash": "attacker1",
                       "data": ["", None, "slim.safetensors", *fields], "event_data": None}).encode()


def test_a_cross_origin_post_to_the_job_endpoint_is_refused_and_writes_nothing(server):
    _, base, models, config = server
    body = _write_body(config, models, "from-evil")
    for origin in (EVIL, "null"):
        status, headers, answer = request(base + "/run/predict", data=body, method="POST",
                                          headers={"Content-Type": "application/json", "Origin": origin})
        assert status == 403, answer
    # gradio's own CORS layer still answers a preflight, but what follows is refused, and so is a
    # cross-origin read: another site's page gets nothing, whatever Access-Control-Allow-Origin says
    status, _, answer = request(base + "/config", headers={"Origin": EVIL})
    assert status == 403 and b"slim.safetensors" not in answer
    time.sleep(3)
    assert not (models / "from-evil.safetensors").exists()
    if GRADIO3:  # the same request from the page's own origin does write: the refusal above is the gate's
        body = _write_body(config, models, "same-origin")
        status, _, answer = request(base + "/run/predict", data=body, method="POST",
                                    headers={"Content-Type": "application/json", "Origin": base})
        assert status == 200, answer
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (models / "same-origin.safetensors").exists():
            time.sleep(0.2)
        assert (models / "same-origin.safetensors").exists()


def test_a_foreign_host_header_is_refused(server):
    _, base, _, _ = server
    for path in ("/", "/config"):
        status, _, _ = request(base + path, headers={"Host": "evil.example"})
        assert status == 403
        status, _, _ = request(base + path, headers={"Host": "localhost"})
        assert status == 200


def test_file_routes_are_closed(server):
    _, base, models, _ = server
    assert os.path.exists(os.path.join(ROOT, "README.md"))  # under the server's working directory
    for path in ("/file=README.md", f"/file={ROOT}/README.md", "/file=lib_modeldoc/cli.py",
                 f"/file={models}/slim.safetensors", "/file%3DREADME.md", "/proxy=http://127.0.0.1:1/"):
        status, _, body = request(base + path)
        assert status == 403, (path, body[:80])


def _rchar(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def _join_and_leave_ws(base: str, index: int, on_update) -> None:
    """gradio 3: the queue's websocket; leave after two progress updates."""
    from websockets.sync.client import connect

    with connect(base.replace("http", "ws") + "/queue/join", origin=base, open_timeout=20) as ws:
        assert json.loads(ws.recv(20))["msg"] == "send_hash"
        ws.send(json.dumps({"fn_index": index, "session_hash": "leaver1"}))
        while json.loads(ws.recv(20))["msg"] != "send_data":
            pass
        ws.send(json.dumps({"fn_index": index, "session_hash": "leaver1", "event_data": None,
                            "data": ["", None, "big.safetensors"]}))
        updates = 0
        while updates < 2:
            msg = json.loads(ws.recv(30))
            assert msg["msg"] in ("estimation", "process_starts", "process_generating"), msg
            if msg["msg"] == "process_generating":
                updates += 1
                on_update()


def _join_and_leave_sse(base: str, index: int, trigger: int, on_update) -> None:
    """gradio 4: POST /queue/join, then the event stream; leave after two progress updates."""
    import http.client
    from urllib.parse import urlsplit

    body = json.dumps({"data": ["", None, "big.safetensors"], "fn_index": index, "session_hash": "leaver1",
                       "event_data": None, "trigger_id": trigger}).encode()
    status, _, answer = request(base + "/queue/join", data=body, headers={"Content-Type": "application/json"})
    assert status == 200, answer
    where = urlsplit(base)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    conn.request("GET", "/queue/data?session_hash=leaver1")
    stream = conn.getresponse()
    updates = 0
    while updates < 2:
        line = stream.fp.readline()
        assert line, "the event stream ended early"
        if b"process_generating" in line:
            updates += 1
            on_update()
    conn.sock.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="reads counted in /proc")
def test_a_job_stops_when_its_page_goes(server):
    """Hashes of a 40 GB file: the page goes after two progress updates, and the reading stops."""
    proc, base, _, config = server
    index = _fn_index(config, "modeldoc_hash")
    seen = []
    on_update = lambda: seen.append(_rchar(proc.pid))  # noqa: E731
    if GRADIO3:
        _join_and_leave_ws(base, index, on_update)
    else:
        trigger = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "modeldoc_hash")
        _join_and_leave_sse(base, index, trigger, on_update)
    gone = time.monotonic()
    assert seen[-1] > seen[0]  # the job was reading while its page was there
    previous, stopped = _rchar(proc.pid), None
    while time.monotonic() - gone < 40:
        time.sleep(1.0)
        now = _rchar(proc.pid)
        if now - previous < 5_000_000:
            stopped = time.monotonic() - gone
            break
        previous = now
    assert stopped is not None, "the job went on reading after its page had gone"
    print(f"job stopped {stopped:.1f} s after its page went")
    assert stopped < ORPHAN_AFTER_S + 6
    assert _rchar(proc.pid) < 20_000_000_000  # far from the 40 GB a finished hash reads (speed varies)


def test_a_closed_job_generator_cancels_its_job(tmp_path):
    """What gradio 4 does when the page goes: it closes the handler's generator."""
    host = FolderHost(write_sample_library(str(tmp_path / "library")))
    seen = {}

    def endless(job, session):
        while not job.cancelled():
            time.sleep(0.05)
        seen["cancelled"] = True
        return ["stopped"]

    session = Session()
    handler = host.wrap_job(endless, 1, 0)("", session)
    next(handler)
    next(handler)
    handler.close()
    deadline = time.monotonic() + 10
    while "cancelled" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == {"cancelled": True}


@pytest.fixture(scope="module")
def login_server(tmp_path_factory):
    models = tmp_path_factory.mktemp("private")
    slim_sd1(str(models / "private-model.safetensors"))
    port = free_port()
    proc, _ = start_serve(["--models", str(models), "--port", str(port), "--auth", "alice:s3cret:x"],
                          env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
    yield f"http://127.0.0.1:{port}"
    stop_serve(proc)


def test_auth_requires_the_login(login_server):
    base = login_server
    _, _, config = request(base + "/config")
    assert b"private-model" not in config
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = request(base + "/login", data=b"username=alice&password=wrong", headers=form)
    assert status in (400, 401)
    status, headers, _ = request(base + "/login", data=b"username=alice&password=s3cret%3Ax", headers=form)
    assert status == 200
    cookie = "; ".join(c.split(";")[0] for k, c in headers.items() if k.lower() == "set-cookie")
    _, _, config = request(base + "/config", headers={"Cookie": cookie})
    assert b"private-model" in config


@pytest.mark.skipif(not GRADIO3, reason="gradio 3's websocket queue")
def test_the_queue_websocket_needs_a_real_login(login_server):
    from websockets.exceptions import InvalidStatus, InvalidStatusCode  # noqa: F401
    from websockets.sync.client import connect

    base = login_server
    with pytest.raises(Exception) as caught:  # gradio 3.41 alone takes any cookie as a login
        with connect(base.replace("http", "ws") + "/queue/join", origin=base, open_timeout=20,
                     additional_headers={"Cookie": "access-token=made-up"}) as ws:
            ws.recv(10)
    assert "403" in str(caught.value) or "1008" in str(caught.value)


# --- the tab, driven through its real handlers --------------------------------------------------------

@pytest.fixture
def tab(tmp_path):
    from ui_helpers import Driver

    from lib_modeldoc.ui.builder import build_ui

    models = tmp_path / "models"
    models.mkdir()
    slim_sd1(str(models / "slim.safetensors"))
    (tmp_path / "private.txt").write_text("secret")
    host = FolderHost(str(models))
    return Driver(build_ui(host)), host, models


def test_hashes_and_compare_of_outside_paths_are_refused_in_one_line(tab, tmp_path):
    drv, _, _ = tab
    for path in ("/etc/shadow", "/etc/no-such-file", str(tmp_path / "private.txt"), "../private.txt"):
        out = drv.click("modeldoc_hash", modeldoc_model=path)["modeldoc_hash_result"]
        assert "modeldoc-error" in out and "only files in the served model folder" in out, out
        assert "secret" not in out and "SHA-256" not in out
        out = drv.click("modeldoc_compare", modeldoc_model="slim.safetensors",
                        modeldoc_compare_other=path)["modeldoc_compare_result"]
        assert "modeldoc-error" in out and "only files in the served model folder" in out, out
    assert "SHA-256" in drv.click("modeldoc_hash", modeldoc_model="slim.safetensors")["modeldoc_hash_result"]


def test_writes_outside_the_served_folders_are_refused(tab, tmp_path):
    drv, _, models = tab
    for folder in ("/etc/x/y", str(tmp_path)):
        out = drv.click("modeldoc_convert_write", modeldoc_model="slim.safetensors", modeldoc_convert_out_folder=folder,
                        modeldoc_convert_out_name="escaped", modeldoc_convert_overwrite=True)
        assert "writes only into the served model folders" in out["modeldoc_convert_result"]
    assert not os.path.exists("/etc/x") and not (tmp_path / "escaped.safetensors").exists()
    out = drv.click("modeldoc_convert_write", modeldoc_model="slim.safetensors", modeldoc_convert_out_folder=str(models),
                    modeldoc_convert_out_name="kept")
    assert (models / "kept.safetensors").exists(), out["modeldoc_convert_result"]


def test_the_tab_reports_leftovers_of_killed_writes(tmp_path):
    from ui_helpers import Driver

    from lib_modeldoc.io.atomic import partial_name
    from lib_modeldoc.ui.builder import build_ui

    models = tmp_path / "models"
    models.mkdir()
    slim_sd1(str(models / "slim.safetensors"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = models / partial_name("merge.safetensors", pid=dead.pid)
    stale.write_bytes(b"\0" * 3000)
    drv = Driver(build_ui(FolderHost(str(models))))
    shown = drv.blocks.blocks[drv.ids["modeldoc_leftovers"]].value
    assert "1 leftover file of interrupted writes" in shown and stale.name in shown
    stale.unlink()
    out = drv.click("modeldoc_refresh", modeldoc_model="slim.safetensors")
    assert out["modeldoc_leftovers"] == ""
