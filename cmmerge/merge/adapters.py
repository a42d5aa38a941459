"""AdaMergeX: cross-lingual transfer of a task adapter by adapter arithmetic (Zhao et al. 2024).

AdaMergeX ("AdaMergeX: Cross-Lingual Transfer with Large Language Models via Adaptive Adapter
Merging") moves a task adapter trained in a source language to a target language with the
*language gap* measured by two reference adapters trained on the same (e.g. language-modelling) task
in both languages:

- **LoRA** (additive): with ``ΔW = s · B A`` and peft's scaling ``s = lora_alpha / r``
  (``lora_alpha / √r`` with rsLoRA), ``ΔW_tgt = ΔW_task + λ (ΔW_ref_tgt − ΔW_ref_src)``, computed
  exactly on the dense ``ΔW`` of every module, then either

  - ``mode: svd``: refactorised by truncated SVD to rank ``R`` (``ΔW ≈ U_R Σ_R V_Rᵀ``,
    ``B = U_R Σ_R^½``, ``A = Σ_R^½ V_Rᵀ``; exact when ``R`` ≥ the rank of ``ΔW_tgt``), or
  - ``mode: concat``: kept exact by stacking the factors, ``B = [B_t, B_g, B_s]``,
    ``A = [s_t A_t; λ s_g A_g; −λ s_s A_s]`` (the rank grows to ``r_t + r_g + r_s``).

  The output scaling is folded into ``A`` so that peft's ``lora_alpha / r`` of the written config
  gives back exactly ``ΔW_tgt``.
- **(IA)³** (multiplicative): ``l_tgt = l_task ⊙ (λ (l_ref_tgt ⊘ l_ref_src − 1) + 1)``.

Tensors other than the LoRA factors / (IA)³ vectors (``modules_to_save``, e.g. a classifier) are
copied from the task adapter. The output is a peft adapter folder that ``PeftModel.from_pretrained``
loads on the same base model.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

import cmmerge
from cmmerge.errors import MergeError
from cmmerge.fsutil import atomic_dir, write_json
from cmmerge.merge.checkpoint import FileHasher
from cmmerge.merge.config import TORCH_DTYPES, MergeConfig, ResolvedMerge, params_to_dict, resolved
from cmmerge.merge.registry import MergeMethod, register
from cmmerge.params import require

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ROLES = ("task", "ref_src", "ref_tgt")


@dataclass
class AdaMergeXParams:
    lam: float = field(default=1.0, metadata={"key": "lambda"})
    mode: Literal["svd", "concat"] = "svd"
    rank: int | None = None  # svd: the output rank (default: the task adapter's r)

    def validate(self, where: str) -> None:
        if self.rank is not None:
            require(self.rank >= 1, f"{where}.rank must be a positive integer, got {self.rank}")


@dataclass
class AdapterRole:
    role: Literal["task", "ref_src", "ref_tgt"]


def _check_roles(p: AdaMergeXParams, mps: list[AdapterRole], where: str) -> None:
    roles = sorted(m.role for m in mps)
    require(
        roles == sorted(ROLES),
        f"{where}.models: adamergex needs one adapter of each role task, ref_src, ref_tgt, got {roles}",
    )


# --- the pure formulas -------------------------------------------------------------------------


def lora_scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """peft's LoRA scaling: ``alpha / r`` (``alpha / √r`` with rsLoRA)."""
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def lora_target_delta(deltas: dict[str, torch.Tensor], lam: float) -> torch.Tensor:
    """``ΔW_task + λ (ΔW_ref_tgt − ΔW_ref_src)``."""
    return deltas["task"] + lam * (deltas["ref_tgt"] - deltas["ref_src"])


