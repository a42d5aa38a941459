"""docs/bad_inputs.md is rendered from the parametrised bad-input cases of the tests (issue 13, point 7):
``python tests/test_bad_inputs_doc.py`` rewrites it, and the test below fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import test_interrupt  # noqa: E402
import test_offline  # noqa: E402
import test_output_safety  # noqa: E402
import test_validation  # noqa: E402

DOC = HERE.parent / "docs" / "bad_inputs.md"
KEPT = "nothing written; inputs and user files hash-identical"


def rows() -> list[tuple[str, str, str, str]]:
    """(area, input, what cmmerge does, test) for every case."""
    out = []
    for case, what, answer in test_output_safety.OUT_DIR_CASES:
        force = " (replaced with `--force`)" if case.startswith("user_") else ""
        out.append(
            ("output folder", what, f"exit 2, one line: … {answer} …{force}; {KEPT}", f"merge_refuses_out_dir[{case}]")
        )
    for case, what, answer in test_output_safety.SHARD_CASES:
        test = f"shard_index_entries_stay_inside_the_model_folder[{case}]"
        out.append(("no escape", what, f"exit 2, one line naming the `weight_map` entry: … {answer} …; {KEPT}", test))
    for _case, what, answer in test_output_safety.PICKLE_CASES:
        how = f"exit 2, one line: … {answer} …, with the opt-in `model.allow_pickle: true` / `--allow-pickle`"
        out.append(("no pickle", what, how, "pickle_checkpoints_need_opting_in"))
    for case, what, answer in test_offline.MISSING_MODEL_CASES:
        out.append(
            ("offline", what, f"exit 2 in under 30 s, one line: … {answer} …", f"missing_model_path_fails_fast[{case}]")
        )
    for section, data, answer in test_validation.PARAM_CASES:
        given = yaml.safe_dump({section: data}, default_flow_style=True, width=200).strip()
        out.append(
            (
                "params",
                f"`{given}`",
                f"refused when the params are read (exit 2), one line: `{answer} …`",
                "test_validation.py",
            )
        )
    for case, what, answer in test_interrupt.INTERRUPT_CASES:
        out.append(("interruption", what, f"{answer}; no `.X.tmp-*` / `.X.old-*` left", f"test_interrupt.py ({case})"))
    return out


def render() -> str:
    lines = [
        "# Bad inputs tried, and what each gets",
        "",
        "Generated from the tests' parametrisation by `python tests/test_bad_inputs_doc.py` (a test keeps this file",
        "equal to it). Errors print one line `cmmerge: error: …`; exit 2 is a bad input, 1 a system error, 130/143",
        "SIGINT/SIGTERM.",
        "",
        "| Area | Input | What cmmerge does | Test |",
        "|---|---|---|---|",
    ]
    for area, what, does, test in rows():
        lines.append(f"| {area} | {what} | {does} | `{test}` |")
    return "\n".join(lines) + "\n"


def test_bad_inputs_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/bad_inputs.md is stale: run python tests/test_bad_inputs_doc.py"
    )


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")
