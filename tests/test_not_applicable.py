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
    assert line.count("n/a") == 3  # new, HM and the ECE of new

    runs = pd.read_csv(world_env / "results" / "runs_b2n.csv")
    assert runs[runs.subset == "new"].value.isna().all()  # accuracy, ECE and NLL
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


def test_n_a_rows_survive_the_runs_csv_and_agree_in_reproduce(tmp_path):
    import numpy as np

    from benchmark.plan.specs import LONG_COLUMNS
    from benchmark.results.leaderboard import read_long_rows
    from benchmark.results.reproduce_check import compare

    rows = []
    for seed in (1, 2):
        for subset, value in (("base", 80.0 + seed), ("new", float("nan"))):
            row = dict.fromkeys(LONG_COLUMNS, "")
            row.update(run_key=f"k{seed}", run_id=f"r{seed}", method="linear_probe", protocol="b2n", seed=seed)
            row.update(train_dataset="rsicd", eval_dataset="rsicd", subset=subset, metric="acc", value=value, shots=16)
            rows.append(row)
    path = tmp_path / "runs_b2n.csv"
    pd.DataFrame(rows, columns=list(LONG_COLUMNS)).to_csv(path, index=False)
    long = read_long_rows(path)
    assert long[long.subset == "new"].value.isna().all() and long[long.subset == "base"].value.notna().all()

    report = compare({"b2n": (long, long)})
    new = [r for r in report.rows if r.subset == "new"]
    assert new and all(r.test == "n/a" and r.inside for r in new)
    rerun = long.assign(value=np.where(long.subset == "new", 60.0, long.value))
    report = compare({"b2n": (long, rerun)})
    assert not all(r.inside for r in report.rows if r.subset == "new")  # a number where n/a was is a difference
