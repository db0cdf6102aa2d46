"""Every reference parity fixture, every case of it, within the bounds `python -m benchmark parity` applies.

The fixtures and their cases are collected when this module is imported, so a new fixture file is a new
test without an edit here. Without the fixture folder the tests skip, except under CI (`CI` set), where
they fail: a CI run must not pass because it checked nothing.
"""

import json
from pathlib import Path

import pytest
from conftest import PARITY_DIR_ENV, REPO_PARITY, parity_fixtures, require_parity

# Quantities a case must compare besides logits and loss: the gradients that show the method's
# characteristic part (cross-attention, meta-net) is wired as in the reference.
KEY_CHECKS = {
    "bimors_A": {"grad prompt_learner.cross_attn.cross_attend_blocks.norm.weight"},
    "cocoop_A": {"grad prompt_learner.meta_net.linear2.weight"},
}


def _cases() -> list:
    """(fixture, case) pairs with ids `stem-case`; one placeholder when there is no fixture folder."""
    from benchmark.core.parity import fixture_cases, load_fixture

    params = [
        pytest.param(path, case, id=f"{path.stem}-{case}")
        for path in parity_fixtures() + parity_fixtures(REPO_PARITY)
        for case in fixture_cases(load_fixture(path))
    ]
    return params or [pytest.param(None, None, id="parity-folder-absent")]


@pytest.mark.parity
@pytest.mark.parametrize(("path", "case"), _cases())
def test_fixture_case_is_within_bounds(path: Path | None, case: str | None) -> None:
    if path is None or path.parent != REPO_PARITY:
        require_parity()
    from benchmark.core.parity import load_fixture, run_fixture

    results = dict(run_fixture(path, cases=[case]))
    assert list(results) == [f"{path.name} [{case}]"]
    checks = results[f"{path.name} [{case}]"]
    names = {c.name for c in checks}
    assert "logits_eval" in names
    fixture = load_fixture(path)
    expected = fixture["expected"] if case == "faithful" else fixture["variants"][case]
    if "loss_train" in expected:  # absent only for methods fitted without gradients (cache, closed form)
        assert "loss_train" in names
        assert any(n.startswith("grad ") for n in names), "no gradient was compared"
    assert KEY_CHECKS.get(path.stem, set()) <= names
    bad = [(c.name, f"{c.error:.2e} > {c.bound:.0e}", c.note) for c in checks if not c.ok]
    assert not bad, bad


def _check_index(folder: Path) -> None:
    """The folder's index agrees with its files, so a fixture the index names cannot go untested."""
    from benchmark.core.parity import FAITHFUL, fixture_cases, load_fixture

    index = json.loads((folder / "index.json").read_text())
    listed = {entry["file"]: [FAITHFUL, *entry.get("variants", [])] for entry in index}
    found = {path.name: fixture_cases(load_fixture(path)) for path in parity_fixtures(folder)}
    assert found == listed, folder


@pytest.mark.parity
def test_index_lists_every_fixture_and_case() -> None:
    _check_index(require_parity())


def test_the_repository_fixtures_are_indexed() -> None:
    _check_index(REPO_PARITY)


def test_absent_parity_folder_skips_locally_and_fails_under_ci(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(PARITY_DIR_ENV, str(tmp_path / "nothing"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        require_parity()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI needs it"):
        require_parity()
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "x.pt").write_bytes(b"")
    assert require_parity() == tmp_path / "nothing"
