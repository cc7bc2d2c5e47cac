"""pyproject.toml, environment.yml and binder/ must name the same runtime dependencies."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_RUNTIME = {"python", "pip", "jupyterlab"}  # the interpreter, the installer, and the `lab` extra

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 needs tomli to read pyproject.toml")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_runtime() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(r) for r in data["project"]["dependencies"]}


def _yaml_dependencies(path: Path) -> list[str]:
    """The `- item` entries under `dependencies:` (conda and pip sections), without a YAML parser."""
    items, inside = [], False
    for line in path.read_text().splitlines():
        if re.match(r"^\S", line):  # a top-level key starts or ends the section
            inside = line.startswith("dependencies:")
            continue
        m = re.match(r"^\s*-\s+(.+?)\s*$", line)
        if inside and m and not m.group(1).endswith(":"):
            items.append(m.group(1))
    return items


def _env_runtime(path: Path) -> set[str]:
    names = set()
    for item in _yaml_dependencies(path):
        if item.startswith("-"):  # pip options such as --extra-index-url or --no-deps -e .
            continue
        name = _name(item)
        names.add(CONDA_TO_PYPI.get(name, name))
    return names - NOT_RUNTIME


def test_environment_yml_matches_pyproject():
    assert _env_runtime(ROOT / "environment.yml") == _pyproject_runtime()


def test_binder_environment_matches_pyproject():
    assert _env_runtime(ROOT / "binder" / "environment.yml") == _pyproject_runtime()


def test_binder_uses_cpu_torch_and_postbuild_installs_the_package():
    env = (ROOT / "binder" / "environment.yml").read_text()
    assert "download.pytorch.org/whl/cpu" in env
    post = (ROOT / "binder" / "postBuild").read_text()
    assert post.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in post
    assert re.search(r"pip install .*-e \.", post)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert [line for line in ci.splitlines() if line and not line.startswith("#")][-1] == "make test"
