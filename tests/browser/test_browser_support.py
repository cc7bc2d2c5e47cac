"""The browser tests' own plumbing, checked without a browser: how they find Chromium and why they skip."""

import json
import re

from browser_support import NOTEBOOKS, ROOT, SCENARIOS, WITH_LAB, chromium_path, missing, numbers


def test_without_chromium_the_reason_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("ENSEMBLE_LAB_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert chromium_path() is None
    reason = missing()
    assert reason is not None
    assert "apt-get install chromium" in reason
    assert "ENSEMBLE_LAB_CHROMIUM" in reason


def test_an_explicit_chromium_is_used(monkeypatch, tmp_path):
    binary = tmp_path / "chrome"
    binary.write_text("")
    monkeypatch.setenv("ENSEMBLE_LAB_CHROMIUM", str(binary))
    assert chromium_path() == str(binary)


def test_every_notebook_that_builds_a_lab_has_a_scenario():
    """A notebook that builds a Lab is driven by the browser tests only once its prefix has a scenario."""
    for nb in NOTEBOOKS:
        cells = json.loads((ROOT / "notebooks" / nb).read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        builds_lab = re.search(r"\b\w+Lab\(", code) is not None
        assert builds_lab == (nb in WITH_LAB), (
            f"{nb} builds a Lab: add its scenario to browser_support.SCENARIOS"
            if builds_lab
            else f"{nb} has a scenario but builds no Lab"
        )
    assert len(WITH_LAB) == len(SCENARIOS), "a scenario without a notebook"


def test_numbers_read_from_a_lab():
    assert numbers("92.2 1,024 -0.5 1e-3") == [92.2, 1024.0, -0.5, 0.001]
    assert numbers("") == []
