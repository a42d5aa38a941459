"""The streaming merge engine: tensor by tensor over safetensors shards, written atomically.

``run_merge(cfg, out_dir)``:

1. resolves the inputs, reads their configs and shard headers, and checks architectures, names and
   shapes (:mod:`.plan`) — every problem is a one-line :class:`~cmmerge.errors.MergeError` before
   anything is written;
2. streams: a loader thread reads the next tensors of every input (and hashes the bytes it reads)
   while the main thread merges the current one and a writer thread appends the previous result to
   its pre-planned shard, so at most a few tensors per input are in memory;
3. checks every input and output tensor for NaN/Inf;
4. writes the base's config (with the output dtype), its generation config, the tokenizer of
   ``tokenizer_source`` and ``merge_manifest.json`` (inputs with SHA-256 of every shard, method,
   typed parameters, policies and what they did, cmmerge version).

All of it goes into a temporary folder beside ``out_dir`` that is renamed over it at the end
(:func:`cmmerge.fsutil.atomic_dir`), so an interrupted or failed merge leaves no partial checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from tqdm.auto import tqdm

import cmmerge
from cmmerge.errors import CmmergeError, MergeError
from cmmerge.fsutil import atomic_dir, check_output, write_json
from cmmerge.merge.checkpoint import DTYPE_NAMES, Checkpoint, OutSpec, ShardedWriter
from cmmerge.merge.config import TORCH_DTYPES, MergeConfig, ResolvedMerge, params_to_dict, parse_size, resolved
from cmmerge.merge.plan import TensorPlan, build_plan
from cmmerge.merge.registry import TensorJob
from cmmerge.models import resolve

log = logging.getLogger(__name__)

MANIFEST = "merge_manifest.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "spiece.model",
    "chat_template.jinja",
    "chat_template.json",
)
_PREFETCH = 2  # at most this many tensors read ahead of the one being merged …
# … and a second one only while the read-ahead stays under this many input bytes: safetensors files
# order tensors by name, so a model's two vocabulary-sized tensors (``lm_head``, ``model.embed_tokens``)
# are often neighbours, and reading both ahead would double the peak memory for no gain in overlap
_PREFETCH_BYTES = 256 * 2**20


def local_folder(ref: str, label: str) -> Path:
    """A model reference as a local folder (the engine reads shards directly, so no hub ids)."""
    name = resolve(ref)
    path = Path(name)
    if not path.is_dir():
        raise MergeError(
            f"model '{label}': '{ref}' is not a local folder; the merge engine reads save_pretrained folders "
            "(download the model first)"
        )
    return path


def run_merge(cfg: MergeConfig | ResolvedMerge, out_dir: str | Path, force: bool = False, inputs: tuple = ()) -> Path:
    """Merge as ``cfg`` says and write the result to ``out_dir`` (atomically); returns ``out_dir``.

    ``cfg`` is a config (resolved here, named "merge config" in messages) or one resolved under the name its
    caller wants in messages (``cfg.resolve("params.yaml: merges.ta")``). ``out_dir`` must not be, contain or
    lie inside an input (the models, ``inputs`` such as the config file), and a non-empty folder without a
    cmmerge manifest is replaced only with ``force`` (:func:`check_output`).
    """
    merge = resolved(cfg)
    cfg = merge.config
    tok = cfg.tokenizer_source if cfg.tokenizer_source != "base" else None
    refs = [cfg.base_model, tok, *(m.model for m in cfg.models), *inputs]
    out_dir = check_output(out_dir, refs, force=force, what="merge output folder")
    if merge.method.level == "adapter":
        from cmmerge.merge.adapters import run_adapter_merge

        return run_adapter_merge(merge, out_dir)
    return _run_tensor_merge(merge, out_dir)


def _open_inputs(merge: ResolvedMerge):
    cfg, where = merge.config, merge.where
    ref_label = "base_model" if cfg.base_model is not None else cfg.models[0].label
    try:
        ref_path = local_folder(cfg.base_model if cfg.base_model is not None else cfg.models[0].model, ref_label)
    except CmmergeError as exc:
        key = "base_model" if cfg.base_model is not None else "models[0].model"
        raise type(exc)(f"{where}.{key}: {exc}") from None
    base = Checkpoint.open(ref_path, ref_label)
    models = []
    for i, spec in enumerate(cfg.models):
        label = spec.label
        try:
            path = local_folder(spec.model, label)
        except CmmergeError as exc:  # name the config key too
            raise type(exc)(f"{where}.models[{i}].model: {exc}") from None
        models.append((label, Checkpoint.open(path, label)))
    return ref_label, ref_path, base, models


def _output_dtype(cfg: MergeConfig, base: Checkpoint) -> torch.dtype:
    if cfg.out_dtype is not None:
        return TORCH_DTYPES[cfg.out_dtype]
    counts = Counter(t.dtype for t in base.tensors.values() if t.is_float)
    return counts.most_common(1)[0][0] if counts else torch.float32


_FINITE_CHUNK = 1 << 22


def _check_finite(t: torch.Tensor, what: str) -> None:
    """Raise a MergeError if ``t`` has NaN/Inf entries.

    Checked in chunks: ``torch.isfinite`` on a bf16 tensor makes a float32 copy and a bool mask, which
    for a vocabulary-sized tensor would add 2.5× its size to the peak memory.
    """
    if not t.is_floating_point() or not t.numel():
        return
    flat = t.reshape(-1)
    for start in range(0, flat.numel(), _FINITE_CHUNK):
        if not bool(torch.isfinite(flat[start : start + _FINITE_CHUNK]).all()):
            n_bad = int((~torch.isfinite(flat)).sum())
            raise MergeError(f"{what} has {n_bad} NaN/Inf value(s) of {t.numel()}")


def _run_tensor_merge(merge: ResolvedMerge, out_dir: Path) -> Path:
    cfg, method, params, model_params = merge.config, merge.method, merge.params, merge.model_params
    ref_label, ref_path, base, models = _open_inputs(merge)
    try:
        plan = build_plan(base, ref_label, models, cfg.missing_tensors, cfg.embedding_size_mismatch, cfg.align_prefix)
        if method.check_plan is not None:  # the method's own checks against the tensors (e.g. block numbers)
            method.check_plan(plan, params, merge.where)
        tok_dir = _tokenizer_dir(merge, ref_path)
        out_dtype = _output_dtype(cfg, base)
        compute_dtype = TORCH_DTYPES[cfg.dtype]
        specs = [OutSpec(t.name, t.base.shape, out_dtype if t.merged else t.base.dtype) for t in plan.tensors]
        log.info(
            "merging %d tensors of %d model(s) with %s into %s (%s)",
            len(specs),
            len(models),
            method.name,
            out_dir,
            DTYPE_NAMES[out_dtype],
        )
        with atomic_dir(out_dir) as tmp:
            writer = ShardedWriter(tmp, specs, parse_size(cfg.max_shard_size, "max_shard_size"))
            _stream(plan, base, models, method, params, model_params, writer, compute_dtype, out_dtype)
            shard_names = writer.close()
            _write_config(ref_path, tmp, out_dtype)
            tok_files = _copy_tokenizer(tok_dir, tmp)
            manifest = _manifest(merge, ref_label, base, models, plan, shard_names, out_dtype, tok_dir, tok_files)
            write_json(tmp / MANIFEST, manifest)
    finally:
        base.close()
        for _, ckpt in models:
            ckpt.close()
    log.info("wrote %s", out_dir)
    return out_dir


def _load(tp: TensorPlan, base: Checkpoint, models, need_base: bool):
    """Read the inputs of one output tensor (runs in the loader thread)."""
    base_t = (
        base.read(tp.name)
        if (need_base or not tp.merged or any(s.name is None or s.rows for s in tp.sources))
        else None
    )
    if not tp.merged:
        return base_t, []
    if base_t is not None:
        _check_finite(base_t, f"base tensor {tp.name}")
    model_ts = []
    for (label, ckpt), src in zip(models, tp.sources, strict=True):
        if src.name is None:
            model_ts.append(base_t)
            continue
        t = ckpt.read(src.name)
        _check_finite(t, f"model '{label}': tensor {src.name}")
        if src.rows is not None:
            full = base_t.clone().to(t.dtype)
            full[: src.rows] = t[: src.rows]
            t = full
        model_ts.append(t)
    return base_t, model_ts


def _stream(plan, base, models, method, params, model_params, writer, compute_dtype, out_dtype) -> None:
    jobs = plan.tensors
    total = sum(t.base.nbytes for t in jobs)

    def input_bytes(tp: TensorPlan) -> int:
        return tp.base.nbytes * (1 + len(models))

    with (
        ThreadPoolExecutor(1, thread_name_prefix="cmmerge-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="cmmerge-write") as writer_pool,
        tqdm(total=total, unit="B", unit_scale=True, desc=f"merge {method.name}", disable=None) as bar,
    ):
        pending: deque[tuple[int, Future]] = deque()
        next_job = 0

        def read_ahead(current: int) -> None:
            # The next tensor is read while the current one merges, unless both are big (two
            # vocabulary-sized neighbours, see _PREFETCH_BYTES); a further one only within the budget.
            nonlocal next_job
            while next_job < len(jobs) and len(pending) < _PREFETCH:
                nxt = input_bytes(jobs[next_job])
                if pending:
                    if sum(input_bytes(jobs[j]) for j, _ in pending) + nxt > _PREFETCH_BYTES:
                        break
                elif current < len(jobs) and min(input_bytes(jobs[current]), nxt) > _PREFETCH_BYTES:
                    break
                pending.append((next_job, reader.submit(_load, jobs[next_job], base, models, method.needs_base)))
                next_job += 1

        write: Future | None = None
        for i, tp in enumerate(jobs):
            if not pending:  # nothing read ahead: read this one now
                read_ahead(len(jobs))
            j, future = pending.popleft()
            assert j == i  # the reader runs jobs in order
            base_t, model_ts = future.result()
            del future  # it holds the inputs too
            read_ahead(i)
            if tp.merged:
                job = TensorJob(tp.name, base_t, model_ts, plan.layout, compute_dtype, out_dtype)
                out = method.merge(job, params, model_params)
                del job
                _check_finite(out, f"merged tensor {tp.name}")
            else:
                out = base_t
            # drop every reference to the inputs now: otherwise they live on while the next tensor is read
            del base_t, model_ts
            if write is not None:
                write.result()
            write = writer_pool.submit(writer.write, tp.name, out)
            del out
            bar.update(tp.base.nbytes)
        if write is not None:
            write.result()


def _write_config(ref_path: Path, tmp: Path, out_dtype: torch.dtype) -> None:
    config = json.loads((ref_path / "config.json").read_text(encoding="utf-8"))
    dtype_name = str(out_dtype).removeprefix("torch.")
    config["dtype"] = dtype_name
    if "torch_dtype" in config:
        config["torch_dtype"] = dtype_name
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if (ref_path / "generation_config.json").is_file():
        shutil.copy2(ref_path / "generation_config.json", tmp / "generation_config.json")


def _tokenizer_dir(merge: ResolvedMerge, ref_path: Path) -> Path:
    cfg = merge.config
    src = cfg.tokenizer_source
    if src == "base":
        return ref_path
    for spec in cfg.models:
        if src in (spec.name, spec.model):
            return local_folder(spec.model, spec.label)
    return local_folder(src, f"{merge.where}.tokenizer_source")


def _copy_tokenizer(src: Path, tmp: Path) -> list[str]:
    copied = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    for name in copied:
        shutil.copy2(src / name, tmp / name)
    if not copied:
        log.warning("no tokenizer files in %s: the merged folder has none", src)
    return copied


def _manifest(merge: ResolvedMerge, ref_label, base, models, plan, shard_names, out_dtype, tok_dir, tok_files) -> dict:
    cfg = merge.config

    def describe(label: str, ckpt: Checkpoint) -> dict:
        return {
            "label": label,
            "path": str(ckpt.folder),
            "model_type": ckpt.config.get("model_type"),
            "sha256": ckpt.digests(),
        }

    inputs = []
    for (label, ckpt), report, mp in zip(models, plan.reports, merge.model_params, strict=True):
        entry = describe(label, ckpt)
        entry["parameters"] = params_to_dict(mp)
        entry.update(dataclasses.asdict(report))
        entry.pop("label", None)
        entry["label"] = label
        inputs.append(entry)
    return {
        "cmmerge_version": cmmerge.__version__,
        "method": merge.method.name,
        "parameters": params_to_dict(merge.params),
        "base_model": describe(ref_label, base),
        "models": inputs,
        "config": cfg.to_dict(),
        "dtype": cfg.dtype,
        "out_dtype": DTYPE_NAMES[out_dtype],
        "tokenizer_source": {"path": str(tok_dir), "files": tok_files},
        "block_layout": {"prefix": plan.layout.prefix, "num_blocks": plan.layout.num_blocks},
        "tensors": len(plan.tensors),
        "shards": shard_names,
    }
