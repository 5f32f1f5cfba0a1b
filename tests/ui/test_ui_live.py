"""CLIP position_ids of a loaded torch module: checked and reset in memory, nothing reloaded."""

from __future__ import annotations

import torch

from lib_modeldoc.checks.live import check_position_ids, find_position_ids, fix_position_ids


class Embeddings(torch.nn.Module):
    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("position_ids", values)
        self.token_embedding = torch.nn.Embedding(10, 4)


class Model(torch.nn.Module):
    """The WebUI's shape: cond_stage_model.transformer.text_model.embeddings.position_ids (int64)."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.cond_stage_model = torch.nn.Module()
        self.cond_stage_model.transformer = torch.nn.Module()
        self.cond_stage_model.transformer.text_model = torch.nn.Module()
        self.cond_stage_model.transformer.text_model.embeddings = Embeddings(values)
        self.alias = self.cond_stage_model  # the WebUI's hijack exposes the same module twice


def broken() -> torch.Tensor:
    # a merge's floats copied into the int64 buffer: 75.9975 -> 75, 40.9999 -> 40
    values = torch.arange(77, dtype=torch.float32).reshape(1, 77)
    values[0, 76], values[0, 41] = 75.9975, 40.9999
    return values.to(torch.int64)


def test_check_finds_the_shifted_positions_once():
    model = Model(broken())
    assert list(find_position_ids(model)) == ["cond_stage_model.transformer.text_model.embeddings.position_ids"]
    assert check_position_ids(model) == {"cond_stage_model.transformer.text_model.embeddings.position_ids": (41, 76)}


def test_fix_resets_in_place_and_keeps_the_buffer_object():
    model = Model(broken())
    buffer = model.cond_stage_model.transformer.text_model.embeddings.position_ids
    fixed = fix_position_ids(model)
    assert fixed == {"cond_stage_model.transformer.text_model.embeddings.position_ids": (41, 76)}
    assert buffer is model.cond_stage_model.transformer.text_model.embeddings.position_ids
    assert buffer.dtype == torch.int64 and torch.equal(buffer, torch.arange(77).reshape(1, 77))
    assert check_position_ids(model) == {"cond_stage_model.transformer.text_model.embeddings.position_ids": ()}
    assert fix_position_ids(model) == {}


def test_a_model_without_clip_has_nothing_to_check():
    assert check_position_ids(torch.nn.Linear(2, 2)) == {}
