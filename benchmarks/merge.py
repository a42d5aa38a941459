"""Benchmark the merge engine against mergekit on Llama-shaped checkpoints of about 0.5B parameters.

    python benchmarks/merge.py --mergekit /work/venv-mergekit/bin/mergekit-yaml
    MERGEKIT_YAML=/path/to/mergekit-yaml python benchmarks/merge.py --layers 2   # a quick smoke run
    python benchmarks/merge.py --micro   # cmmerge's TIES pieces vs peft's merge_utils, one 4096×1536 tensor

Builds three bf16 checkpoints with the tensor names of ``LlamaForCausalLM``, sharded like
``save_pretrained`` writes them (a random base ``θ_0 ~ N(0, 0.02²)`` and two perturbed copies
``θ_i = θ_0 + N(0, 0.002²)``), then merges them in one run with both tools on the same inputs:

- task arithmetic, ``θ_0 + Σ_i 0.5 τ_i`` (mergekit's ``normalize`` is off for it by default);
- TIES with density 0.2, weights 1 and λ 1 (so mergekit's weight normalisation and peft's count
  normalisation coincide; see ``docs/merge.md``).

Both compute in float32 and write bfloat16. Each merge runs as a fresh child process; wall time is
measured around it and its peak RSS comes from ``os.wait4`` (the child's own ``ru_maxrss``, which
includes any descendants it waited for). The two outputs are then compared tensor by tensor (max
absolute difference, and the fraction of entries that differ).

mergekit is *not* a cmmerge dependency: install it in its own venv and pass its ``mergekit-yaml``
(``--mergekit`` or ``$MERGEKIT_YAML``). Without it only cmmerge is measured.

One JSON object per measurement, and the last line one JSON object with all of them and the ratios.
The checkpoints (about 3 GB, plus the outputs) live in a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARD_BYTES = 500 * 10**6
# the inputs have no tokenizer; --out-shard-size counts parameters (2B: one file here, as cmmerge's 2GB)
MERGEKIT_FLAGS = ["--no-copy-tokenizer", "--out-shard-size", "2B"]


def llama_shapes(vocab: int, hidden: int, inter: int, layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Tensor names and shapes of a ``LlamaForCausalLM`` (untied head, full multi-head attention)."""
    out = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (hidden,)),
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.k_proj.weight", (hidden, hidden)),
            (p + "self_attn.v_proj.weight", (hidden, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "post_attention_layernorm.weight", (hidden,)),
            (p + "mlp.gate_proj.weight", (inter, hidden)),
            (p + "mlp.up_proj.weight", (inter, hidden)),
            (p + "mlp.down_proj.weight", (hidden, inter)),
        ]
    out += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return out


