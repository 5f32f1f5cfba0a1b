"""The signature check stops early on files it cannot match, and decides exactly as a full count does."""

from __future__ import annotations

import importlib
import random

from lib_modeldoc.arch.families import SIGNATURES

identify_module = importlib.import_module("lib_modeldoc.arch.identify")  # the package exports a function of that name

KEYS = ["lora_unet_down.lora_down.weight", "x.alpha", "image_proj.proj.weight", "ip_adapter.1.to_k_ip.weight",
        "body.0.conv.weight", "conv_in.weight", "controlnet_down_blocks.0.weight", "double_blocks.0.img_attn.qkv.weight",
        "encoder.block.0.layer.0.weight", "emb_params", "model.diffusion_model.out.2.weight", "first_stage_model.x"]


def _full_share(signature, keys):
    pattern = identify_module._signature_pattern(signature)
    hits = sum(1 for k in keys if pattern.search(k))
    return hits / len(keys) if keys and hits else 0.0


def test_early_stop_decides_as_the_full_count():
    rng = random.Random(7)
    for _ in range(2000):
        keys = [rng.choice(KEYS) + ("" if rng.random() < 0.7 else str(i)) for i in range(rng.randint(0, 12))]
        for signature in SIGNATURES:
            full = _full_share(signature, keys)
            fast = identify_module._signature_share(signature, keys)
            applies = bool(full) and full >= signature.min_share
            assert (bool(fast) and fast >= signature.min_share) == applies, (signature.name, keys)
            if applies:
                assert fast == full  # the evidence quotes the share


def test_a_checkpoint_stops_the_lora_check_early(monkeypatch):
    seen = []
    lora = SIGNATURES[0]
    pattern = identify_module._signature_pattern(lora)

    class Counting:
        def search(self, key):
            seen.append(key)
            return pattern.search(key)

    monkeypatch.setattr(identify_module, "_signature_pattern", lambda signature: Counting())
    keys = [f"model.diffusion_model.block.{i}.weight" for i in range(1000)]
    assert identify_module._signature_share(lora, keys) == 0.0
    assert len(seen) <= 501  # min_share 0.5: past half the keys missing, no hit on the rest can make it
