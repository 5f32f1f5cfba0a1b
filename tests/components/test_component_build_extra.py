"""Build refuses a part the architecture has no place for."""

import torch
from safetensors.torch import save_file

from lib_modeldoc.cli import main


def test_clip_g_for_sd1_is_refused(tmp_path, capsys):
    part = tmp_path / "any.safetensors"
    save_file({"x": torch.ones(2)}, str(part))
    out = tmp_path / "new.safetensors"
    rc = main(["build", "--arch", "SD1", "--clip-g", str(part), "-o", str(out)])
    assert rc == 2
    assert capsys.readouterr().err == "modeldoc: error: a SD1 model has no OpenCLIP-bigG text encoder; drop --clip-g\n"
    assert not out.exists()
