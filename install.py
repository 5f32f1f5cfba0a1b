"""Run by the WebUI at every start: checks only, installs nothing.

Model Doctor needs numpy and safetensors (and uses torch), which every supported WebUI already
has. It never installs or upgrades torch, gradio or numpy: doing so breaks WebUIs.
"""

import importlib.util
import sys

missing = [name for name in ("numpy", "safetensors") if importlib.util.find_spec(name) is None]
if sys.version_info < (3, 10):
    print("Model Doctor: needs Python 3.10 or newer; the tab will not load.")
elif missing:
    print(f"Model Doctor: missing {', '.join(missing)} in the WebUI's Python; the tab will not load. "
          "Install them into the WebUI's venv (Model Doctor does not install packages).")
