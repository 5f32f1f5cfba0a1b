""".ckpt output: only the zip members and pickle globals AUTOMATIC1111 1.10.1 accepts, storages on
64-byte boundaries, and torch.load(weights_only=True) reads it.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_support import (
    SD1_POS, UNET_KEY, VAE_KEY, WEBUI_ZIP_MEMBER, f32, read_ckpt, read_safetensors, slim_specs, with_spec,
    zip_data_offsets,
)
from lib_modeldoc.cli import main
from lib_modeldoc.samples import Spec, broken_position_ids, write_safetensors_sample

# modules/safe.py RestrictedUnpickler.find_class of AUTOMATIC1111 1.10.1 (the parts a state dict uses).
WEBUI_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    *(("torch", n) for n in ("FloatStorage", "HalfStorage", "IntStorage", "LongStorage", "DoubleStorage",
                             "ByteStorage", "float32", "BFloat16Storage")),
}


def pickle_globals(path) -> set[tuple[str, str]]:
    with zipfile.ZipFile(path) as archive:
        [pkl] = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        data = archive.read(pkl)
    found = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            found.add((module, name))
    return found


@pytest.fixture(scope="module")
def sd1_ckpt(tmp_path_factory):
    """A slim SD1 (fp32, with fp64 and int buffers) converted to .ckpt with the defaults."""
    folder = tmp_path_factory.mktemp("ckpt")
    values = {UNET_KEY: f32([0.5, -1.5, 2.0, 1e5]), VAE_KEY: np.linspace(-1, 1, 128, dtype=np.float32),
              SD1_POS: broken_position_ids()}
    extra = (Spec(SD1_POS, "F32", (1, 77)), Spec("alphas_cumprod", "F64", (1000,)),
             Spec("model_ema.num_updates", "I32", ()))
    src = write_safetensors_sample(str(folder / "sd1.safetensors"), with_spec(slim_specs(dtype="F32"), *extra),
                                   values, metadata={"note": "x"})
    out = folder / "sd1.ckpt"
    with redirect_stdout(io.StringIO()) as stdout:
        assert main(["convert", src, "-o", str(out)]) == 0
    assert "warning: a .ckpt has no place for the source's metadata; it is not carried over" in stdout.getvalue()
    return src, out


def test_only_members_the_webui_accepts(sd1_ckpt):
    src, out = sd1_ckpt
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    assert all(WEBUI_ZIP_MEMBER.match(n) for n in names), [n for n in names if not WEBUI_ZIP_MEMBER.match(n)]
    tensors = len(read_ckpt(out))
    expected = ["archive/data.pkl", "archive/version", *(f"archive/data/{i}" for i in range(tensors))]
    assert sorted(names) == sorted(expected)
    assert pickle_globals(out) <= WEBUI_GLOBALS


def test_storages_are_64_byte_aligned(sd1_ckpt):
    _, out = sd1_ckpt
    offsets = zip_data_offsets(out)
    data = {n: o for n, o in offsets.items() if "/data/" in n}
    assert data and all(o % 64 == 0 for o in data.values()), {n: o % 64 for n, o in data.items() if o % 64}


def test_loads_with_weights_only_and_holds_the_converted_values(sd1_ckpt):
    src, out = sd1_ckpt
    back = read_ckpt(out)
    source, _ = read_safetensors(src)
    assert back[UNET_KEY].dtype == torch.float16
    assert back[UNET_KEY].tolist() == [0.5, -1.5, 2.0, 65504.0]
    assert torch.equal(back[VAE_KEY], source[VAE_KEY].half())
    assert back["alphas_cumprod"].dtype == torch.float32
    assert "model_ema.num_updates" not in back  # --prune no-ema (the default) drops EMA bookkeeping too
    assert back[SD1_POS].dtype == torch.int64
    expected = np.arange(77)
    expected[[41, 76]] = [40, 75]  # without --fix-clip: stored as the WebUI reads the floats
    assert back[SD1_POS].flatten().tolist() == expected.tolist()
    assert set(back) == {k for k in source if not k.startswith("model_ema.")}  # no junk in this source
    mapped = torch.load(str(out), map_location="cpu", weights_only=True, mmap=True)["state_dict"]
    assert all(torch.equal(mapped[k], back[k]) for k in back)  # aligned storages also map


def test_estimated_size_is_close(slim_model, cli, tmp_path):
    import json

    src = slim_model()
    out = tmp_path / "o.ckpt"
    rc, stdout, _ = cli("convert", src, "-o", out, "--dry-run", "--json")
    assert rc == 0 and not out.exists()
    planned = json.loads(stdout)["size_bytes"]
    assert cli("convert", src, "-o", out)[0] == 0
    assert abs(planned - out.stat().st_size) < 0.02 * out.stat().st_size + 4096


@pytest.mark.parametrize("precision, dtype", [("fp8_e4m3fn", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)])
def test_fp8_ckpt_loads_with_weights_only_and_warns(tmp_path, cli, precision, dtype):
    src = tmp_path / "small.safetensors"
    save_file({"w": torch.tensor([[1.0, -2.0], [500.0, 0.25]]), "n": torch.arange(3)}, str(src))  # 2-D: a layer weight
    out = tmp_path / "fp8.ckpt"
    rc, stdout, _ = cli("convert", src, "-o", out, "--keep-junk", "--precision", precision)
    assert rc == 0
    assert f"AUTOMATIC1111's safe loader refuses {precision} tensors in a .ckpt; prefer .safetensors" in stdout
    back = read_ckpt(out)
    assert back["w"].dtype == dtype
    # 500 saturates to 448 in e4m3fn; e5m2 (max 57344) rounds it to 512
    saturated = 448.0 if precision == "fp8_e4m3fn" else 512.0
    assert back["w"].float().flatten().tolist() == [1.0, -2.0, saturated, 0.25]
    assert torch.equal(back["n"], torch.arange(3))
    assert all(WEBUI_ZIP_MEMBER.match(n) for n in zipfile.ZipFile(out).namelist())


def test_format_option_overrides_the_suffix(tmp_path, cli):
    src = tmp_path / "small.safetensors"
    save_file({"w": torch.ones(3)}, str(src))
    out = tmp_path / "model.bin"
    assert cli("convert", src, "-o", out, "--keep-junk", "--format", "ckpt")[0] == 0
    assert zipfile.is_zipfile(out)
    assert torch.equal(read_ckpt(out)["w"], torch.ones(3, dtype=torch.float16))
    out2 = tmp_path / "model.weights"
    rc, stdout, err = cli("convert", src, "-o", out2, "--keep-junk")
    assert (rc, stdout) == (2, "")
    assert err == (f"modeldoc: error: {out2}: cannot tell the output format from its suffix; "
                   "add --format safetensors or --format ckpt\n")
    assert not out2.exists()


def test_ckpt_with_storage_types_a1111_refuses_warns(tmp_path, cli):
    src = tmp_path / "small.safetensors"
    save_file({"w": torch.ones(4), "mask": torch.tensor([True, False]), "q": torch.tensor([1, 2], dtype=torch.int8)}, str(src))
    out = tmp_path / "mixed.ckpt"
    rc, stdout, _ = cli("convert", src, "-o", out, "--keep-junk")
    assert rc == 0
    assert "AUTOMATIC1111's safe loader refuses bool, int8 tensors in a .ckpt; prefer .safetensors" in stdout
    assert read_ckpt(out)["mask"].dtype == torch.bool


def test_ckpt_with_only_accepted_storage_types_does_not_warn(tmp_path, cli):
    src = tmp_path / "small.safetensors"
    save_file({"w": torch.ones(4), "ids": torch.arange(3)}, str(src))
    rc, stdout, _ = cli("convert", src, "-o", tmp_path / "ok.ckpt", "--keep-junk")
    assert rc == 0
    assert "safe loader" not in stdout
