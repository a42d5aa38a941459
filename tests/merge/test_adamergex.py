"""AdaMergeX on real peft adapters of a tiny Llama: the merged adapter's ΔW (LoRA) or scaling vectors
((IA)³) equal the formula, and ``PeftModel.from_pretrained`` loads the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cmmerge.errors import MergeError
from cmmerge.merge import MergeConfig, run_merge
from cmmerge.merge.adapters import ADAPTER_WEIGHTS, lora_scaling, svd_factors

ROLES = ("task", "ref_src", "ref_tgt")


def _lora(base: Path, out: Path, seed: int, r: int, alpha: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj", "k_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


def _ia3(base: Path, out: Path, seed: int) -> Path:
    from peft import IA3Config, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])
    get_peft_model(model, cfg).save_pretrained(out)
    # peft initialises (IA)³ vectors to ones: make them differ, and stay positive
    path = out / ADAPTER_WEIGHTS
    g = torch.Generator().manual_seed(seed)
    tensors = {k: 0.5 + torch.rand(v.shape, generator=g) for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def loras(family, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    base = family["llama"]["base"]
    ranks = {"task": (2, 4), "ref_src": (3, 3), "ref_tgt": (2, 8)}  # (r, lora_alpha): different scalings
    return {role: _lora(base, root / role, i, *ranks[role]) for i, role in enumerate(ROLES)}


def _cfg(adapters: dict[str, Path], params: dict) -> MergeConfig:
    return MergeConfig.from_dict(
        {
            "merge_method": "adamergex",
            "models": [{"model": str(p), "parameters": {"role": role}} for role, p in adapters.items()],
            "parameters": params,
        }
    )


def _delta_w(folder: Path) -> dict[str, torch.Tensor]:
    """``s · B A`` of every LoRA module of an adapter folder, with peft's scaling from its config."""
    cfg = json.loads((folder / "adapter_config.json").read_text())
    t = load_file(str(folder / ADAPTER_WEIGHTS))
    out = {}
    for name in t:
        if name.endswith(".lora_A.weight"):
            prefix = name.removesuffix(".lora_A.weight")
            a, b = t[name], t[prefix + ".lora_B.weight"]
            r = cfg.get("rank_pattern", {}).get(prefix.removeprefix("base_model.model."), cfg["r"])
            out[prefix] = lora_scaling(cfg["lora_alpha"], r, cfg.get("use_rslora", False)) * b @ a
    return out


@pytest.mark.parametrize("mode", ["concat", "svd"])
def test_lora_delta_w_equals_formula_and_peft_loads(family, loras, tmp_path, mode):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    lam = 0.6
    params = {"lambda": lam, "mode": mode} | ({"rank": 7} if mode == "svd" else {})
    out = run_merge(_cfg(loras, params), tmp_path / mode)
    d = {role: _delta_w(p) for role, p in loras.items()}
    got = _delta_w(out)
    assert set(got) == set(d["task"])
    for prefix, dw in got.items():
        # ranks 2 + 3 + 2 = 7 ≥ rank of the target ΔW, so SVD at rank 7 is exact too
        want = d["task"][prefix] + lam * (d["ref_tgt"][prefix] - d["ref_src"][prefix])
        torch.testing.assert_close(dw, want, rtol=1e-4, atol=1e-5)

    # the folder loads, and merging it into the base adds exactly ΔW to each target weight
    base = AutoModelForCausalLM.from_pretrained(family["llama"]["base"])
    w0 = {k: v.clone() for k, v in base.state_dict().items()}
    merged = PeftModel.from_pretrained(base, out).merge_and_unload()
    sd = merged.state_dict()
    for prefix, dw in got.items():
        name = prefix.removeprefix("base_model.model.") + ".weight"
        torch.testing.assert_close(sd[name] - w0[name], dw, rtol=1e-4, atol=1e-5)
    manifest = json.loads((out / "merge_manifest.json").read_text())
    assert {m["role"] for m in manifest["models"]} == set(ROLES)


def test_lora_svd_low_rank_is_the_best_approximation(loras, tmp_path):
    out = run_merge(_cfg(loras, {"lambda": 1.0, "mode": "svd", "rank": 2}), tmp_path / "r2")
    d = {role: _delta_w(p) for role, p in loras.items()}
    for prefix, dw in _delta_w(out).items():
        target = d["task"][prefix] + (d["ref_tgt"][prefix] - d["ref_src"][prefix])
        b, a = svd_factors(target, 2)
        torch.testing.assert_close(dw, b @ a, rtol=1e-4, atol=1e-5)
        assert torch.linalg.matrix_rank(dw) <= 2


def test_ia3_vectors_equal_formula_and_peft_loads(family, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = family["llama"]["base"]
    adapters = {role: _ia3(base_dir, tmp_path / role, seed=i) for i, role in enumerate(ROLES)}
    out = run_merge(_cfg(adapters, {"lambda": 0.5}), tmp_path / "out")
    vecs = {role: load_file(str(p / ADAPTER_WEIGHTS)) for role, p in adapters.items()}
    got = load_file(str(out / ADAPTER_WEIGHTS))
    assert set(got) == set(vecs["task"])
    for name, v in got.items():
        want = vecs["task"][name] * (0.5 * (vecs["ref_tgt"][name] / vecs["ref_src"][name] - 1) + 1)
        torch.testing.assert_close(v, want)
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), out)


def test_adapters_of_different_types_or_modules_are_rejected(family, loras, tmp_path):
    ia3 = _ia3(family["llama"]["base"], tmp_path / "ia3", seed=0)
    with pytest.raises(MergeError, match="different types"):
        run_merge(_cfg({**loras, "ref_src": ia3}, {}), tmp_path / "out")
    with pytest.raises(Exception, match="one adapter of each role"):
        MergeConfig.from_dict(
            {
                "merge_method": "adamergex",
                "models": [{"model": str(loras["task"]), "parameters": {"role": "task"}}] * 3,
            }
        )
    assert not (tmp_path / "out").exists()
