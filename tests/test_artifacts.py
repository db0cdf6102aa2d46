"""The per-run artifact writer on a synthetic CellOutput (no model, no MLflow)."""

import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.core.evaluation import Predictions
from benchmark.core.protocol import CellOutput
from benchmark.core.train import EpochLog
from benchmark.data.fewshot import FewShot
from benchmark.data.splits import Item
from benchmark.plan.specs import RunSpec
from benchmark.results.artifacts import few_shot_digest, write_run_artifacts

PNG = b"\x89PNG\r\n\x1a\n"
EXPECTED = {
    "predictions.csv.gz",
    "per_class_accuracy.csv",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "prompt_params.pt",
    "config.json",
    "few_shot.json",
    "environment.json",
    "results.json",
    "history.json",
}


def make_spec(**changes) -> RunSpec:
    values = dict(
        method="coop",
        preset="world",
        overrides=(),
        method_config={"n_ctx": 4},
        train_config={"epochs": 2},
        protocol="b2n",
        dataset="tiny",
        targets=(),
        seed=1,
        shots=2,
        profile="world",
        backbone="world",
        backbone_identity="world@abc",
        split_digests=(("tiny", "d"),),
        captions="",
        harness_version="0.1.0",
        numerics="coop=1;harness=2",
    )
    values.update(changes)
    return RunSpec(**values)


def make_output(trained: bool = True) -> CellOutput:
    out = CellOutput()
    base = Predictions(
        paths=["a/1.png", "a/2.png", "b/1.png", "b/2.png"],
        labels=np.array([0, 0, 1, 1]),
        predicted=np.array([0, 1, 1, 1]),
        classnames=("a", "b"),
    )
    new = Predictions(
        paths=["c/1.png", "d/1.png", "e/1.png"],
        labels=np.array([0, 1, 2]),
        predicted=np.array([0, 2, 2]),
        classnames=("c", "d", "e"),
    )
    out.add("tiny", "base", base)
    out.add("tiny", "new", new)
    if trained:
        out.learned_state = {"ctx": torch.zeros(4, 8)}
        out.history = [EpochLog(0, 1.0, 50.0, 0.002, 0.1), EpochLog(1, 0.5, 75.0, 0.001, 0.1)]
        train = (Item("a/9.png", 0, "a"), Item("b/9.png", 1, "b"))
        out.few_shot = FewShot(train=train, val=(Item("a/8.png", 0, "a"),), short_classes=())
    return out


