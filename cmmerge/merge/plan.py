"""Checking inputs against the base and deciding where each output tensor comes from.

Everything here looks only at configs and safetensors headers, so every mismatch is reported before a
single tensor is read or anything is written. The policies (all recorded in the merge manifest):

- **names**: the output has exactly the base's tensors. A model may be saved with or without the
  base's ``base_model_prefix`` (``BertModel``: ``embeddings.…`` vs ``BertForMaskedLM``:
  ``bert.embeddings.…``); with ``align_prefix`` the engine adds or strips one leading name segment
  when that matches more names.
- **tensors a model lacks**: an error listing them (``missing_tensors: error``), or a zero task
  vector, i.e. the base's value stands in for that model (``missing_tensors: base``), which is what
  merging a sequence-classification fine-tune (no MLM/LM head) into an MLM/CLM base needs. An output
  embedding tied to the input embedding (``lm_head.weight``, ``cls.predictions.decoder.weight``,
  omitted by ``save_pretrained``) is first looked up under the input embedding's name.
- **tensors a model has that the base lacks** (a classifier, a pooler): dropped and reported.
- **shapes**: must be equal, except vocabulary-sized tensors (first dimension = the config's
  ``vocab_size``) under ``embedding_size_mismatch: common_rows``: the rows both have are merged and
  rows the model lacks take the base's values (rows beyond the base's vocabulary are dropped).
- **architecture**: every model's ``model_type`` must equal the base's.
- **dtypes**: floating tensors are merged; integer/bool tensors (buffers) are copied from the base.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from cmmerge.errors import MergeError
from cmmerge.merge.checkpoint import Checkpoint, TensorInfo
from cmmerge.merge.layers import BlockLayout

log = logging.getLogger(__name__)

# output embedding → the input embedding it is tied to, when ``tie_word_embeddings`` is on
_TIED_OUTPUTS = {
    "lm_head.weight": ("embed_tokens.weight", "word_embeddings.weight", "wte.weight", "embed_in.weight"),
    "cls.predictions.decoder.weight": ("word_embeddings.weight",),
    "lm_head.decoder.weight": ("word_embeddings.weight",),
    "cls.predictions.decoder.bias": ("cls.predictions.bias",),
    "lm_head.decoder.bias": ("lm_head.bias",),
}
_LIST_MAX = 8


@dataclass
class Source:
    """Where one model's value of one output tensor comes from."""

    name: str | None  # the model's tensor name; None: the base's value (zero task vector)
    rows: int | None = None  # common_rows: take this many leading rows from the model, the rest from the base


@dataclass
class TensorPlan:
    name: str
    base: TensorInfo
    sources: list[Source]

    @property
    def merged(self) -> bool:
        return self.base.is_float


@dataclass
class ModelReport:
    label: str
    prefix_mapping: str = "identity"
    dropped: list[str] = field(default_factory=list)
    missing_as_base: list[str] = field(default_factory=list)
    tied_aliases: dict[str, str] = field(default_factory=dict)
    resized: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class MergePlan:
    tensors: list[TensorPlan]
    layout: BlockLayout
    reports: list[ModelReport]


def _show(names, limit: int = _LIST_MAX) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (f" … and {len(names) - limit} more" if len(names) > limit else "")


def _first_segment(names) -> str | None:
    counts = Counter(n.split(".", 1)[0] for n in names if "." in n)
    return counts.most_common(1)[0][0] if counts else None


def align_names(base_names: list[str], model_names: set[str], enabled: bool = True) -> tuple[dict[str, str], str]:
    """Map base names to a model's names, adding or stripping one leading segment if that fits better."""
    candidates: list[tuple[str, dict[str, str]]] = [("identity", {b: b for b in base_names})]
    if enabled:
        p = _first_segment(model_names)
        if p is not None:
            candidates.append((f"add '{p}.'", {b: f"{p}.{b}" for b in base_names}))
        q = _first_segment(base_names)
        if q is not None:
            strip = {b: (b[len(q) + 1 :] if b.startswith(q + ".") else b) for b in base_names}
            candidates.append((f"strip '{q}.'", strip))
    scored = [(sum(m in model_names for m in mapping.values()), i) for i, (_, mapping) in enumerate(candidates)]
    best = max(scored, key=lambda s: (s[0], -s[1]))[1]
    label, mapping = candidates[best]
    return mapping, label


