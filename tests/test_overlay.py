"""Experiment configs: includes compose in order, mappings merge, other values replace, __delete__ removes."""

from __future__ import annotations

import pytest
import yaml

from cmmerge.errors import ConfigError
from cmmerge.overlay import compose, deep_merge


def test_deep_merge_semantics():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "t": {"en_es": {"path": "p"}}}
    over = {"a": {"y": [3]}, "b": None, "t": {"en_es": "__delete__", "ta": {"path": "q"}}}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3]}, "b": None, "t": {"ta": {"path": "q"}}}
    assert base["t"] == {"en_es": {"path": "p"}}, "inputs are not modified"


def test_includes_compose_in_order(tmp_path):
    (tmp_path / "base.yaml").write_text("merge: {lambda: 0.5, dtype: float32}\nfinetune: {seeds: [1]}\n")
    (tmp_path / "model.yaml").write_text("merge: {dtype: bfloat16}\n")
    (tmp_path / "exp.yaml").write_text("include: [base.yaml, model.yaml]\nmerge: {lambda: 0.3}\n")
    assert compose(tmp_path / "exp.yaml") == {
        "merge": {"lambda": 0.3, "dtype": "bfloat16"},
        "finetune": {"seeds": [1]},
    }


def test_include_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("include: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml]\n")
    with pytest.raises(ConfigError, match="include cycle"):
        compose(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("include: [missing.yaml]\n")
    with pytest.raises(ConfigError, match=r"included file missing\.yaml not found"):
        compose(tmp_path / "c.yaml")


def test_shipped_configs_compose_to_valid_params(repo_root, tmp_path):
    """Every shipped experiment config composes into params every stage accepts."""
    from cmmerge.data.corpus import CorpusParams
    from cmmerge.data.prepare import PrepareParams
    from cmmerge.params import load_section
    from cmmerge.train.cpt import CptParams
    from cmmerge.train.finetune import FinetuneParams

    configs = sorted((repo_root / "configs").rglob("*.yaml"))
    runnable = [
        c for c in configs if not c.name.startswith("_") and c.parent.name not in {"models", "accelerate", "claims"}
    ]
    assert len(runnable) >= 4
    for config in runnable:
        params = compose(config)
        out = tmp_path / f"{config.stem}.yaml"
        out.write_text(yaml.safe_dump(params))
        for section, cls in [
            ("prepare", PrepareParams),
            ("corpus", CorpusParams),
            ("cpt", CptParams),
            ("finetune", FinetuneParams),
        ]:
            load_section(section, cls, out)


def test_an_empty_mapping_clears_and_a_config_without_includes_is_copied_as_is(repo_root, tmp_path):
    from cmmerge.overlay import apply

    assert deep_merge({"transfer": {"en_es": {"path": "p"}}, "x": 1}, {"transfer": {}}) == {"transfer": {}, "x": 1}
    base = tmp_path / "default.yaml"
    base.write_text((repo_root / "configs" / "default.yaml").read_text() + "# a comment kept by apply\n")
    overlay = "include: [default.yaml]\nmerges: {ta: {parameters: {lambda: 0.3}}}\ntransfer: {}\n"
    (tmp_path / "exp.yaml").write_text(overlay)
    apply(base, tmp_path / "params.yaml")
    assert (tmp_path / "params.yaml").read_text() == base.read_text()
    composed = apply(tmp_path / "exp.yaml", tmp_path / "params.yaml")
    assert composed["merges"]["ta"]["parameters"] == {"lambda": 0.3} and composed["transfer"] == {}
    assert composed["merges"]["ta"]["merge_method"] == "task_arithmetic"  # the rest of the entry is the default's
    assert (tmp_path / "params.yaml").read_text().startswith("# composed by `cmmerge config apply`")


def test_params_yaml_is_the_default_config_and_experiments_include_it(repo_root):
    """params.yaml is mutable (an applied experiment overwrites it): the default lives in configs/default.yaml,
    and no config may build on params.yaml."""
    assert (repo_root / "params.yaml").read_text() == (repo_root / "configs" / "default.yaml").read_text(), (
        "params.yaml differs from configs/default.yaml: edit configs/default.yaml and run "
        "`cmmerge config apply configs/default.yaml` (or restore params.yaml after an experiment)"
    )
    for config in (repo_root / "configs").rglob("*.yaml"):
        includes = yaml.safe_load(config.read_text()).get("include", []) if config.name != "default.yaml" else []
        assert not [i for i in includes if i.endswith("params.yaml")], f"{config} includes params.yaml"


def test_every_shipped_config_and_params_yaml_validate_as_a_whole(repo_root):
    from cmmerge.schema import validate_params

    validate_params(yaml.safe_load((repo_root / "params.yaml").read_text()), "params.yaml")
    runnable = [
        c for c in (repo_root / "configs").rglob("*.yaml") if c.parent.name not in {"models", "accelerate", "claims"}
    ]
    for config in runnable:
        built = validate_params(compose(config), str(config))
        assert built["report"].reference in built["methods"]


def test_merge_inputs_are_the_merge_stages_deps(repo_root):
    """Each merge depends on every folder an entry may read (DVC gives a foreach stage one deps list): the
    schema's list of readable folders and dvc.yaml's deps are one list."""
    from cmmerge.sections import MERGE_INPUTS

    merge = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["merge"]["do"]
    assert [d for d in merge["deps"] if d.startswith("models/")] == list(MERGE_INPUTS)
    sweep = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["sweep"]
    # and the recipe's chosen models, which a λ that leaves θ_base in value takes instead of training
    assert [d for d in sweep["deps"] if d.startswith("models/")] == [*MERGE_INPUTS, "models/recipe_chosen"]


@pytest.mark.parametrize("parameters", [{}, None, {"lambda": 0.5}, {"lambda": "dev"}])
def test_a_swept_lambda_reaches_the_merge_whatever_the_entry_says(parameters):
    """The λ being swept (or chosen on dev) is the merge's λ, also for an entry that gives no parameters (it once
    merged every λ of such an entry at the method's default)."""
    from cmmerge.sections import merge_config

    entry = {"merge_method": "task_arithmetic", "base_model": "models/base", "models": [{"model": "models/cpt"}]}
    if parameters is not None:
        entry["parameters"] = parameters
    assert merge_config(entry, "merges.ta", lam=0.25).parameters == {"lambda": 0.25}


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ("cpt: __delete__\n", r"section\(s\) cpt missing"),
        ("merg: {lambda: 0.3}\n", r"unknown section\(s\) merg \(did you mean 'merges'"),
        ("merge: {lambda: 0.3}\n", r"unknown section\(s\) merge \(did you mean 'merges'\?\)"),
        (
            "methods: {x_ft: {init: models/merged/tis}}\n",
            r"methods.x_ft.init is models/merged/tis, but merges has no "
            r"entry 'tis' .*did you mean 'ties'",
        ),
        (
            "merges: {ta: {merge_method: task_arithmatic}}\n",
            r"merges.ta.merge_method: unknown merge method "
            r"'task_arithmatic'",
        ),
        (
            "merges: {x: {merge_method: linear, models: [{model: models/cpt_v2}]}}\n",
            r"merges.x.models\[0\].model is "
            r"'models/cpt_v2', which no stage before the merge writes.*did you mean 'models/cpt'",
        ),
        (
            "merges: {ties: {parameters: {lambda: dev}}}\n",
            r"merges.ties.parameters.lambda is 'dev', but the sweep "
            r"chooses λ for merges.ta only",
        ),
        ("sweep: {merge: tsa}\n", r"sweep.merge is 'tsa', not an entry of merges .*did you mean 'ta'"),
        ("report: {reference: best_ft}\n", r"report.reference is 'best_ft', not one of methods"),
        ("curve: {methods: [full_ft, nope_ft]}\n", r"curve.methods names nope_ft"),
        ("methods: {x_ft: {train: data/prepared/task}}\n", r"methods.x_ft.init is required"),
        ("finetune: {optim: {learning_rate: fast}}\n", r"finetune.optim.learning_rate must be a number or one of"),
    ],
)
def test_config_apply_refuses_a_broken_config_and_writes_nothing(repo_root, tmp_path, overlay, message):
    from cmmerge.overlay import apply

    (tmp_path / "bad.yaml").write_text(f"include: [{repo_root / 'configs' / 'default.yaml'}]\n{overlay}")
    out = tmp_path / "params.yaml"
    out.write_text("earlier: 1\n")
    with pytest.raises(ConfigError, match=message):
        apply(tmp_path / "bad.yaml", out)
    assert out.read_text() == "earlier: 1\n"


