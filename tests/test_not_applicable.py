"""A configuration that cannot score unseen classes runs, and its unseen-class cells read n/a everywhere.

Class-specific CoOp context (CSC) has vectors only for the classes it was trained on. Its b2n `new`
evaluation and its cross-dataset targets are recorded as NaN rows with a `not_applicable` tag, shown
`n/a` in the CSV (empty) and the Markdown, and its HM and target average are n/a too; the base and
source accuracies are numbers as usual.
"""

import math

import pandas as pd
import pytest

from benchmark.cli.main import main

CSC = ["--methods", "coop", "--preset", "paper_csc", "--seeds", "1", "--set", "epochs=1", "--quiet"]


@pytest.mark.slow
def test_csc_new_classes_and_targets_read_n_a(world_env):
    assert main(["run", *CSC, "--protocol", "b2n", "--datasets", "mlrsnet"]) == 0
    board = pd.read_csv(world_env / "results" / "leaderboard_b2n.csv")
    row = board[board.dataset == "mlrsnet"].iloc[0]
    assert 0 <= row.base_mean <= 100
    assert math.isnan(row.new_mean) and math.isnan(row.hm)
    markdown = (world_env / "results" / "leaderboard_b2n.md").read_text()
    line = next(x for x in markdown.splitlines() if x.startswith("| mlrsnet | coop[paper_csc"))
    assert line.count("n/a") == 2  # new and HM

    runs = pd.read_csv(world_env / "results" / "runs_b2n.csv")
    assert runs[runs.subset == "new"].value.isna().all()
    assert runs[runs.subset == "base"].value.notna().all()

    assert main(["run", *CSC, "--protocol", "xd", "--datasets", "mlrsnet,rsicd"]) == 0
    board = pd.read_csv(world_env / "results" / "leaderboard_xd.csv")
    source = board[board.target == "mlrsnet"].iloc[0]
    assert 0 <= source.acc_mean <= 100
    assert math.isnan(board[board.target == "rsicd"].acc_mean.iloc[0])
    assert math.isnan(board[board.target == "average"].acc_mean.iloc[0])

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{world_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("b2n")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("method") == "coop"]
    assert len(runs) == 1
    assert "class-specific context" in runs[0].data.tags["not_applicable"]
    assert "acc_base" in runs[0].data.metrics and "acc_new" not in runs[0].data.metrics
