"""The pipeline graph: a change reruns exactly what depends on it, as DVC itself sees it.

In a throw-away copy of the repository every stage's outs are replaced by placeholders and
recorded with ``dvc commit``, so ``dvc.lock`` matches the workspace without running anything.
Then one input is changed, DVC is asked which stages changed (``dvc status``), and their
descendants in DVC's own stage graph are what would rerun.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .repo import add_soup_merge, copy_repo, dvc, edit_params

pytestmark = pytest.mark.slow  # a fresh copy of the repository with a DVC status per test


def _placeholder_outs(repo: Path) -> None:
    """Stand-ins for every out, and for every dep that lies inside another stage's out."""
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        for stage in r.index.stages:
            for out in [*stage.outs, *stage.deps]:
                path = Path(out.fs_path)
                if path.exists():
                    continue
                if path.suffix in (".json", ".md", ".txt", ".tsv", ".csv"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("{}\n" if path.suffix == ".json" else "x\n")
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    (path / "placeholder").write_text(stage.addressing + "\n")


def stale_stages(repo: Path, same_outs: frozenset[str] = frozenset()) -> set[str]:
    """Stages that ``dvc status`` reports as changed, plus every stage downstream of them in DVC's graph.

    ``same_outs``: changed stages known to rewrite their outputs byte for byte (DVC then stops there), whose
    descendants are not counted.
    """
    import networkx as nx
    from dvc.repo import Repo

    changed = set(json.loads(dvc(repo, "status", "--json").stdout or "{}"))
    with Repo(str(repo)) as r:
        graph = r.index.graph  # edges point from a stage to the stages it depends on
        by_name = {s.name: s for s in graph.nodes}
        stale = set(changed)
        for name in changed - same_outs:
            stale |= {s.name for s in nx.ancestors(graph, by_name[name])}
    return stale


@pytest.fixture
def committed_repo(tmp_path) -> Path:
    repo = copy_repo(tmp_path / "repo")
    _placeholder_outs(repo)
    dvc(repo, "commit", "--force", "--quiet")
    assert stale_stages(repo) == set(), "a fresh commit must leave nothing stale"
    return repo


ALL_METHODS = {"full_ft", "cpt_ft", "ta_ft", "ties_ft", "seq_ft", "joint_ft"}


MERGES = {"merge@ta", "merge@ties", "merge@ties_cpt", "merge@dare", "merge@swap"}


def test_changing_lambda_reruns_only_that_merge_and_downstream(committed_repo):
    edit_params(committed_repo, **{"merges.ta.parameters.lambda": 0.3})
    # the sweep reads the entry it sweeps but replaces its λ: it reruns through its kept cells and writes the same
    # record (tests/eval/test_sweep.py), so nothing below it reruns
    stale = stale_stages(committed_repo, same_outs=frozenset({"sweep"}))
    # the learning curve starts ta_ft from models/merged/ta too
    assert stale == {"merge@ta", "sweep", "report", "plots", "curve", "finetune@ta_ft", "evaluate@ta_ft"}
    for never in ("prepare", "cpt", "merge@ties", "finetune@full_ft", "finetune@ties_ft", "finetune_en"):
        assert never not in stale


def test_a_new_sweep_result_reruns_the_merges_which_can_take_lambda_from_dev(committed_repo):
    """parameters.lambda: dev reads metrics/sweep.json, so the sweep's output is a dep of every merge."""
    sweep = committed_repo / "metrics/sweep.json"
    before = sweep.read_text()
    try:
        sweep.write_text('[{"lambda": 1.0, "dev_macro_f1": 0.9}]')
        assert stale_stages(committed_repo) >= MERGES
    finally:
        sweep.write_text(before)
    assert not MERGES & stale_stages(committed_repo)


def test_a_new_merge_entry_and_method_add_exactly_their_own_stages(committed_repo):
    """Adding a merge starting point and a method is a change of params.yaml only: DVC sees the new stages (and
    the tables that list every method), and nothing that existed before reruns."""
    add_soup_merge(committed_repo)
    # the curve lists the methods section (its methods' specs): it reruns through its kept cells, writing the same
    # records (tests/eval/test_curve.py)
    assert stale_stages(committed_repo, same_outs=frozenset({"curve"})) == {
        "merge@soup", "finetune@soup_ft", "evaluate@soup_ft", "report", "plots", "curve"
    }  # fmt: skip


def test_changing_the_cpt_corpus_reruns_cpt_and_descendants_only(committed_repo):
    corpus = committed_repo / "data/demo/corpus/hinglish.txt"
    corpus.write_text(corpus.read_text() + "yeh ek nayi line hai corpus mein\n")
    stale = stale_stages(committed_repo)
    from_cpt = {"cpt_ft", "ta_ft", "ties_ft"}
    # AdaMergeX's code-mixed reference adapter learns from the corpus; the curve starts from the merges
    assert stale == {"corpus", "cpt", "sweep", "report", "plots", "adamergex", "curve"} | MERGES | {
        f"{s}@{m}" for s in ("finetune", "evaluate") for m in from_cpt
    }
    for never in ("prepare", "finetune@full_ft", "finetune@seq_ft", "finetune@joint_ft", "finetune_en"):
        assert never not in stale


def test_changing_finetune_params_reruns_all_fine_tuning_but_not_cpt(committed_repo):
    edit_params(committed_repo, **{"finetune.optim.learning_rate": 3e-5})
    stale = stale_stages(committed_repo)
    assert {f"finetune@{m}" for m in ALL_METHODS} <= stale and "finetune_en" in stale
    assert not stale & {"prepare", "corpus", "cpt", "synthesize", "base"}


def test_changing_a_transfer_test_set_reruns_prepare_which_de_leaks_against_it(committed_repo):
    path = committed_repo / "data/demo/spanglish_sentiment/test.jsonl"
    path.write_text(path.read_text() + '{"id": "new", "text": "la serie was increíble", "label": "positive"}\n')
    stale = stale_stages(committed_repo)
    # training data are de-leaked against every test set (prepare), and so is the CPT corpus
    assert {"prepare_transfer@en_es", "prepare", "corpus", "report"} <= stale
    assert {f"evaluate@{m}" for m in ALL_METHODS} <= stale
    assert "base" not in stale


def test_changing_the_task_data_leaves_the_transfer_test_sets_alone(committed_repo):
    """A transfer test set is written whole, from its own source only: it does not depend on the task's data."""
    path = committed_repo / "data/demo/hinglish_sentiment/train.jsonl"
    path.write_text(path.read_text() + '{"id": "new", "text": "ekdum naya tweet", "label": "positive"}\n')
    stale = stale_stages(committed_repo)
    assert "prepare" in stale
    assert not {s for s in stale if s.startswith("prepare_transfer@")}


def test_prepare_runs_after_every_transfer_pair(tmp_path):
    import networkx as nx
    from dvc.repo import Repo

    repo = copy_repo(tmp_path / "repo")
    with Repo(str(repo)) as r:
        graph = r.index.graph  # edges point from a stage to the stages it depends on
        by_name = {s.name: s for s in graph.nodes}
        assert "prepare_transfer@en_es" in {s.name for s in nx.descendants(graph, by_name["prepare"])}
        assert "prepare" not in {s.name for s in nx.descendants(graph, by_name["prepare_transfer@en_es"])}
