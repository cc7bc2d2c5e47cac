"""Fixtures shared by the Lab tests: small synthetic predictions and the tiny soups world (tests/soups_fixtures)."""

import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: soups_fixtures, shared with test_soup_world


def synthetic_predictions(k=4, n=400, c=5, seed=0):
    """Members of graded quality on val/test and a noisier 'shifted' split."""
    g = torch.Generator().manual_seed(seed)
    logits, labels = {}, {}
    for split, noise in (("val", 1.0), ("test", 1.0), ("noise-3", 2.5)):
        y = torch.randint(0, c, (n,), generator=g)
        strength = torch.linspace(0.5, 3.0, k).view(k, 1, 1)
        z = strength * torch.nn.functional.one_hot(y, c).float() + noise * torch.randn(k, n, c, generator=g)
        logits[split], labels[split] = z, y
    return SimpleNamespace(logits=logits, labels=labels, config={"synthetic": True})


def assert_refused(lab, changes: dict, fragment: str) -> None:
    """``lab.set(**changes)`` is refused with ``fragment`` in the status line, and the State and result are as
    they were."""
    state, result = lab.state.to_dict(), lab.result
    assert not lab.set(**changes)
    assert fragment in lab.status
    assert lab.state.to_dict() == state
    assert lab.result is result


@pytest.fixture
def predictions():
    """Four members on val, test and a shifted split (400 samples, 5 classes)."""
    return synthetic_predictions()


class _TableParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[tuple[set[str], list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((set((dict(attrs).get("class") or "").split()), []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_table_rows(markup: str) -> list[tuple[set[str], list[str]]]:
    """The rows of the HTML tables in ``markup``: each row's classes and its cells' text (parsed, not matched)."""
    parser = _TableParser()
    parser.feed(markup)
    return parser.rows
