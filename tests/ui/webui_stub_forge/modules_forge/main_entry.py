"""Forge's checkpoint selection (a subset): ``checkpoint_change`` records the choice; Forge loads
the model lazily at the next generation."""

from modules import shared

changes = []


def checkpoint_change(ckpt_name, save=True, refresh=True):
    changes.append(ckpt_name)
    shared.opts.set("sd_model_checkpoint", ckpt_name)
    return True