def write_checkpoint(folder: Path, shapes, seed: int, base_seed: int | None, config: dict) -> None:
    """Write one bf16 checkpoint in ~500 MB shards, one shard in memory at a time.

    A perturbed copy regenerates the base from ``base_seed`` (same generator, same order) and adds
    its own noise, so no full model is ever held in memory here either.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    gen_base = torch.Generator().manual_seed(base_seed if base_seed is not None else seed)
    gen_noise = torch.Generator().manual_seed(seed)
    groups: list[list[str]] = []
    current: dict[str, torch.Tensor] = {}
    size = 0

    def flush() -> None:
        save_file(current, str(folder / f"part-{len(groups)}.safetensors"), metadata={"format": "pt"})
        groups.append(list(current))
        current.clear()

    for name, shape in shapes:
        t = 0.02 * torch.randn(shape, generator=gen_base)
        if name.endswith("norm.weight"):
            t += 1.0  # RMSNorm gains sit around 1
        if base_seed is not None:
            t += 0.002 * torch.randn(shape, generator=gen_noise)
        t = t.to(torch.bfloat16)
        if current and size + 2 * t.numel() > SHARD_BYTES:
            flush()
            size = 0
        current[name] = t
        size += 2 * t.numel()
    flush()
    weight_map = {}
    for i, names in enumerate(groups):
        dst = folder / f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        (folder / f"part-{i}.safetensors").rename(dst)
        weight_map.update(dict.fromkeys(names, dst.name))
    total = sum(2 * _numel(s) for _, s in shapes)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def llama_config(vocab: int, hidden: int, inter: int, layers: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": hidden // 64,
        "num_key_value_heads": hidden // 64,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def merge_config(method: str, base: Path, models: list[Path], tool: str) -> dict:
    """The same merge, written for either tool (the formats agree on everything used here)."""
    if method == "task_arithmetic":
        entries = [{"model": str(m), "parameters": {"weight": 0.5}} for m in models]
        params: dict = {}
    else:
        entries = [{"model": str(m), "parameters": {"weight": 1.0, "density": 0.2}} for m in models]
        params = {"normalize": True} if tool == "mergekit" else {"lambda": 1.0}
    cfg = {
        "merge_method": method,
        "base_model": str(base),
        "models": entries,
        "dtype": "float32",
        "out_dtype": "bfloat16",
    }
    if params:
        cfg["parameters"] = params
    return cfg


def measure(cmd: list[str], env: dict, log: Path) -> tuple[float, float]:
    """Run ``cmd`` as a fresh child; its wall time (s) and peak RSS (GB, the child's ``ru_maxrss``).

    ``os.wait4`` returns the resource usage of exactly this child (and the descendants it waited
    for), unlike ``RUSAGE_CHILDREN``, which keeps the maximum over every child so far. Output goes to
    ``log`` (a pipe could fill up with progress bars and block the child).
    """
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return wall, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def run_tool(tool: str, method: str, work: Path, inputs, mergekit: str | None) -> tuple[Path, float, float]:
    import yaml

    base, models = inputs
    cfg_path = work / f"{tool}-{method}.yaml"
    cfg_path.write_text(yaml.safe_dump(merge_config(method, base, models, tool), sort_keys=False))
    out = work / f"out-{tool}-{method}"
    if tool == "cmmerge":
        cmd = [sys.executable, "-m", "cmmerge", "merge", str(cfg_path), str(out)]
    else:
        cmd = [mergekit, str(cfg_path), str(out), *MERGEKIT_FLAGS]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    wall, rss = measure(cmd, env, work / f"{tool}-{method}.log")
    return out, wall, rss


def compare(a: Path, b: Path) -> tuple[float, float]:
    """Max |a − b| over all tensors of two checkpoints, and the fraction of entries that differ."""
    from safetensors import safe_open

    def index(folder: Path) -> dict[str, Path]:
        idx = folder / "model.safetensors.index.json"
        if idx.is_file():
            return {k: folder / v for k, v in json.loads(idx.read_text())["weight_map"].items()}
        out = {}
        for f in folder.glob("*.safetensors"):
            with safe_open(str(f), "pt") as fh:
                out.update(dict.fromkeys(fh.keys(), f))
        return out

    ia, ib = index(a), index(b)
    if set(ia) != set(ib):
        raise RuntimeError(f"outputs differ in tensor names: {sorted(set(ia) ^ set(ib))[:5]}")
    worst, n_diff, n_all = 0.0, 0, 0
    for name in sorted(ia):
        with safe_open(str(ia[name]), "pt") as fa, safe_open(str(ib[name]), "pt") as fb:
            x, y = fa.get_tensor(name).float(), fb.get_tensor(name).float()
        d = (x - y).abs()
        worst = max(worst, float(d.max()))
        n_diff += int(torch.count_nonzero(d))
        n_all += d.numel()
    return worst, n_diff / n_all


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def micro(rows: int, cols: int, n_models: int = 2, density: float = 0.2) -> list[dict]:
    """Time cmmerge's TIES pieces against peft's ``merge_utils`` on one MLP-sized tensor (float32).

    - trim: ``magnitude_prune`` (selection of the k-th magnitude) vs ``magnitude_based_pruning``
      (``torch.topk``); the outputs must be equal on continuous inputs;
    - elect + disjoint mean: ``disjoint_merge`` (running sums, no stack) vs
      ``calculate_majority_sign_mask`` + ``disjoint_merge`` on the stacked deltas.
    """
    from peft.utils import merge_utils as peft_mu

    from cmmerge.merge.consensus import disjoint_merge
    from cmmerge.merge.sparsify import magnitude_prune

    g = torch.Generator().manual_seed(0)
    deltas = [torch.randn(rows, cols, generator=g) for _ in range(n_models)]
    weights = [1.0] * n_models
    ours = magnitude_prune(deltas[0], density)
    theirs = peft_mu.magnitude_based_pruning(deltas[0], density)
    assert torch.equal(ours, theirs), "trim differs from peft's"
    trimmed = [magnitude_prune(d, density) for d in deltas]

    def peft_merge():
        stacked = torch.stack(trimmed)
        mask = peft_mu.calculate_majority_sign_mask(stacked, "total")
        return peft_mu.disjoint_merge(stacked, mask)

    assert torch.allclose(disjoint_merge(trimmed, weights), peft_merge(), atol=1e-6)
    out = []
    for piece, c, p in (
        (
            "trim",
            lambda: magnitude_prune(deltas[0], density),
            lambda: peft_mu.magnitude_based_pruning(deltas[0], density),
        ),
        ("elect+disjoint_mean", lambda: disjoint_merge(trimmed, weights), peft_merge),
    ):
        tc, tp = _best_of(c), _best_of(p)
        out.append(
            {
                "micro": piece,
                "shape": [rows, cols],
                "cmmerge_s": round(tc, 4),
                "peft_s": round(tp, 4),
                "speedup": round(tp / tc, 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mergekit", default=os.environ.get("MERGEKIT_YAML"), help="path of mergekit's mergekit-yaml")
    ap.add_argument("--layers", type=int, default=14)
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--methods", nargs="+", default=["task_arithmetic", "ties"])
    ap.add_argument("--workdir", help="parent of the temporary folder (default: the system's)")
    ap.add_argument("--micro", action="store_true", help="only time the TIES pieces against peft's merge_utils")
    args = ap.parse_args(argv)
    if args.micro:
        rows = micro(args.intermediate, args.hidden)
        for row in rows:
            print(json.dumps(row), flush=True)
        print(json.dumps({"benchmark": "merge-micro", "measurements": rows}))
        return 0
    tools = ["cmmerge"] + (["mergekit"] if args.mergekit else [])
    if args.mergekit and not Path(args.mergekit).is_file():
        ap.error(f"--mergekit: {args.mergekit} not found")

    shapes = llama_shapes(args.vocab, args.hidden, args.intermediate, args.layers)
    n_params = sum(_numel(s) for _, s in shapes)
    config = llama_config(args.vocab, args.hidden, args.intermediate, args.layers)
    work = Path(tempfile.mkdtemp(prefix="cmmerge-bench-", dir=args.workdir))
    rows = []
    try:
        t0 = time.perf_counter()
        base = work / "base"
        write_checkpoint(base, shapes, seed=0, base_seed=None, config=config)
        models = [work / "ft1", work / "ft2"]
        for i, m in enumerate(models):
            write_checkpoint(m, shapes, seed=i + 1, base_seed=0, config=config)
        print(
            json.dumps({"setup": "checkpoints", "params": n_params, "seconds": round(time.perf_counter() - t0, 1)}),
            flush=True,
        )
        for method in args.methods:
            outs = {}
            for tool in tools:
                out, wall, rss = run_tool(tool, method, work, (base, models), args.mergekit)
                outs[tool] = out
                row = {
                    "method": method,
                    "tool": tool,
                    "wall_s": round(wall, 1),
                    "peak_rss_gb": round(rss, 2),
                    "params": n_params,
                    "threads": torch.get_num_threads(),
                }
                if tool == "mergekit":
                    diff, frac = compare(outs["cmmerge"], out)
                    row.update(max_abs_diff=diff, frac_entries_differing=frac)
                rows.append(row)
                print(json.dumps(row), flush=True)
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary: dict = {"benchmark": "merge", "params": n_params, "measurements": rows}
    by = {(r["method"], r["tool"]): r for r in rows}
    for method in args.methods:
        if (method, "mergekit") in by:
            c, m = by[(method, "cmmerge")], by[(method, "mergekit")]
            summary[f"{method}_time_ratio"] = round(c["wall_s"] / m["wall_s"], 3)
            summary[f"{method}_rss_ratio"] = round(c["peak_rss_gb"] / m["peak_rss_gb"], 3)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
