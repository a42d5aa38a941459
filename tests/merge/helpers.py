"""Hand-made checkpoints for the merge tests: tiny random models of three layouts and perturbed copies.

The models are built with ``from_config`` (no tokenizer, no download) and saved with
``save_pretrained``; perturbed copies are written tensor by tensor, so a test controls exactly which
tensors differ from the base and by how much.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ARCHS = ("bert", "xlmr", "llama")


def tiny_model(arch: str, out: Path, layers: int = 6, seed: int = 0) -> Path:
    """A random ``arch`` checkpoint with ``layers`` blocks and hidden size 16 (a few hundred kB)."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        LlamaConfig,
        LlamaForCausalLM,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
    )

    torch.manual_seed(seed)
    common = dict(vocab_size=97, hidden_size=16, intermediate_size=32, num_hidden_layers=layers, num_attention_heads=2)
    if arch == "bert":
        model = BertForMaskedLM(BertConfig(max_position_embeddings=64, **common))
    elif arch == "xlmr":
        model = XLMRobertaForMaskedLM(XLMRobertaConfig(max_position_embeddings=66, pad_token_id=1, **common))
    elif arch == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=False, **common)
        )
    else:
        raise ValueError(arch)
    model.save_pretrained(out)
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a (possibly sharded) safetensors checkpoint."""
    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def write_variant(
    src: Path,
    dst: Path,
    change: Callable[[str, torch.Tensor], torch.Tensor | None],
    config: Callable[[dict], dict] | None = None,
) -> Path:
    """Copy checkpoint ``src`` to ``dst`` with every tensor replaced by ``change(name, t)``
    (``None`` drops it) and the config optionally edited; one shard."""
    dst.mkdir(parents=True)
    tensors = {}
    for name, t in weights(src).items():
        new = change(name, t.clone())
        if new is not None:
            tensors[name] = new.contiguous()
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps(config(cfg) if config else cfg))
    for extra in ("generation_config.json",):
        if (src / extra).is_file():
            shutil.copy2(src / extra, dst / extra)
    return dst


def perturbed(src: Path, dst: Path, seed: int, scale: float = 0.01) -> Path:
    """``θ + N(0, scale²)`` on every float tensor of ``src``."""
    gen = torch.Generator().manual_seed(seed)

    def change(name: str, t: torch.Tensor) -> torch.Tensor:
        if not t.is_floating_point():
            return t
        return t + scale * torch.randn(t.shape, generator=gen).to(t.dtype)

    return write_variant(src, dst, change)
