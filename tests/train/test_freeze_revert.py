"""Freezing during fine-tuning vs reverting after it (Bandarkar & Peng 2025), on tiny random models.

Both leave the selected blocks exactly at their starting values; freezing also changes how the other
blocks are trained (they adapt around fixed blocks), reverting does not, so the two differ elsewhere.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cmmerge.errors import ConfigError
from cmmerge.merge.layers import BlockLayout
from cmmerge.params import from_dict
from cmmerge.train.common import OptimParams
from cmmerge.train.finetune import BlockSelection, FinetuneParams, MethodSpec, run_finetune, selected_parameters


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["xlmr", "llama"])
def test_frozen_and_reverted_blocks_keep_their_start_values(kind, tiny_models, prepared, tmp_path):
    init = tiny_models[kind]
    start = load_file(init / "model.safetensors")
    params = FinetuneParams(
        max_length=32, seeds=[1], optim=OptimParams(max_steps=4, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0)
    )
    selection = BlockSelection(blocks=[-1])  # the top one of the tiny models' two blocks
    outs = {}
    for how in ("freeze", "revert", "plain"):
        kwargs = {how: selection} if how != "plain" else {}
        run_finetune(
            init,
            prepared / "prepared/task",
            prepared / "prepared/labels.json",
            params,
            1,
            tmp_path / how,
            tmp_path / f"live_{how}",
            **kwargs,
        )
        outs[how] = load_file(tmp_path / how / "model.safetensors")
    layout = BlockLayout.detect(start)  # the same block detection that selects what to freeze or revert
    _block, n_blocks = layout.block_index, layout.num_blocks
    outer = {n_blocks - 1}
    checked = 0
    for name, value in start.items():
        if _block(name) in outer and name in outs["plain"]:
            checked += 1
            assert torch.equal(outs["freeze"][name], value), name
            assert torch.equal(outs["revert"][name], value), name
    assert checked > 0
    inner = [n for n in start if _block(n) is not None and _block(n) not in outer and n in outs["plain"]]
    assert any(not torch.equal(outs["plain"][n], start[n]) for n in inner), "training moved the inner blocks"
    # reverting trains like plain fine-tuning, then resets: its inner blocks are plain's, freezing's are not
    assert all(torch.equal(outs["revert"][n], outs["plain"][n]) for n in inner)
    assert any(not torch.equal(outs["freeze"][n], outs["plain"][n]) for n in inner)


def test_selection_errors_name_the_problem(tiny_models):
    from cmmerge.models import load_classifier

    model = load_classifier(str(tiny_models["xlmr"]), ["a", "b"])
    with pytest.raises(ConfigError, match="block 9 does not exist"):
        selected_parameters(model, BlockSelection(blocks=[9]))
    with pytest.raises(ConfigError, match="selects nothing"):
        from_dict(MethodSpec, {"init": "x", "freeze": {"blocks": []}}, where="methods.f")
    with pytest.raises(ConfigError, match="not both"):
        from_dict(MethodSpec, {"init": "x", "freeze": {"blocks": [0]}, "revert": {"blocks": [0]}}, where="methods.f")
    names = selected_parameters(model, BlockSelection(embeddings=True))
    assert names and all("embed" in n for n in names)
