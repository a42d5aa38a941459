"""The streaming engine on tiny checkpoints: results equal the formulas, the outputs load, the manifest
records the inputs, shards are written like save_pretrained's, and layer swapping / reverting pick
the right blocks on BERT, XLM-R and Llama layouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from cmmerge.merge import MANIFEST, MergeConfig, run_merge
from cmmerge.merge.layers import BlockLayout
from cmmerge.merge.task_vectors import merge_task_vectors

from .helpers import ARCHS, weights, write_variant

BLOCK_PREFIX = {"bert": "bert.encoder.layer.", "xlmr": "roberta.encoder.layer.", "llama": "model.layers."}


def _cfg(method: str, models: list, base: Path | None = None, params: dict | None = None, **extra) -> MergeConfig:
    data = {
        "merge_method": method,
        "models": [{"model": str(m), "parameters": p} for m, p in models],
        "parameters": params or {},
        **extra,
    }
    if base is not None:
        data["base_model"] = str(base)
    return MergeConfig.from_dict(data)


@pytest.mark.parametrize("arch", ARCHS)
def test_task_arithmetic_checkpoint_equals_formula_and_loads(family, tmp_path, arch):
    from transformers import AutoModel

    f = family[arch]
    out = run_merge(
        _cfg("task_arithmetic", [(f["a"], {"weight": 0.7}), (f["b"], {"weight": -0.3})], f["base"], {"lambda": 0.5}),
        tmp_path / "ta",
    )
    b, a, c, got = weights(f["base"]), weights(f["a"]), weights(f["b"]), weights(out)
    assert set(got) == set(b)
    for name, t in b.items():
        if t.is_floating_point():
            want = t + 0.5 * (0.7 * (a[name] - t) - 0.3 * (c[name] - t))
            torch.testing.assert_close(got[name], want, rtol=0, atol=1e-6)
        else:
            assert torch.equal(got[name], t)  # integer buffers are copied from the base
    AutoModel.from_pretrained(out)  # a save_pretrained-compatible folder
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["method"] == "task_arithmetic"
    assert manifest["parameters"] == {"lambda": 0.5}
    assert [m["parameters"]["weight"] for m in manifest["models"]] == [0.7, -0.3]
    digest = hashlib.sha256((f["base"] / "model.safetensors").read_bytes()).hexdigest()
    assert manifest["base_model"]["sha256"] == {"model.safetensors": digest}
    assert manifest["cmmerge_version"]
    assert not list(tmp_path.glob(".ta.tmp-*"))  # the temporary folder was renamed away


def test_ties_and_dare_through_the_engine_equal_the_kernels(family, tmp_path):
    f = family["llama"]
    b, a, c = weights(f["base"]), weights(f["a"]), weights(f["b"])
    out = run_merge(
        _cfg("ties", [(f["a"], {"density": 0.3}), (f["b"], {"weight": 0.5})], f["base"], {"density": 0.6}),
        tmp_path / "ties",
    )
    got = weights(out)
    for name, t in b.items():
        want = merge_task_vectors(
            t, [a[name], c[name]], [1.0, 0.5], trim="magnitude", densities=[0.3, 0.6], consensus="total"
        )
        torch.testing.assert_close(got[name], want, rtol=0, atol=0)
    # DARE is seeded per (tensor, model): the same seed gives the same checkpoint, another seed another
    models = [(f["a"], {}), (f["b"], {})]
    d1 = weights(run_merge(_cfg("dare_linear", models, f["base"], {"density": 0.5, "seed": 1}), tmp_path / "d1"))
    d2 = weights(run_merge(_cfg("dare_linear", models, f["base"], {"density": 0.5, "seed": 1}), tmp_path / "d2"))
    d3 = weights(run_merge(_cfg("dare_ties", models, f["base"], {"density": 0.5, "seed": 2}), tmp_path / "d3"))
    name = "model.layers.0.mlp.up_proj.weight"
    assert all(torch.equal(d1[k], d2[k]) for k in d1)
    assert not torch.equal(d1[name], d3[name])


def test_linear_needs_no_base_and_bf16_output_and_shards(family, tmp_path):
    from transformers import AutoModelForCausalLM

    f = family["llama"]
    out = run_merge(
        _cfg(
            "linear",
            [(f["a"], {"weight": 1.0}), (f["b"], {"weight": 3.0})],
            out_dtype="bfloat16",
            max_shard_size="20KB",
        ),
        tmp_path / "soup",
    )
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    with safe_open(str(out / shards[0]), "pt") as fh:  # the files are plain safetensors
        assert fh.get_tensor(next(iter(fh.keys()))).dtype == torch.bfloat16
    a, c, got = weights(f["a"]), weights(f["b"]), weights(out)
    for name in a:
        torch.testing.assert_close(got[name], ((a[name] + 3 * c[name]) / 4).bfloat16(), rtol=0, atol=0)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    # a sharded checkpoint is read as an input too (index + several files), and hashed per shard
    again = run_merge(_cfg("task_arithmetic", [(out, {})], f["a"]), tmp_path / "again")
    merged_again = weights(again)
    for name, t in got.items():
        torch.testing.assert_close(merged_again[name], t.float(), rtol=0, atol=1e-6)
    shas = json.loads((again / MANIFEST).read_text())["models"][0]["sha256"]
    assert sorted(shas) == shards


def test_out_dir_is_replaced_atomically(family, tmp_path):
    f = family["bert"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    (out / MANIFEST).write_text("{}")  # an earlier merge's output: replaced without --force (test_output_safety.py)
    run_merge(_cfg("task_arithmetic", [(f["a"], {})], f["base"]), out)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- layer swapping ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_swap_takes_blocks_from_the_right_expert(family, tmp_path, arch):
    f = family[arch]
    params = {"bottom": 1, "top": 2, "transition": 1, "transition_weight": 0.25, "embeddings_from": "inner"}
    out = run_merge(
        _cfg("layer_swap", [(f["a"], {"role": "outer"}), (f["b"], {"role": "inner"})], params=params),
        tmp_path / "swap",
    )
    outer, inner, got = weights(f["a"]), weights(f["b"]), weights(out)
    layout = BlockLayout.detect(got)
    assert (layout.prefix, layout.num_blocks) == (BLOCK_PREFIX[arch], 6)
    # 6 blocks: outer 0 | blend 1 | inner 2 | blend 3 | outer 4-5
    alpha = {0: 1.0, 1: 0.25, 2: 0.0, 3: 0.25, 4: 1.0, 5: 1.0}
    seen = set()
    for name, t in got.items():
        if not t.is_floating_point():
            continue
        part = layout.part(name)
        if part == "block":
            a = alpha[layout.block_index(name)]
            seen.add(layout.block_index(name))
        else:
            a = 0.0 if part == "embeddings" else 1.0  # embeddings from inner; head (outer) is the default
        want = a * outer[name] + (1 - a) * inner[name]
        torch.testing.assert_close(t, want, rtol=0, atol=1e-6, msg=name)
    assert seen == set(range(6))


def test_layer_swap_rejects_too_many_blocks(family, tmp_path):
    from cmmerge.errors import MergeError

    f = family["llama"]
    cfg = _cfg(
        "layer_swap",
        [(f["a"], {"role": "outer"}), (f["b"], {"role": "inner"})],
        params={"bottom": 3, "top": 3, "transition": 1},
    )
    with pytest.raises(MergeError, match="exceeds the 6 blocks"):
        run_merge(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- reverting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_revert_block_range_and_embeddings(family, tmp_path, arch):
    f = family[arch]
    params = {"block_range": [-2, -1], "blocks": [0], "embeddings": True}
    out = run_merge(_cfg("revert", [(f["a"], {})], f["base"], params), tmp_path / "rev")
    base, tuned, got = weights(f["base"]), weights(f["a"]), weights(out)
    layout = BlockLayout.detect(got)
    for name, t in got.items():
        part = layout.part(name)
        reverted = (part == "block" and layout.block_index(name) in {0, 4, 5}) or part == "embeddings"
        assert torch.equal(t, base[name] if reverted else tuned[name]), name


def test_revert_smallest_fraction(family, tmp_path):
    f = family["xlmr"]
    out = run_merge(_cfg("revert", [(f["a"], {})], f["base"], {"fraction": 0.4}), tmp_path / "rev")
    base, tuned, got = weights(f["base"]), weights(f["a"]), weights(out)
    name = "roberta.encoder.layer.2.intermediate.dense.weight"
    delta = tuned[name] - base[name]
    kept = got[name] != base[name]
    n = delta.numel()
    assert int(kept.sum()) == n - int(0.4 * n)
    # every reverted update is no larger than every kept one
    assert delta.abs()[~kept].max() <= delta.abs()[kept].min()
    torch.testing.assert_close(got[name][kept], tuned[name][kept], rtol=0, atol=1e-6)


# --- alignment policies --------------------------------------------------------------------------


def test_prefix_alignment_and_missing_head_as_base(family, tmp_path):
    """A classifier fine-tune saved without the MLM head (and with its own classifier) merges into an
    MLM base when missing_tensors: base; the classifier is dropped and all of it is in the manifest."""
    f = family["bert"]

    def no_head(name: str, t: torch.Tensor):
        return None if name.startswith("cls.") else t

    ft = write_variant(f["a"], tmp_path / "cls_ft", no_head)
    with pytest.raises(Exception, match="missing_tensors: base"):
        run_merge(_cfg("task_arithmetic", [(ft, {})], f["base"]), tmp_path / "x")
    out = run_merge(_cfg("task_arithmetic", [(ft, {})], f["base"], missing_tensors="base"), tmp_path / "ok")
    got, base, a = weights(out), weights(f["base"]), weights(f["a"])
    assert torch.equal(got["cls.predictions.transform.dense.weight"], base["cls.predictions.transform.dense.weight"])
    name = "bert.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(got[name], a[name], rtol=0, atol=1e-6)
    report = json.loads((out / MANIFEST).read_text())["models"][0]
    assert "cls.predictions.transform.dense.weight" in report["missing_as_base"]


def test_embedding_size_mismatch_common_rows(family, tmp_path):
    f = family["llama"]

    def grow(name: str, t: torch.Tensor):
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            return torch.cat([t, torch.ones(3, t.shape[1])])
        return t

    big = write_variant(f["a"], tmp_path / "big", grow, config=lambda c: {**c, "vocab_size": c["vocab_size"] + 3})
    with pytest.raises(Exception, match="common_rows"):
        run_merge(_cfg("task_arithmetic", [(big, {})], f["base"]), tmp_path / "x")
    out = run_merge(
        _cfg("task_arithmetic", [(big, {})], f["base"], embedding_size_mismatch="common_rows"), tmp_path / "ok"
    )
    got, a = weights(out), weights(f["a"])
    assert got["model.embed_tokens.weight"].shape == a["model.embed_tokens.weight"].shape
    torch.testing.assert_close(got["model.embed_tokens.weight"], a["model.embed_tokens.weight"], rtol=0, atol=1e-6)
    report = json.loads((out / MANIFEST).read_text())["models"][0]
    assert report["resized"]["lm_head.weight"] == [100, 97]


def test_revert_rejects_blocks_outside_the_model(family, tmp_path):
    from cmmerge.errors import MergeError

    f = family["bert"]
    for params, match in (({"blocks": [6]}, r"\[6\] outside the model's 6 blocks"), ({"block_range": [3, 1]}, "above")):
        with pytest.raises(MergeError, match=match):
            run_merge(_cfg("revert", [(f["a"], {})], f["base"], params), tmp_path / "out")
    assert not (tmp_path / "out").exists()
