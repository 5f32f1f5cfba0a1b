import os

from . import paths

vae_path = os.path.join(paths.models_path, "VAE")
vae_dict = {}


def refresh_vae_list():
    vae_dict.clear()
    if os.path.isdir(vae_path):
        for name in sorted(os.listdir(vae_path)):
            if name.endswith((".safetensors", ".pt", ".ckpt")):
                vae_dict[name] = os.path.join(vae_path, name)
