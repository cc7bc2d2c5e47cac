"""CONTRIBUTING.md's "How to add a Lab", followed literally: its code blocks, run in order, build a working Lab."""

import re
from pathlib import Path

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"


def _steps() -> list[str]:
    text = CONTRIBUTING.read_text()
    section = text.split("## How to add a Lab", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_steps_build_a_minimal_lab():
    blocks = _steps()
    assert len(blocks) == 6  # settings, result, lab, drawing, view, test
    namespace: dict = {"__name__": "contributing_example"}
    for block in blocks:
        exec(compile(block, str(CONTRIBUTING), "exec"), namespace)  # noqa: S102 - our own documentation
    lab_class, view_class = namespace["ScaleLab"], namespace["ScaleView"]
    assert lab_class.View is view_class  # joined by the View's class statement
    lab = namespace["lab"]
    assert set(lab.state.settings()) == {"temperature", "member", "seed"}
    heights = [b.get_height() for b in lab.view.bars.bars]
    assert sum(heights) == __import__("pytest").approx(1.0)
    assert lab.set(member=2)
    assert [b.get_height() for b in lab.view.bars.bars] != heights
