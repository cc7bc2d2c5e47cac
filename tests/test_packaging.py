"""pyproject.toml, environment.yml and binder/ must name the same runtime dependencies."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_RUNTIME = {"python", "pip"}  # the interpreter and the installer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 needs tomli to read pyproject.toml")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    """pyproject.toml's [project] table."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_runtime() -> set[str]:
    return {_name(r) for r in _project()["dependencies"]}


def _pyproject_lab() -> set[str]:
    """The `lab` extra (JupyterLab, Voila): the environment files install it too."""
    return {_name(r) for r in _project()["optional-dependencies"]["lab"]}


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
    assert _env_runtime(ROOT / "environment.yml") == _pyproject_runtime() | _pyproject_lab()


def test_binder_environment_matches_pyproject():
    assert _env_runtime(ROOT / "binder" / "environment.yml") == _pyproject_runtime() | _pyproject_lab()


def _binder_pip_section() -> list[str]:
    """The entries of binder/environment.yml's `- pip:` list (requirements and pip options), comments dropped."""
    items, indent = [], None
    for line in (ROOT / "binder" / "environment.yml").read_text().splitlines():
        line = re.sub(r"\s+#.*$", "", line)
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if indent is None:
            m = re.match(r"^(\s*)-\s+pip:$", line.rstrip())
            indent = len(m.group(1)) if m else None
            continue
        m = re.match(r"^(\s*)-\s+(.+?)\s*$", line)
        if not m or len(m.group(1)) <= indent:  # back at the level of `- pip:`: the section ended
            break
        items.append(m.group(2))
    return items


def _bounds(requirements) -> dict[str, str]:
    """{normalised name: version specifier} of PEP 508 requirements, e.g. {"torch": ">=2.2"}."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    parsed = [Requirement(r) for r in requirements]
    bounds = {canonicalize_name(r.name): str(r.specifier) for r in parsed}
    assert len(bounds) == len(parsed), f"a package is listed twice in {requirements}"
    return bounds


def test_binder_pip_section_is_pyproject_runtime_plus_lab_with_the_same_bounds():
    project = _project()
    expected = _bounds(project["dependencies"] + project["optional-dependencies"]["lab"])
    binder = _bounds(item for item in _binder_pip_section() if not item.startswith("-"))
    assert binder == expected


def test_binder_takes_torch_from_the_cpu_index():
    # a pip option in the pip section (not just the address somewhere in a comment), and no conda torch
    pip = _binder_pip_section()
    options = [item for item in pip if item.startswith("-")]
    assert any(re.fullmatch(r"--(extra-)?index-url[ =]https://download\.pytorch\.org/whl/cpu/?", o) for o in options)
    entries = (re.sub(r"\s+#.*$", "", item) for item in _yaml_dependencies(ROOT / "binder" / "environment.yml"))
    conda = {_name(item) for item in entries if item not in pip}
    assert conda
    assert not conda & {"torch", "pytorch"}


def test_binder_postbuild_fails_fast_installs_the_package_then_prebuilds():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert post.startswith("#!/usr/bin/env bash")
    commands = [line.strip() for line in post.splitlines() if line.strip() and not line.lstrip().startswith("#")]

    def first(pattern: str) -> int:
        found = [i for i, c in enumerate(commands) if re.search(pattern, c)]
        assert found, f"postBuild has no line matching {pattern!r}: {commands}"
        return found[0]

    errexit = first(r"^set\s+(-\w*e\w*|-o\s+errexit)\b")  # set -e, set -euo pipefail, set -o errexit
    # the repository itself, with --no-deps: environment.yml installed the dependencies, and this step must not
    # fetch anything from PyPI (whose torch is the CUDA build, gigabytes larger)
    install = first(r"^(python3? -m )?pip install\b.*\s--no-deps\b.*\s(-e\s+)?\.$")
    prebuild = first(r"^python3? -m ensemble_lab\.artefacts\.prebuild$")
    assert errexit < install < prebuild
    # no `|| true` or pipe hides a failure of the two steps that matter
    assert not any("|" in commands[i] for i in (install, prebuild))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert "make lab" in readme
    assert [line for line in ci.splitlines() if line and not line.startswith("#")][-1] == "make test"
