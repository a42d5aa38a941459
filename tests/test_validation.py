"""Validation before work: bad values that used to pass silently (or with a traceback) are refused up front.

Each case gives one line naming the key or file and what to do, before any output is touched (issue 13).
"""

from __future__ import annotations

import pytest

from cmmerge.data.loaders import DatasetSpec, load_split
from cmmerge.errors import ConfigError, DataError
from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.params import from_dict, load_section, load_yaml

# (section, params given, the start of the one line it gets): also rendered into docs/bad_inputs.md
PARAM_CASES = [
    ("evaluate", {"batch_size": -1}, "evaluate.batch_size must be at least 1, got -1"),
    ("evaluate", {"batch_size": 0}, "evaluate.batch_size must be at least 1, got 0"),
    ("evaluate", {"max_length": 0}, "evaluate.max_length must be at least 2 tokens, got 0"),
    (
        "finetune",
        {"optim": {"learning_rate": "3e-4"}},
        "finetune.optim.learning_rate must be a number or one of 'dev', got '3e-4' (str); YAML reads 3e-4 as text: "
        "write it as 3.0e-4",
    ),
    ("finetune", {"optim": {"warmup_ratio": -0.5}}, "finetune.optim.warmup_ratio must be a fraction of the steps in"),
    ("finetune", {"optim": {"warmup_ratio": 5}}, "finetune.optim.warmup_ratio must be a fraction of the steps in"),
    ("finetune", {"optim": {"logging_steps": 0}}, "finetune.optim.logging_steps must be at least 1, got 0"),
    ("finetune", {"optim": {"grad_accum": 0}}, "finetune.optim.grad_accum must be at least 1, got 0"),
    ("finetune", {"optim": {"weight_decay": -1}}, "finetune.optim.weight_decay must be >= 0, got -1.0"),
    ("finetune", {"optim": {"max_steps": 0}}, "finetune.optim.max_steps must be a positive number of steps, or -1"),
    ("finetune", {"optim": {"lr_scheduler": "cosin"}}, "finetune.optim.lr_scheduler must be one of 'linear', 'cosine'"),
    ("report", {"n_boot": 0}, "report.n_boot must be a positive number of resamples, got 0"),
    ("evaluate", {"batch_size": 8, "batchsize": 8}, "evaluate: unknown key(s) batchsize (did you mean 'batch_size'?)"),
    ("evaluate", {"batch_size": True}, "evaluate.batch_size must be an integer, got True (bool)"),
]


@pytest.mark.parametrize(("section", "data", "message"), PARAM_CASES)
def test_bad_values_are_refused_with_the_key(section, data, message):
    from cmmerge.schema import _sections

    with pytest.raises(ConfigError) as exc:
        from_dict(_sections()[section], data, where=section)
    assert str(exc.value).startswith(message)


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
