"""CPT (MLM / CLM) and fine-tuning on tiny random encoders and decoders, through the real Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cmmerge.models import export_base, load_tokenizer
from cmmerge.train.common import OptimParams
from cmmerge.train.cpt import CptParams, _blocks, run_cpt
from cmmerge.train.finetune import FinetuneParams, run_finetune

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _tiny_optim(**kw) -> OptimParams:
    return OptimParams(max_steps=4, batch_size=8, learning_rate=1e-3, logging_steps=1, **kw)


@pytest.mark.parametrize("kind", ["llama", "xlmr", "bert"])
def test_cpt_changes_weights_and_logs_curves(kind, tiny_models, prepared, tmp_path):
    base = tmp_path / "base"
    info = export_base(str(tiny_models[kind]), base, seed=1)
    assert info["family"] == ("decoder" if kind == "llama" else "encoder")
    out = tmp_path / "cpt"
    summary = run_cpt(base, prepared / "corpus", CptParams(max_length=32, optim=_tiny_optim()), out, tmp_path / "live")
    assert summary["objective"] == ("clm" if kind == "llama" else "mlm")
    assert summary["steps"] == 4 and summary["train_loss"] > 0
    before, after = _weights(base), _weights(out)
    assert set(before) == set(after), "CPT must keep θ_base's tensor layout, so τ = θ_cpt − θ_base is defined"
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    loss_curve = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert loss_curve[0] == "step\tloss" and [int(r.split("\t")[0]) for r in loss_curve[1:]] == [1, 2, 3, 4]


def test_bare_encoder_gets_a_seeded_mlm_head(tiny_models, tmp_path):
    """The embedded default has no MLM head: export_base initialises one, reproducibly from the seed."""
    a = export_base(str(tiny_models["bert"]), tmp_path / "a", seed=3)
    export_base(str(tiny_models["bert"]), tmp_path / "b", seed=3)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert any(k.startswith("cls.") for k in wa) and a["model_type"] == "bert"
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("kind", ["xlmr", "bert", "llama"])
def test_packing_fills_blocks(kind, tiny_models, prepared):
    tok = load_tokenizer(str(tiny_models[kind]))
    lines = (prepared / "corpus" / "train.txt").read_text().splitlines()
    objective = "clm" if kind == "llama" else "mlm"
    packed = _blocks(tok, lines, 32, objective, packing=True)
    assert packed and all(len(b) == 32 for b in packed)
    assert tok.pad_token_id not in {t for b in packed for t in b} or tok.pad_token_id == tok.eos_token_id
    unpacked = _blocks(tok, lines, 32, objective, packing=False)
    non_pad = sum(len(b) for b in unpacked) / (32 * len(unpacked))
    assert non_pad < 0.9, "padding to max length wastes compute on these short sentences"


@pytest.mark.parametrize("kind", ["llama", "xlmr"])
@pytest.mark.parametrize("lora", [False, True])
def test_finetune_trains_a_classifier(kind, lora, tiny_models, prepared, tmp_path):
    base = tmp_path / "base"
    export_base(str(tiny_models[kind]), base)
    optim = _tiny_optim()
    optim.lora.enabled = lora
    params = FinetuneParams(max_length=32, seeds=[5], optim=optim)
    out = tmp_path / "ft"
    summary = run_finetune(
        base, prepared / "prepared" / "task", prepared / "prepared" / "labels.json", params, 5, out, tmp_path / "live"
    )
    assert summary["steps"] == 4 and 0.0 <= summary["dev_macro_f1"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert (out / "adapter" / "adapter_config.json").is_file() == lora
    from cmmerge.eval.predict import Classifier

    preds = Classifier(out).predict(["yaar movie bahut accha tha", "bakwaas"])
    assert set(preds) <= {"negative", "neutral", "positive"}


def test_finetune_is_deterministic(tiny_models, prepared, tmp_path):
    base = tmp_path / "base"
    export_base(str(tiny_models["xlmr"]), base)
    params = FinetuneParams(max_length=32, seeds=[1], optim=_tiny_optim())
    args = (base, prepared / "prepared" / "task", prepared / "prepared" / "labels.json", params, 1)
    run_finetune(*args, tmp_path / "a", tmp_path / "la")
    run_finetune(*args, tmp_path / "b", tmp_path / "lb")
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("kind", ["xlmr", "bert"])
def test_masked_head_loss_equals_the_models_own(kind, tiny_models, tmp_path):
    """Projecting only masked positions gives the loss of projecting all of them, and the same gradients."""
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    from cmmerge.train.cpt import masked_positions_loss, mlm_head

    export_base(str(tiny_models[kind]), tmp_path / "base")
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "base").eval()
    tok = load_tokenizer(str(tmp_path / "base"))
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.3, seed=0)
    batch = collator([tok(t) for t in ["yaar movie bahut accha tha", "ekdum bakwaas service bhai", "kal release hoga"]])
    full = model(**batch).loss
    full.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    head = mlm_head(model)
    assert head is not None
    loss, logits = masked_positions_loss(model, head, batch)
    loss.backward()
    assert logits.shape[0] == int((batch["labels"] != -100).sum())
    torch.testing.assert_close(loss, full)
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-6)
    n = int((batch["labels"] != -100).sum())
    summed, _ = masked_positions_loss(model, head, batch, num_items_in_batch=2 * n)
    torch.testing.assert_close(summed, full / 2)


def test_head_warmup_leaves_the_body_untouched(tiny_models, prepared, tmp_path):
    """During head warm-up only the (randomly initialised) MLM head moves; the encoder keeps θ_base."""
    export_base(str(tiny_models["bert"]), tmp_path / "base", seed=2)
    params = CptParams(max_length=32, head_warmup_steps=3, optim=_tiny_optim())
    params.optim.max_steps = 3
    run_cpt(tmp_path / "base", prepared / "corpus", params, tmp_path / "warm", tmp_path / "live")
    before, after = _weights(tmp_path / "base"), _weights(tmp_path / "warm")
    body = [k for k in before if k.startswith("bert.")]
    head = [k for k in before if k.startswith("cls.")]
    assert body and head
    assert all(torch.equal(before[k], after[k]) for k in body)
    assert any(not torch.equal(before[k], after[k]) for k in head)
    params.optim.max_steps = 5  # two steps past the warm-up: now the body trains too
    run_cpt(tmp_path / "base", prepared / "corpus", params, tmp_path / "full", tmp_path / "live2")
    full = _weights(tmp_path / "full")
    assert any(not torch.equal(before[k], full[k]) for k in body)


def test_masked_positions_forward_keeps_the_model_a_pretrained_model(tiny_models, tmp_path):
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    from cmmerge.train.cpt import use_masked_positions_loss

    export_base(str(tiny_models["xlmr"]), tmp_path / "base")
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "base").eval()
    tok = load_tokenizer(str(tmp_path / "base"))
    batch = DataCollatorForLanguageModeling(tok, mlm_probability=0.3, seed=1)([tok("yaar kal ka match ekdum mast tha")])
    expected = model(**batch).loss
    assert use_masked_positions_loss(model)
    out = model(**batch)
    torch.testing.assert_close(out.loss, expected)
    assert out.logits.shape[0] == int((batch["labels"] != -100).sum())
    no_labels = model(input_ids=batch["input_ids"])
    assert no_labels.logits.shape[:2] == batch["input_ids"].shape  # inference keeps the usual behaviour
    model.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").is_file()


def test_lora_cpt_keeps_its_adapter_and_merges_it_into_the_weights(tiny_models, prepared, tmp_path):
    """A LoRA CPT run writes the adapter (a reference adapter for AdaMergeX) and θ_base + ΔW as weights."""
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    base = tmp_path / "base"
    export_base(str(tiny_models["xlmr"]), base)
    optim = _tiny_optim()
    optim.learning_rate = 5e-2
    optim.lora.enabled = True
    run_cpt(base, prepared / "corpus", CptParams(max_length=32, optim=optim), tmp_path / "cpt", tmp_path / "live")
    config = json.loads((tmp_path / "cpt" / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    merged, start = _weights(tmp_path / "cpt"), _weights(base)
    moved = {k for k in start if not torch.equal(start[k], merged[k])}
    assert moved and all(k.endswith(("query.weight", "value.weight")) for k in moved), sorted(moved)
    rebuilt = PeftModel.from_pretrained(AutoModelForMaskedLM.from_pretrained(base), tmp_path / "cpt" / "adapter")
    state = rebuilt.merge_and_unload().state_dict()
    assert all(torch.allclose(state[k], merged[k], atol=1e-6) for k in moved)
