"""TIES against the real mergekit (0.1.5), when its ``mergekit-yaml`` is given in ``$MERGEKIT_YAML``.

mergekit is not a cmmerge dependency (it pins its own torch/transformers), so this test is skipped
unless a separate venv provides it (see docs/merge.md). On float32 tiny Llama checkpoints (no ties at
the threshold) cmmerge's ``elect_on_weighted: true, divide_by: weight`` equals mergekit's TIES with
unequal weights, and the default (peft) mode equals it with weights 1.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from cmmerge.merge import MergeConfig, run_merge

from .helpers import weights

MERGEKIT = os.environ.get("MERGEKIT_YAML")
pytestmark = pytest.mark.skipif(not MERGEKIT or not Path(MERGEKIT).is_file(), reason="set MERGEKIT_YAML to run")


@pytest.mark.parametrize(
    ("model_weights", "ours"),
    [([1.0, 1.0], {}), ([1.0, 0.3], {"elect_on_weighted": True, "divide_by": "weight"})],
)
def test_ties_matches_mergekit(family, tmp_path, model_weights, ours):
    f = family["llama"]
    models = [
        {"model": str(f[k]), "parameters": {"weight": w, "density": 0.3}}
        for k, w in zip("ab", model_weights, strict=True)
    ]
    common = {"merge_method": "ties", "base_model": str(f["base"]), "models": models, "dtype": "float32"}
    cfg = tmp_path / "mk.yaml"
    cfg.write_text(yaml.safe_dump({**common, "parameters": {"normalize": True}}))
    subprocess.run([MERGEKIT, str(cfg), str(tmp_path / "mk"), "--no-copy-tokenizer"], check=True, timeout=600)
    run_merge(MergeConfig.from_dict({**common, "parameters": ours}), tmp_path / "cm")
    theirs, got = weights(tmp_path / "mk"), weights(tmp_path / "cm")
    assert set(theirs) == set(got)
    for name, t in got.items():
        torch.testing.assert_close(t, theirs[name], rtol=0, atol=1e-6, msg=name)