def test_the_json_schema_is_the_pydantic_schema_and_checks_a_config(repo_root):
    """`cmmerge config schema` prints the pydantic models that validate each section as one JSON Schema, with which
    an editor or linter checks params.yaml and every shipped config; it refuses what the stages refuse."""
    import json
    import subprocess
    import sys

    import jsonschema

    done = subprocess.run([sys.executable, "-m", "cmmerge", "config", "schema"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    jsonschema.validate(params, schema)
    for config in (repo_root / "configs" / "real").glob("[!_]*.yaml"):
        jsonschema.validate(compose(config), schema)
    bad = {**params, "finetune": {**params["finetune"], "optim": {**params["finetune"]["optim"], "epochs": "many"}}}
    with pytest.raises(jsonschema.ValidationError, match="many"):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError, match="lamda"):
        jsonschema.validate({**params, "report": {**params["report"], "lamda": 1}}, schema)


def test_work_folders_of_a_pipeline(repo_root):
    """The kept-cell folders copied into a queued experiment come from every grid stage, however its
    ``--work`` argument is spelt."""
    from cmmerge.overlay import work_folders

    pipeline = {
        "stages": {
            "a": {"cmd": "python stages/recipe.py --work models/recipe --out m.json"},
            "b": {"foreach": [1, 2], "do": {"cmd": "python stages/x.py --work=models/x_${item} --out o"}},
            "c": {"cmd": ["echo one", "python stages/curve.py --work 'models/my curve'"]},
            "d": {"cmd": "python stages/finetune.py --out models/finetune"},
        }
    }
    assert work_folders(pipeline) == ["models/recipe", "models/x_${item}", "models/my curve"]
    shipped = work_folders(yaml.safe_load((repo_root / "dvc.yaml").read_text()))
    assert shipped == ["models/recipe", "models/sweep", "models/adamergex_recipe", "models/curve"]