def _tied_alias(wanted: str, model: Checkpoint) -> str | None:
    if not model.config.get("tie_word_embeddings", True):
        return None
    for out_name, inputs in _TIED_OUTPUTS.items():
        if wanted == out_name or wanted.endswith("." + out_name):
            for cand in sorted(model.tensors):
                if any(cand == i or cand.endswith("." + i) for i in inputs):
                    return cand
    return None


def _vocab_sized(shape: tuple[int, ...], config: dict) -> bool:
    return len(shape) >= 1 and shape[0] == config.get("vocab_size", -1)


def build_plan(
    base: Checkpoint,
    base_label: str,
    models: list[tuple[str, Checkpoint]],
    missing_tensors: str = "error",
    embedding_size_mismatch: str = "error",
    align_prefix: bool = True,
) -> MergePlan:
    """Validate names, shapes and architectures, and decide each output tensor's sources."""
    if not base.tensors:
        raise MergeError(f"model '{base_label}': the checkpoint has no tensors")
    base_type = base.config.get("model_type")
    wrong = [
        f"'{label}' is {ckpt.config.get('model_type')!r}"
        for label, ckpt in models
        if ckpt.config.get("model_type") != base_type
    ]
    if wrong:
        raise MergeError(f"different architectures: the base '{base_label}' is {base_type!r} but model {_show(wrong)}")

    # output order = the base's file order, so every input is read front to back
    base_names = sorted(base.tensors, key=lambda n: (base.tensors[n].file.name, base.tensors[n].start))
    sources: dict[str, list[Source]] = {n: [] for n in base_names}
    reports = []
    missing_all, shape_errors = [], []
    for label, ckpt in models:
        report = ModelReport(label)
        mapping, report.prefix_mapping = align_names(base_names, set(ckpt.tensors), align_prefix)
        if report.prefix_mapping != "identity":
            log.info("model '%s': tensor names aligned to the base by %s", label, report.prefix_mapping)
        used = set()
        for name in base_names:
            b = base.tensors[name]
            want = mapping[name]
            if want not in ckpt.tensors:
                alias = _tied_alias(want, ckpt)
                if alias is not None:
                    report.tied_aliases[name] = alias
                    want = alias
            if want not in ckpt.tensors:
                if b.is_float:
                    missing_all.append((label, name))
                report.missing_as_base.append(name)
                sources[name].append(Source(None))
                continue
            used.add(want)
            m = ckpt.tensors[want]
            if m.shape == b.shape:
                sources[name].append(Source(want))
            elif (
                embedding_size_mismatch == "common_rows"
                and m.shape[1:] == b.shape[1:]
                and _vocab_sized(b.shape, base.config)
                and _vocab_sized(m.shape, ckpt.config)
            ):
                report.resized[name] = [m.shape[0], b.shape[0]]
                sources[name].append(Source(want, rows=min(m.shape[0], b.shape[0])))
            else:
                shape_errors.append(f"{name} {list(b.shape)} vs {list(m.shape)} in '{label}'")
                sources[name].append(Source(want))
        report.dropped = sorted(set(ckpt.tensors) - used)
        if report.dropped:
            log.warning(
                "model '%s': %d tensor(s) not in the base are dropped: %s",
                label,
                len(report.dropped),
                _show(report.dropped),
            )
        reports.append(report)

    if shape_errors:
        hint = (
            ""
            if embedding_size_mismatch == "common_rows"
            else " (for vocabulary-size differences see embedding_size_mismatch: common_rows)"
        )
        raise MergeError(
            f"tensor shapes differ from the base's in {len(shape_errors)} place(s): {_show(shape_errors)}{hint}"
        )
    if missing_all and missing_tensors == "error":
        by_model = Counter(label for label, _ in missing_all)
        first = _show(f"{n} (in '{label}')" for label, n in missing_all)
        raise MergeError(
            f"{len(missing_all)} tensor(s) of the base are missing from "
            f"{', '.join(f'{label!r} ({c})' for label, c in by_model.items())}: {first}; set "
            "missing_tensors: base to use the base's values for them (a zero task vector)"
        )
    for label, name in missing_all:
        log.info("model '%s' lacks %s: using the base's value (zero task vector)", label, name)
    plans = [TensorPlan(n, base.tensors[n], sources[n]) for n in base_names]
    return MergePlan(plans, BlockLayout.detect(base_names), reports)
