"""The notebooks as a course (issue 16): exercises the package checks, "predict first" answers behind a reveal,
figures with a text description, links to reopen a Lab, and a start-here notebook with prerequisites, a
glossary, a course map and honest run times.

Static checks of the saved notebook JSON (nothing is executed).  Oracles: the agreed exercise ids and the
package's own catalogue (`ensemble_lab.exercises`), the glossary terms listed in issue 16, and
docs/course_map.png (the picture the notebook embeds).
"""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = {  # notebook -> the exercise ids agreed for it (issue 16)
    "01_deep_ensembles": ("01.1", "01.2", "01.3", "01.4"),
    "02_calibration": ("02.1", "02.2"),
    "03_prompt_ensembling": ("03.1", "03.2"),
    "04_early_exit_cascades": ("04.1", "04.2"),
    "05_model_soups_wise_ft": ("05.1", "05.2"),
    "06_ensemble_selection": ("06.1", "06.2"),
    "07_ensemble_forecasting": ("07.1", "07.2"),
    "08_random_forests_as_smoothers": ("08.1", "08.2"),
}
GLOSSARY_TERMS = (  # issue 16's list, then the terms the course leans on
    "NLL", "Brier", "ECE", "AURC", "MACs", "coverage", "selective risk", "basin",
    "ensemble member", "logit", "temperature", "calibration", "reliability diagram", "mutual information",
    "disagreement", "paired bootstrap interval", "resolved", "cluster", "distribution shift", "zero-shot",
    "prompt", "cascade", "early exit", "window", "soup", "WiSE-FT", "greedy soup",
)  # fmt: skip
CHECK = re.compile(r"""exercises\.check\(\s*["'](\d\d\.\d+)["']\s*,\s*(\w+)\s*\)""")
HEADING = re.compile(r"^#{2,3} ", flags=re.M)
ANSWER = re.compile(r"\*\*Read it\.\*\*|\*What we got\.\*|\*\*What we got\.\*\*|\*\*What this shows\.\*\*")
MAX_PNG = 80 * 1024


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def _python(cell: dict) -> ast.Module:
    """A code cell as Python (IPython's %magics and !shell lines blanked)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in _source(cell).split("\n")]
    return ast.parse("\n".join(lines))


def _text(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _stub_returns_none(fn: ast.FunctionDef) -> bool:
    """The body is what a learner receives: only a docstring, `pass`, `...` and a final `return None`."""
    *rest, last = fn.body
    trivial = all(
        isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in rest
    )
    returns_none = isinstance(last, ast.Return) and (
        last.value is None or (isinstance(last.value, ast.Constant) and last.value.value is None)
    )
    return trivial and returns_none


def _unrevealed(cells: list[dict]) -> list[str]:
    """The 'Predict first' questions not followed by a <details> reveal before the next heading, or whose answer
    ("Read it.", "What we got.", "What this shows.") stands open before the reveal."""
    problems = []
    for i, cell in enumerate(cells):
        src = _source(cell)
        if cell["cell_type"] != "markdown" or "predict first" not in src.lower():
            continue
        question = src[src.lower().index("predict first") :][:60]
        revealed = False
        for later in cells[i + 1 :]:
            text = _source(later)
            if later["cell_type"] != "markdown":
                continue
            if HEADING.search(text):
                break
            if "<details>" in text:
                ok = re.search(r"<details>\s*<summary>[^<]+</summary>\n\n", text) and re.search(
                    r"\n\n</details>\s*$", text
                )
                if not ok:
                    problems.append(
                        f"{question!r}: its reveal needs a blank line after <summary> and before </details>"
                    )
                revealed = True
                break
            if ANSWER.search(text):
                problems.append(f"{question!r}: its answer is shown open: {text[:50]!r}")
                revealed = True
                break
        if not revealed:
            problems.append(f"{question!r}: no <details> reveal before the next heading")
    return problems


@pytest.fixture(scope="module", params=sorted(LESSONS))
def lesson(request) -> tuple[str, list[dict]]:
    return request.param, _cells(request.param)


# ---------------------------------------------------------------------------------------------- exercises
def test_every_lesson_has_two_checked_exercises_left_unsolved(lesson):
    from ensemble_lab import exercises

    name, cells = lesson
    stubs = {}  # function name -> its def, from the code cells
    checks = []  # (id, function name, cell)
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for node in _python(cell).body:
            if isinstance(node, ast.FunctionDef):
                stubs[node.name] = node
        checks += [(eid, fn, cell) for eid, fn in CHECK.findall(_source(cell))]
    ids = [eid for eid, _, _ in checks]
    assert len(set(ids)) >= 2, f"{name}: {len(set(ids))} exercises.check cells, want at least 2"
    assert set(ids) <= set(LESSONS[name]), f"{name}: exercise ids {sorted(set(ids) - set(LESSONS[name]))} not agreed"
    assert len(ids) == len(set(ids)), f"{name}: an exercise is checked twice: {ids}"
    first = next(i for i, c in enumerate(cells) if any(c is cell for _, _, cell in checks))
    imported = [c for c in cells[:first] if "from ensemble_lab import exercises" in _source(c)]
    assert imported, f"{name}: no `from ensemble_lab import exercises` before the first check"
    for eid, fn, cell in checks:
        want = exercises.get(eid).function
        assert fn == want, f"{name}: the check of {eid} passes {fn}; the package's task and solution name {want}"
        assert fn in stubs, f"{name}: {eid} checks {fn}, which no code cell defines"
        assert _stub_returns_none(stubs[fn]), f"{name}: {fn} is saved solved; the learner must receive the stub"
        assert _source(cell).startswith("# NBVAL_CHECK_OUTPUT"), f"{name}: the check of {eid} is not compared by nbval"
        if cell.get("outputs"):  # saved executed: the verdict of an unsolved stub
            assert "not done yet" in _text(cell), f"{name}: {eid}'s saved verdict is {_text(cell)!r}"


def test_every_exercise_says_how_to_get_hints_and_the_solution(lesson):
    name, cells = lesson
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    checked = {eid for c in cells if c["cell_type"] == "code" for eid, _ in CHECK.findall(_source(c))}
    for eid in sorted(checked):
        assert f'exercises.hint("{eid}"' in markdown, f"{name}: exercise {eid} does not mention its hints"
        assert f'exercises.solution("{eid}")' in markdown, f"{name}: exercise {eid} does not mention its solution"
    assert re.search(r"^## Exercises", markdown, flags=re.M), f"{name} has no '## Exercises' section"


def test_stub_detector_tells_a_stub_from_a_solution():
    stub = ast.parse('def f(x):\n    "doc"\n    # your code here\n    return None').body[0]
    solved = ast.parse("def f(x):\n    return x.sum()").body[0]
    hidden = ast.parse("def f(x):\n    y = x.sum()\n    return None").body[0]
    assert _stub_returns_none(stub)
    assert not _stub_returns_none(solved)
    assert not _stub_returns_none(hidden)


# ---------------------------------------------------------------------------------------- predict first
def test_every_predict_first_is_answered_behind_a_reveal(lesson):
    name, cells = lesson
    assert any("predict first" in _source(c).lower() for c in cells), f"{name} asks no 'Predict first' question"
    problems = _unrevealed(cells)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_reveal_checker_catches_an_open_answer():
    def md(text):
        return {"cell_type": "markdown", "source": text}

    question = md("### Experiment 1 · X\n*Predict first:* will it?")
    code = {"cell_type": "code", "source": "print(1)", "outputs": []}
    assert _unrevealed([question, code, md("**Read it.** It did."), md("### Experiment 2")])
    assert _unrevealed([question, code, md("### Experiment 2"), md("<details><summary>R</summary>\n\nx\n\n</details>")])
    assert _unrevealed([question, md("<details><summary>R</summary>\nx</details>")])
    assert not _unrevealed([question, code, md("<details><summary>R</summary>\n\n**Read it.** x\n\n</details>")])


def test_only_experiment_numbers_are_collapsed(lesson):
    """Collapsed outputs (JupyterLab's outputs_hidden) are printed experiment numbers between a question and its
    reveal; never a Lab, a figure or the last cell (the browser tests read the Lab and the final State)."""
    name, cells = lesson
    hidden = [i for i, c in enumerate(cells) if c.get("metadata", {}).get("jupyter", {}).get("outputs_hidden")]
    assert hidden, f"{name}: no experiment output is collapsed"
    for i in hidden:
        src = _source(cells[i])
        assert src.startswith("# NBVAL_CHECK_OUTPUT"), f"{name}: cell {i} is collapsed but prints no checked numbers"
        assert "StaticFigure" not in src, f"{name}: cell {i} is a figure and must stay visible"
        assert not re.search(r"^lab$", src, flags=re.M), f"{name}: cell {i} shows the Lab and must stay visible"
        assert i != len(cells) - 1, f"{name}: the last cell (the Lab's State) must stay visible"
        before = [_source(c).lower() for c in cells[:i] if c["cell_type"] == "markdown"]
        last_heading = next(t for t in reversed(before) if HEADING.search(t))
        assert "predict first" in last_heading, f"{name}: cell {i} is collapsed outside a 'predict first' experiment"


# ---------------------------------------------------------------------------------------------- figures
def _static_figures(cells):
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "StaticFigure(" in _source(cell):
            for node in ast.walk(_python(cell)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "StaticFigure":
                    yield i, node


@pytest.mark.parametrize("name", ["00_start_here", *sorted(LESSONS)])
def test_every_static_figure_has_a_one_line_description(name):
    cells = _cells(name)
    for i, call in _static_figures(cells):
        given = {k.arg: k.value for k in call.keywords}
        assert "description" in given, f"{name}: the StaticFigure of cell {i} has no description="
        value = given["description"]
        assert isinstance(value, ast.Constant), f"{name}: cell {i}'s description is not a literal"
        text = value.value
        assert isinstance(text, str), f"{name}: cell {i}'s description is not a string"
        assert "\n" not in text, f"{name}: cell {i}'s description is not one line"
        assert 20 <= len(text) <= 300, f"{name}: cell {i}'s description {text!r}"


# ------------------------------------------------------------------------------------- links, challenges
def test_lesson_ends_with_a_link_then_the_state(lesson):
    name, cells = lesson
    assert "lab.state.to_json()" in _source(cells[-1]), f"{name}: the last cell must print the Lab's State"
    assert "print(lab.link())" in _source(cells[-2]), f"{name}: the cell before it does not print the Lab's link"
    # a cell of its own: in JupyterLab the page's link arrives after the cell that asks for it has run
    assert "lab.open_link_from_url()" in _source(cells[-3]), f"{name}: the cell before does not open the page's link"
    share = _source(cells[-4])
    assert "copy link" in share, f"{name}: the 'copy link' control is not explained"
    assert ".from_link(" in share, f"{name}: reopening a link (from_link) is not explained"
    lab_intro = next(_source(c) for c in cells if _source(c).startswith("## The Lab"))
    assert "challenge" in lab_intro.lower(), f"{name}: the Lab's introduction does not mention its challenges"


# ---------------------------------------------------------------------------------------------- start here
def _start_here_section(heading: str) -> str:
    found = [_source(c) for c in _cells("00_start_here") if re.match(rf"## +{heading}", _source(c))]
    assert found, f"00_start_here has no '## {heading}' section"
    return found[0]


def test_start_here_glossary_defines_every_term():
    body = _start_here_section("Glossary")
    defined = [m.lower() for m in re.findall(r"^- \*\*(.+?)\*\*", body, flags=re.M)]
    missing = [t for t in GLOSSARY_TERMS if not any(d.startswith(t.lower()) for d in defined)]
    assert not missing, f"glossary terms without an entry: {missing}"


def test_start_here_lists_prerequisites_with_free_sources():
    body = _start_here_section("Before you start")
    items = re.findall(r"^- \*\*(.+?)\*\*(.*?)(?=^- |\Z)", body, flags=re.M | re.S)
    topics = " ".join(head.lower() for head, _ in items)
    for topic in ("python", "probability", "softmax", "validation"):
        assert topic in topics, f"no prerequisite about {topic}: {topics}"
    assert all("Free:" in text for _, text in items), "every prerequisite names a free source"


def test_start_here_course_map_picture_is_the_drawn_one():
    cell = next(c for c in _cells("00_start_here") if "attachment:course_map.png" in _source(c))
    data = base64.b64decode(cell["attachments"]["course_map.png"]["image/png"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the attachment is not a PNG"
    assert len(data) < MAX_PNG, f"the course map is {len(data)} bytes, over {MAX_PNG}"
    assert data == (ROOT / "docs" / "course_map.png").read_bytes(), "run docs/course_map.py and re-embed its PNG"
    assert re.search(r"!\[[^\]]{40,}\]\(attachment:course_map\.png\)", _source(cell)), "the picture needs alt text"


def test_start_here_points_to_the_instructor_guide():
    body = _start_here_section("For instructors")
    assert "../docs/instructors/README.md" in body
    assert (ROOT / "docs" / "instructors" / "README.md").is_file()
    slow = _start_here_section("The course map")
    for advice in ("make clean-cache", "Binder", "kernel", "seed"):
        assert advice in slow, f"the 'when it is slow' advice does not mention {advice!r}"


def test_start_here_run_times_are_measured():
    """Fails until the measured cold and warm cache times replace the COLD_NN / WARM_NN placeholders."""
    text = "\n".join(_source(c) for c in _cells("00_start_here"))
    left = sorted(set(re.findall(r"\b(?:COLD|WARM)_\d\d\b", text)))
    assert not left, f"run-time placeholders not filled in: {left}"