def svd_factors(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``B, A`` with ``B A`` the best rank-``rank`` approximation of ``delta`` (Eckart–Young)."""
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def concat_factors(
    factors: dict[str, tuple[torch.Tensor, torch.Tensor, float]], lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact factors of ``ΔW_task + λ (ΔW_ref_tgt − ΔW_ref_src)`` by stacking (``(B, A, s)`` per role)."""
    coef = {"task": 1.0, "ref_tgt": lam, "ref_src": -lam}
    b = torch.cat([factors[r][0] for r in ROLES], dim=1)
    a = torch.cat([coef[r] * factors[r][2] * factors[r][1] for r in ROLES], dim=0)
    return b, a


def ia3_target(l_task: torch.Tensor, l_ref_src: torch.Tensor, l_ref_tgt: torch.Tensor, lam: float) -> torch.Tensor:
    """``l_task ⊙ (λ (l_ref_tgt ⊘ l_ref_src − 1) + 1)``."""
    return l_task * (lam * (l_ref_tgt / l_ref_src - 1.0) + 1.0)


# --- adapter folders ---------------------------------------------------------------------------


@dataclass
class Adapter:
    label: str
    folder: Path
    config: dict
    tensors: dict[str, torch.Tensor]


def load_adapter(ref: str, label: str) -> Adapter:
    from safetensors.torch import load_file

    from cmmerge.models import resolve

    folder = Path(resolve(ref)) if not Path(ref).is_dir() else Path(ref)
    cfg_path, w_path = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    if not cfg_path.is_file() or not w_path.is_file():
        raise MergeError(
            f"adapter '{label}': {folder} is not a peft adapter folder ({ADAPTER_CONFIG} and "
            f"{ADAPTER_WEIGHTS} expected)"
        )
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MergeError(f"adapter '{label}': {cfg_path} is not valid JSON ({exc.msg})") from None
    return Adapter(label, folder, config, load_file(str(w_path)))


def _lora_modules(adapter: Adapter) -> dict[str, tuple[str, str]]:
    mods = {}
    for name in adapter.tensors:
        if name.endswith(".lora_A.weight"):
            prefix = name[: -len(".lora_A.weight")]
            mods[prefix] = (name, prefix + ".lora_B.weight")
    return mods


def _check_same(adapters: dict[str, Adapter]) -> str:
    types = {r: a.config.get("peft_type") for r, a in adapters.items()}
    if len(set(types.values())) != 1:
        raise MergeError(f"adamergex: the adapters are of different types: {types}")
    kind = types["task"]
    if kind not in ("LORA", "IA3"):
        raise MergeError(f"adamergex: adapter type {kind!r} is not supported (LORA or IA3)")
    for a in adapters.values():
        if a.config.get("use_dora"):
            raise MergeError(f"adapter '{a.label}': use_dora is not supported by adamergex")
        if a.config.get("alpha_pattern"):
            raise MergeError(f"adapter '{a.label}': alpha_pattern is not supported by adamergex")
        if any(n.endswith(".lora_B.bias") for n in a.tensors):
            raise MergeError(f"adapter '{a.label}': LoRA biases (lora_bias) are not supported by adamergex")
        if a.config.get("fan_in_fan_out") != adapters["task"].config.get("fan_in_fan_out"):
            raise MergeError(f"adapter '{a.label}': fan_in_fan_out differs from the task adapter's")
    merged = [n for n in adapters["task"].tensors if n.endswith((".lora_A.weight", ".lora_B.weight", ".ia3_l"))]
    for r, a in adapters.items():
        names = {n for n in a.tensors if n.endswith((".lora_A.weight", ".lora_B.weight", ".ia3_l"))}
        diff = sorted(set(merged) ^ names)
        if diff:
            raise MergeError(
                f"adapter '{a.label}' ({r}) targets other modules than the task adapter: "
                f"{', '.join(diff[:6])}{' …' if len(diff) > 6 else ''}"
            )
    return kind


def _merge_lora(adapters: dict[str, Adapter], p: AdaMergeXParams, compute: torch.dtype, out_dtype):
    task = adapters["task"]
    out: dict[str, torch.Tensor] = {}
    ranks: dict[str, int] = {}
    svd_rank = p.rank or int(task.config.get("r", 8))
    for prefix, (a_name, b_name) in sorted(_lora_modules(task).items()):
        factors = {}
        for role, ad in adapters.items():
            a, b = ad.tensors[a_name].to(compute), ad.tensors[b_name].to(compute)
            if b.shape[1] != a.shape[0] or a.dim() != 2:
                raise MergeError(
                    f"adapter '{ad.label}': {prefix} has LoRA factors of shapes {list(b.shape)} · "
                    f"{list(a.shape)}; only 2-d (linear) LoRA layers are supported"
                )
            s = lora_scaling(float(ad.config.get("lora_alpha", 8)), a.shape[0], bool(ad.config.get("use_rslora")))
            factors[role] = (b, a, s)
        shapes = {r: (f[0].shape[0], f[1].shape[1]) for r, f in factors.items()}
        if len(set(shapes.values())) != 1:
            raise MergeError(f"adamergex: {prefix} has ΔW of different shapes across adapters: {shapes}")
        if p.mode == "svd":
            delta = lora_target_delta({r: f[2] * f[0] @ f[1] for r, f in factors.items()}, p.lam)
            if svd_rank > min(delta.shape):
                raise MergeError(f"{prefix}: rank {svd_rank} exceeds min{tuple(delta.shape)} of ΔW")
            b, a = svd_factors(delta, svd_rank)
        else:
            b, a = concat_factors(factors, p.lam)
        out[a_name], out[b_name] = a, b
        ranks[prefix] = a.shape[0]
    r_out = Counter(ranks.values()).most_common(1)[0][0] if ranks else svd_rank
    rank_pattern = {}
    for prefix, r in ranks.items():
        # peft will scale by lora_alpha / r = r_out / r: fold the inverse into A so B·A·scale = ΔW
        a_name = prefix + ".lora_A.weight"
        out[a_name] = out[a_name] * (r / r_out)
        if r != r_out:
            rank_pattern[prefix.removeprefix("base_model.model.")] = r
    config = dict(task.config)
    config.update(r=r_out, lora_alpha=r_out, use_rslora=False, rank_pattern=rank_pattern, alpha_pattern={})
    return {k: v.to(out_dtype).contiguous() for k, v in out.items()}, config


def _merge_ia3(adapters: dict[str, Adapter], p: AdaMergeXParams, compute: torch.dtype, out_dtype):
    out = {}
    for name in adapters["task"].tensors:
        if not name.endswith(".ia3_l"):
            continue
        ls = {r: a.tensors[name].to(compute) for r, a in adapters.items()}
        if len({tuple(t.shape) for t in ls.values()}) != 1:
            raise MergeError(f"adamergex: {name} has different shapes across adapters")
        if bool((ls["ref_src"] == 0).any()):
            raise MergeError(
                f"adapter '{adapters['ref_src'].label}': {name} has zeros, so l_ref_tgt ⊘ l_ref_src is undefined"
            )
        out[name] = ia3_target(ls["task"], ls["ref_src"], ls["ref_tgt"], p.lam).to(out_dtype).contiguous()
    return out, dict(adapters["task"].config)


def run_adapter_merge(cfg: MergeConfig | ResolvedMerge, out_dir: Path) -> Path:
    """Run AdaMergeX as ``cfg`` says (resolved as :func:`~cmmerge.merge.engine.run_merge` resolves it); write
    a peft adapter folder to ``out_dir`` atomically."""
    from safetensors.torch import save_file

    from cmmerge.errors import CmmergeError

    merge = resolved(cfg)
    cfg = merge.config
    p: AdaMergeXParams = merge.params
    adapters = {}
    for i, (spec, mp) in enumerate(zip(cfg.models, merge.model_params, strict=True)):
        try:
            adapters[mp.role] = load_adapter(spec.model, spec.label)
        except CmmergeError as exc:
            raise type(exc)(f"{merge.where}.models[{i}].model: {exc}") from None
    kind = _check_same(adapters)
    compute = TORCH_DTYPES[cfg.dtype]
    task_dtype = next((t.dtype for t in adapters["task"].tensors.values() if t.is_floating_point()), torch.float32)
    out_dtype = TORCH_DTYPES[cfg.out_dtype] if cfg.out_dtype else task_dtype
    merged, config = (_merge_lora if kind == "LORA" else _merge_ia3)(adapters, p, compute, out_dtype)
    for name, t in merged.items():
        if not bool(torch.isfinite(t).all()):
            raise MergeError(f"merged adapter tensor {name} has NaN/Inf values")
    tensors = {n: t.contiguous() for n, t in adapters["task"].tensors.items()}
    tensors.update(merged)
    with atomic_dir(out_dir) as tmp:
        save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        manifest = {
            "cmmerge_version": cmmerge.__version__,
            "method": merge.method.name,
            "adapter_type": kind,
            "parameters": params_to_dict(p),
            "models": [
                {
                    "role": role,
                    "label": ad.label,
                    "path": str(ad.folder),
                    "sha256": {
                        ADAPTER_WEIGHTS: FileHasher(ad.folder / ADAPTER_WEIGHTS, 0).hexdigest(),
                        ADAPTER_CONFIG: FileHasher(ad.folder / ADAPTER_CONFIG, 0).hexdigest(),
                    },
                }
                for role, ad in adapters.items()
            ],
            "config": cfg.to_dict(),
            "copied_from_task": sorted(set(tensors) - set(merged)),
        }
        write_json(tmp / "merge_manifest.json", manifest)
    log.info("wrote adapter %s", out_dir)
    return out_dir


register(
    MergeMethod(
        "adamergex",
        "AdaMergeX: task_src + λ (ref_tgt − ref_src) on LoRA ΔW (SVD or exact concat) or (IA)³ vectors",
        AdaMergeXParams,
        AdapterRole,
        level="adapter",
        needs_base=False,
        min_models=3,
        max_models=3,
        check_models=_check_roles,
    )
)
