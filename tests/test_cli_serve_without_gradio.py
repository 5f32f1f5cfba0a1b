"""``serve`` with only ``requirements.txt`` installed (no gradio): one ``modeldoc: error:`` line naming the
requirements file to install, exit 2, no traceback, nothing written (issue 9.18)."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Hide gradio (and the web stack it brings) the way an environment without them behaves: imports fail.
BLOCK = """
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('gradio', 'gradio_client'):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None
sys.meta_path.insert(0, _Absent())
from lib_modeldoc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_serve_without_gradio_names_the_requirements_file(tmp_path):
    for args in (["serve"], ["serve", "--models", str(tmp_path)]):
        run = subprocess.run([sys.executable, "-c", BLOCK, *args, "--port", "1"], cwd=str(tmp_path),
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(tmp_path)})
        assert run.returncode == 2, (run.returncode, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("modeldoc: error: "), run.stderr
        assert "requirements-standalone.txt" in lines[0] and "gradio" in lines[0], lines[0]
        assert "internal error" not in lines[0] and "Traceback" not in run.stderr
        assert run.stdout == ""
    assert sorted(os.listdir(tmp_path)) == []  # no sample library written