def test_every_issue_file_is_written_for_a_trained_method(tmp_path):
    written = write_run_artifacts(tmp_path, make_spec(), make_output(), device="cpu")
    assert {p.name for p in tmp_path.iterdir()} == EXPECTED == {p.name for p in written}

    preds = pd.read_csv(tmp_path / "predictions.csv.gz")
    assert list(preds.columns[:5]) == ["eval_dataset", "subset", "path", "label", "predicted"]
    assert len(preds) == 7 and set(preds.subset) == {"base", "new"}
    assert preds.loc[preds.path == "d/1.png", "predicted_name"].item() == "e"

    per_class = pd.read_csv(tmp_path / "per_class_accuracy.csv")
    row = per_class[(per_class.subset == "base") & (per_class.classname == "a")].iloc[0]
    assert (row.n, row.correct, row.accuracy) == (2, 1, 50.0)
    assert list(per_class.subset) == ["base", "base", "new", "new", "new"]

    png = (tmp_path / "confusion_matrix.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 5000
    counts = pd.read_csv(tmp_path / "confusion_matrix.csv")
    new_counts = counts[counts.subset == "new"].set_index(["label", "predicted"])["count"].to_dict()
    assert new_counts == {(0, 0): 1, (1, 2): 1, (2, 2): 1} and counts["count"].sum() == 7

    shots = json.loads((tmp_path / "few_shot.json").read_text())
    assert (shots["dataset"], shots["seed"], shots["shots"]) == ("tiny", 1, 2)
    assert shots["train"] == ["a/9.png", "b/9.png"] and shots["val"] == ["a/8.png"]
    expected = hashlib.sha256("\n".join(["train:a/9.png", "train:b/9.png", "val:a/8.png"]).encode()).hexdigest()
    assert shots["digest"] == expected == few_shot_digest(["b/9.png", "a/9.png"], ["a/8.png"])  # order-free

    env = json.loads((tmp_path / "environment.json").read_text())
    for key in ("harness_version", "git_sha", "torch", "device", "python", "mlflow", "open_clip"):
        assert key in env
    assert env["device"] == "cpu" and env["torch"] and env["harness_version"]

    assert RunSpec.from_json((tmp_path / "config.json").read_text()) == make_spec()
    assert torch.load(tmp_path / "prompt_params.pt", weights_only=True)["ctx"].shape == (4, 8)


def test_a_short_cell_gets_the_confusion_counts_without_the_figure(tmp_path):
    written = write_run_artifacts(tmp_path, make_spec(), make_output(), device="cpu", figures=False)
    names = {p.name for p in written}
    assert "confusion_matrix.csv" in names and "confusion_matrix.png" not in names
    assert names == EXPECTED - {"confusion_matrix.png"}


def test_zero_shot_has_no_few_shot_or_parameters(tmp_path):
    write_run_artifacts(tmp_path, make_spec(method="zeroshot"), make_output(trained=False), device="cpu")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == EXPECTED - {"few_shot.json", "prompt_params.pt", "history.json"}


def test_predictions_are_byte_identical_across_writes(tmp_path):
    # gzip mtime is pinned, so equal predictions give equal artifact digests
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    write_run_artifacts(first, make_spec(), make_output(), device="cpu")
    write_run_artifacts(second, make_spec(), make_output(), device="cpu")
    assert (first / "predictions.csv.gz").read_bytes() == (second / "predictions.csv.gz").read_bytes()
    assert gzip.decompress((first / "predictions.csv.gz").read_bytes()).startswith(b"eval_dataset,subset,path")


@pytest.mark.slow
def test_a_default_sweep_leaves_every_artifact_and_compare_reads_them(world_env, capsys):
    from mlflow import MlflowClient

    from benchmark.cli.main import main

    argv = ["run", "--methods", "coop,zeroshot", "--datasets", "mlrsnet", "--seeds", "1", "--set", "epochs=1"]
    assert main([*argv, "--quiet"]) == 0
    for name in ("leaderboard_b2n.csv", "leaderboard_b2n.md", "leaderboard_b2n.png"):
        assert (world_env / "results" / name).is_file()
    assert (world_env / "results" / "leaderboard_b2n.png").read_bytes().startswith(PNG)

    client = MlflowClient(tracking_uri=f"sqlite:///{world_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("b2n")
    cells = client.search_runs([experiment.experiment_id], "tags.kind = 'cell'")
    assert len(cells) == 2
    for run in cells:
        assert run.info.status == "FINISHED"
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        trained = run.data.tags["method"] == "coop"
        expected = EXPECTED if trained else EXPECTED - {"few_shot.json", "prompt_params.pt", "history.json"}
        expected = expected - {"confusion_matrix.png"}  # a world cell of under 30 s keeps the counts as CSV only
        assert expected <= names, expected - names

    capsys.readouterr()
    assert main(["compare", "coop", "zeroshot"]) == 0
    out = capsys.readouterr().out
    assert "McNemar" in out and " base " in out and " new " in out


def test_environment_says_whether_the_installed_versions_are_the_locks(monkeypatch):
    from importlib import metadata

    from benchmark.results import artifacts

    status = artifacts.lock_status()
    assert status["file"].startswith("requirements.lock@")
    assert status["matches"] is (not status["differs"])
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.0-other" if name == "torch" else real(name))
    other = artifacts.environment("cpu")["lock"]
    assert other["matches"] is False and any(d.startswith("torch==") for d in other["differs"])
