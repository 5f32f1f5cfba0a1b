"""Checkpoint registry and loaded-model holder, as in AUTOMATIC1111 1.10 (subset)."""

import hashlib
import os

from . import paths

model_path = os.path.join(paths.models_path, "Stable-diffusion")
checkpoints_list = {}
checkpoint_aliases = {}


class CheckpointInfo:
    def __init__(self, filename):
        self.filename = filename
        self.name = os.path.relpath(filename, model_path)
        self.shorthash = hashlib.sha256(self.name.encode()).hexdigest()[:10]
        self.title = f"{self.name} [{self.shorthash}]"
        self.model_name = os.path.splitext(self.name)[0]
        self.sha256 = None

    def calculate_shorthash(self):
        from . import hashes

        self.sha256 = hashes.sha256(self.filename, f"checkpoint/{self.name}")
        self.shorthash = self.sha256[:10]
        checkpoints_list.pop(self.title, None)
        self.title = f"{self.name} [{self.shorthash}]"
        self.register()
        return self.shorthash

    def register(self):
        checkpoints_list[self.title] = self
        for alias in (self.title, self.name, self.model_name):
            checkpoint_aliases[alias] = self


class SdModelData:
    def __init__(self):
        self.sd_model = None
        self.loaded_sd_models = []


model_data = SdModelData()


def list_models():
    checkpoints_list.clear()
    checkpoint_aliases.clear()
    for dirpath, _, names in os.walk(model_path, followlinks=True):  # modules.util.walk_files follows links
        for name in sorted(names):
            if name.endswith((".safetensors", ".ckpt")) and not name.endswith((".vae.safetensors", ".vae.ckpt")):
                CheckpointInfo(os.path.join(dirpath, name)).register()


def get_closet_checkpoint_match(search_string):
    if not search_string:
        return None
    info = checkpoint_aliases.get(search_string)
    if info is not None:
        return info
    found = sorted((i for i in checkpoints_list.values() if search_string in i.title), key=lambda i: len(i.title))
    if found:
        return found[0]
    stripped = search_string.rsplit(" [", 1)[0]
    found = sorted((i for i in checkpoints_list.values() if stripped in i.title), key=lambda i: len(i.title))
    return found[0] if found else None
