"""Plot data files follow DVC's plot formats, and DVC renders them with the templates dvc.yaml names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cmmerge.errors import DataError
from cmmerge.eval.plots import (
    confusion_records,
    save_png_confusion,
    save_png_matrix,
    save_png_sweep,
    write_sweep,
)

ROOT = Path(__file__).resolve().parents[2]
HEATMAP = ROOT / ".dvc" / "plots" / "heatmap.json"
SWEEP = [
    {"lambda": 1.0, "dev_macro_f1": 0.61, "test_macro_f1": 0.6, "dev_seed1": 0.61},
    {"lambda": 0.0, "dev_macro_f1": 0.55, "test_macro_f1": 0.54, "dev_seed1": 0.55},
    {"lambda": 0.5, "dev_macro_f1": 0.63, "test_macro_f1": 0.62, "dev_seed1": 0.63},
]
TRANSFER = [
    {"train": m, "test": t, "macro_f1": f}
    for m, fs in {"full_ft": (0.6, 0.4), "ta_ft": (0.65, 0.45)}.items()
    for t, f in zip(("en_hi", "en_es"), fs, strict=True)
]


def _is_dvc_table(data) -> bool:
    """DVC's JSON plot format: a list of flat records (scalar values only in the fields axes use)."""
    return isinstance(data, list) and all(isinstance(r, dict) for r in data)


def _render(template, rows: list[dict], **props) -> dict:
    from dvc_render.vega import VegaRenderer
    from dvc_render.vega_templates import get_template

    datapoints = [{**r, "rev": "workspace"} for r in rows]
    renderer = VegaRenderer(datapoints, "plot", template=get_template(template), **props)
    return renderer.get_filled_template()


def test_sweep_file_is_a_dvc_linear_plot(tmp_path):
    rows = write_sweep(SWEEP, tmp_path / "sweep.json")
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert _is_dvc_table(data) and data == rows
    assert [r["lambda"] for r in data] == [0.0, 0.5, 1.0]
    spec = _render("linear", data, x="lambda", y="dev_macro_f1")
    assert spec["encoding"]["x"]["field"] == "lambda"
    with pytest.raises(DataError, match="lacks"):
        write_sweep([{"lambda": 0.1}], tmp_path / "bad.json")
    with pytest.raises(DataError, match="flat"):
        write_sweep([{**SWEEP[0], "per_seed": {"1": 0.6}}], tmp_path / "bad.json")
    with pytest.raises(DataError, match="same fields"):
        write_sweep([SWEEP[0], {**SWEEP[1], "extra": 1.0}], tmp_path / "bad.json")


def test_transfer_rows_render_with_the_heatmap_template():
    assert _is_dvc_table(TRANSFER)
    spec = _render(str(HEATMAP), TRANSFER, x="test", y="train")
    assert spec["spec"]["encoding"]["x"]["field"] == "test"
    assert spec["spec"]["encoding"]["y"]["field"] == "train"
    assert len(spec["data"]["values"]) == len(TRANSFER)


def test_confusion_records_render_with_dvcs_confusion_template():
    rows = confusion_records(["a", "b", "b"], ["a", "a", "b"])
    assert rows == [
        {"actual": "a", "predicted": "a"},
        {"actual": "b", "predicted": "a"},
        {"actual": "b", "predicted": "b"},
    ]
    _render("confusion", rows, x="actual", y="predicted")
    with pytest.raises(ValueError):
        confusion_records(["a"], [])


def test_png_copies(tmp_path):
    save_png_sweep(SWEEP, tmp_path / "sweep.png")
    save_png_matrix(TRANSFER, tmp_path / "transfer.png")
    save_png_confusion(["neg", "pos"], [[3, 1], [0, 4]], tmp_path / "confusion.png")
    for name in ("sweep", "transfer", "confusion"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dvc_plots_show_renders_all_three(tmp_path, monkeypatch):
    """A throwaway DVC repository with the plots block to wire into dvc.yaml renders every plot to HTML.

    DVC runs as the ``dvc`` command does, in a process of its own: in-process, its console state (one object
    per process, switched by the quiet DVC calls DVCLive makes during any training test that ran before)
    made the JSON output depend on the order of the tests.
    """
    (tmp_path / "metrics" / "plots" / "confusion").mkdir(parents=True)
    write_sweep(SWEEP, tmp_path / "metrics" / "sweep.json")
    (tmp_path / "metrics" / "transfer.json").write_text(json.dumps(TRANSFER))
    confusion = confusion_records(["neg", "pos", "pos"], ["neg", "neg", "pos"])
    (tmp_path / "metrics" / "plots" / "confusion" / "full_ft.json").write_text(json.dumps(confusion))
    (tmp_path / "dvc.yaml").write_text((Path(__file__).parent / "plots_block.yaml").read_text())
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")

    def dvc(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    dvc("init", "--no-scm", "-q")
    (tmp_path / ".dvc" / "plots").mkdir(exist_ok=True)
    shutil.copy(HEATMAP, tmp_path / ".dvc" / "plots" / "heatmap.json")
    shown = json.loads(dvc("plots", "show", "--json"))
    # a plot DVC cannot read is reported under "errors" (and silently left out of the HTML page)
    assert not shown.get("errors"), shown.get("errors")
    assert {"lambda_sweep", "transfer_matrix", "metrics/plots/confusion/full_ft.json"} <= set(shown["data"])
    dvc("plots", "show", "-o", "html")
    page = (tmp_path / "html" / "index.html").read_text()
    assert all(name in page for name in ("lambda_sweep", "transfer_matrix", "confusion/full_ft.json"))
