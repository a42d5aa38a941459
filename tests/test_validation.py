"""Validation before work: bad values that used to pass silently (or with a traceback) are refused up front.

Each case gives one line naming the key or file and what to do, before any output is touched (issue 13).
"""

from __future__ import annotations

import pytest

from cmmerge.data.loaders import DatasetSpec, load_split
from cmmerge.errors import ConfigError, DataError
from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.params import from_dict, load_section, load_yaml
from cmmerge.train.finetune import FinetuneParams


@pytest.mark.parametrize(
    ("section", "cls", "data", "message"),
    [
        ("evaluate", EvaluateParams, {"batch_size": -1}, r"evaluate.batch_size must be at least 1, got -1"),
        ("evaluate", EvaluateParams, {"batch_size": 0}, r"evaluate.batch_size must be at least 1, got 0"),
        ("evaluate", EvaluateParams, {"max_length": 0}, r"evaluate.max_length must be at least 2 tokens"),
        (
            "finetune",
            FinetuneParams,
            {"optim": {"learning_rate": "3e-4"}},
            r"finetune.optim.learning_rate must be a number or one of 'dev', got '3e-4' \(str\); YAML reads 3e-4 as "
            r"text: write it as 3.0e-4",
        ),
    ],
)
def test_bad_values_are_refused_with_the_key(section, cls, data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(cls, data, where=section)


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"warmup_ratio": -0.5}, r"finetune.optim.warmup_ratio must be a fraction of the steps in \[0, 1\), got -0.5"),
        ({"warmup_ratio": 5}, r"finetune.optim.warmup_ratio must be a fraction .* got 5.0"),
        ({"logging_steps": 0}, r"finetune.optim.logging_steps must be at least 1, got 0"),
        ({"grad_accum": 0}, r"finetune.optim.grad_accum must be at least 1, got 0"),
        ({"weight_decay": -1}, r"finetune.optim.weight_decay must be >= 0, got -1.0"),
        ({"max_steps": 0}, r"finetune.optim.max_steps must be a positive number of steps, or -1"),
        ({"lr_scheduler": "cosin"}, r"finetune.optim.lr_scheduler must be one of 'linear', 'cosine', .*got 'cosin'"),
    ],
)
def test_values_passed_on_to_transformers_are_checked_first(optim, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(FinetuneParams, {"optim": optim}, where="finetune")


def test_the_allowed_schedulers_are_transformers_own():
    from typing import get_args

    from transformers.trainer_utils import SchedulerType

    from cmmerge.train.common import Scheduler

    assert set(get_args(Scheduler)) <= {s.value for s in SchedulerType}


def test_a_key_given_twice_is_refused_not_silently_overridden(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("evaluate: {batch_size: 8}\nreport: {n_boot: 10}\nevaluate: {batch_size: 64}\n")
    with pytest.raises(ConfigError, match=r"key 'evaluate' appears twice in one mapping \(lines 1 and 3\)"):
        load_yaml(path)
    path.write_text("evaluate:\n  batch_size: 8\n  batch_size: 16\n")
    with pytest.raises(ConfigError, match=r"key 'batch_size' appears twice"):
        load_section("evaluate", EvaluateParams, path)
    path.write_text("evaluate: {batch_size: 8}\nreport: {batch_size: 8}\n")  # the same key in two mappings is fine
    assert load_yaml(path)["report"] == {"batch_size": 8}


def test_a_label_that_is_a_mapping_or_list_is_refused(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "acha hai", "label": "positive"}\n{"text": "bura", "label": {"a": 1}}\n')
    with pytest.raises(DataError, match=r"row 2: label field 'label' holds a dict .*labels must be strings or numbers"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    path.write_text('{"text": "acha hai", "label": ["positive"]}\n')
    with pytest.raises(DataError, match=r"row 1: label field 'label' holds a list"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    path.write_text('{"text": "acha hai", "label": 1}\n')  # a number is a class name
    assert load_split(DatasetSpec(path=str(tmp_path)), "train")[0]["label"] == "1"


def test_a_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("\ufeffid,text,label\n7,acha hai,positive\n".encode())
    rows = load_split(DatasetSpec(path=str(tmp_path), id_field="id"), "train")
    assert rows == [{"id": "7", "text": "acha hai", "label": "positive"}]
