"""The instructor's guide (docs/instructors/): one page per notebook, each with the sections a lecturer needs.

Fast (reads markdown and notebook JSON only).  Oracles: the notebooks themselves (their "Predict first"
experiments and the exercise ids their cells check) and the exercise ids agreed for issue 16.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructors"
NOTEBOOKS = ROOT / "notebooks"

# the exercise ids each notebook's check cells use (the agreed list of issue 16)
AGREED_IDS = {
    "01_deep_ensembles": ("01.1", "01.2", "01.3", "01.4"),
    "02_calibration": ("02.1", "02.2"),
    "03_prompt_ensembling": ("03.1", "03.2"),
    "04_early_exit_cascades": ("04.1", "04.2"),
    "05_model_soups_wise_ft": ("05.1", "05.2"),
    "06_ensemble_selection": ("06.1", "06.2"),
    "07_ensemble_forecasting": ("07.1", "07.2"),
    "08_random_forests_as_smoothers": ("08.1", "08.2"),
}
SECTIONS = {  # a level-2 heading matching each pattern (case-insensitive)
    "objectives": r"learning objectives",
    "prerequisites": r"prerequisites",
    "misconceptions": r"misconceptions",
    "predict first": r"predict first",
    "exercises": r"exercises",
    "50-minute plan": r"50-minute",
    "90-minute plan": r"90-minute",
    "quiz": r"quiz",
    "papers": r"paper",
}
ID_CALL = re.compile(r"""(?:check|hint|solution)\(\s*["'](\d\d\.\d+)["']""")


def _sections(text: str) -> dict[str, str]:
    """Level-2 heading (lower case) -> the text up to the next level-2 heading."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {parts[i].strip().lower(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _section(page: str, key: str) -> str:
    found = [body for head, body in _sections(page).items() if re.search(SECTIONS[key], head)]
    assert found, f"no '## ...{SECTIONS[key]}...' section"
    return found[0]


def _notebook_cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _plan_minutes(body: str) -> list[int]:
    rows = [line.strip() for line in body.splitlines() if line.strip().startswith("|")]
    assert rows, "the session plan has no markdown table"
    header = [c.strip().lower() for c in rows[0].strip("|").split("|")]
    col = next((i for i, c in enumerate(header) if "minutes" in c), None)
    assert col is not None, f"the plan's table has no 'minutes' column: {header}"
    minutes = []
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        assert re.fullmatch(r"\d+", cells[col]), f"minutes must be a whole number, got {cells[col]!r} in {row}"
        minutes.append(int(cells[col]))
    return minutes


def _bullets(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("- ")]


@pytest.fixture(scope="module", params=sorted(AGREED_IDS))
def notebook(request) -> tuple[str, str]:
    path = GUIDE / f"{request.param}.md"
    assert path.exists(), f"notebook {request.param} has no instructor page {path.relative_to(ROOT)}"
    return request.param, path.read_text(encoding="utf-8")


def test_every_notebook_has_a_page():
    numbered = sorted(p.stem for p in NOTEBOOKS.glob("0[1-9]_*.ipynb"))
    assert numbered == sorted(AGREED_IDS), f"notebooks 01-09 changed (add a new one to AGREED_IDS): {numbered}"
    missing = [n for n in numbered if not (GUIDE / f"{n}.md").exists()]
    assert not missing, f"no instructor page for {missing}"
    readme = (GUIDE / "README.md").read_text(encoding="utf-8")
    unlinked = [n for n in numbered if f"{n}.md" not in readme]
    assert not unlinked, f"docs/instructors/README.md does not link {unlinked}"


def test_page_has_every_section(notebook):
    _, page = notebook
    for key in SECTIONS:
        _section(page, key)


def test_objectives_and_misconceptions_are_counted(notebook):
    _, page = notebook
    objectives = _bullets(_section(page, "objectives"))
    assert 4 <= len(objectives) <= 6, f"{len(objectives)} learning objectives, want 4 to 6"
    misconceptions = _bullets(_section(page, "misconceptions"))
    assert 5 <= len(misconceptions) <= 8, f"{len(misconceptions)} misconceptions, want 5 to 8"


def test_every_predict_first_of_the_notebook_is_answered(notebook):
    name, page = notebook
    asked = set()
    for cell in _notebook_cells(name):
        src = _source(cell)
        if cell["cell_type"] == "markdown" and "predict first" in src.lower():
            asked.update(re.findall(r"### +Experiment (\d+)", src))
    assert asked, f"{name} has no 'Predict first' experiment: has the notebook changed its headings?"
    body = _section(page, "predict first")
    answered = set(re.findall(r"^### +Experiment (\d+)", body, flags=re.M))
    assert asked <= answered, f"Predict-first experiments without an answer on the page: {sorted(asked - answered)}"


def test_every_exercise_id_appears_on_the_page(notebook):
    name, page = notebook
    ids = set(AGREED_IDS[name])
    for cell in _notebook_cells(name):
        if cell["cell_type"] == "code":
            ids.update(i for i in ID_CALL.findall(_source(cell)) if i.startswith(name[:2] + "."))
    body = _section(page, "exercises")
    missing = sorted(i for i in ids if not re.search(rf"(?<![\d.]){re.escape(i)}(?![\d])", body))
    assert not missing, f"exercise ids of {name} missing from the page's Exercises section: {missing}"


@pytest.mark.parametrize(("key", "total"), [("50-minute plan", 50), ("90-minute plan", 90)])
def test_session_plan_adds_up(notebook, key, total):
    _, page = notebook
    minutes = _plan_minutes(_section(page, key))
    assert sum(minutes) == total, f"the {key} adds up to {sum(minutes)} minutes: {minutes}"
    assert all(m > 0 for m in minutes), f"a row of the {key} has no time: {minutes}"


def test_quiz_has_five_answered_questions(notebook):
    _, page = notebook
    body = _section(page, "quiz")
    questions = re.findall(r"^### +Q(\d)\b", body, flags=re.M)
    assert questions == ["1", "2", "3", "4", "5"], f"quiz questions {questions}, want Q1 to Q5"
    for block in re.split(r"^### +Q\d\b", body, flags=re.M)[1:]:
        assert "**Answer.**" in block, f"a quiz question without an '**Answer.**': {block[:80]!r}"


def test_plan_parser_catches_a_wrong_total():
    body = "| minutes | activity |\n|---|---|\n| 10 | intro |\n| 35 | lab |\n"
    assert sum(_plan_minutes(body)) == 45
    with pytest.raises(AssertionError, match="minutes"):
        _plan_minutes("| time | activity |\n|---|---|\n| 10 | intro |\n")
