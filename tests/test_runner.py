"""End-to-end: a small sweep on the world, logged to MLflow, resumed, leaderboard rebuilt."""

from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli.main import main

SMALL = ["run", "--methods", "coop,zeroshot", "--datasets", "mlrsnet", "--seeds", "1", "--set", "epochs=2", "--quiet"]


@pytest.fixture(scope="module")
def finished_sweep(world_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("BENCHMARK_CACHE", str(world_cache))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert main(SMALL) == 0
        yield folder


def test_sweep_logs_runs_with_tags_and_writes_leaderboards(finished_sweep):
    from mlflow import MlflowClient

    board = pd.read_csv(finished_sweep / "results" / "leaderboard_b2n.csv")
    assert list(board.columns) == [
        "method",
        "dataset",
        "n_seeds",
        "base_mean",
        "base_std",
        "base_ci95",
        "new_mean",
        "new_std",
        "new_ci95",
        "hm",
        "ece_base",
        "ece_new",
        "train_s",
        "eval_s",
        "params",
        "peak_mem_mb",
    ]
    assert board.ece_base.notna().all() and board.peak_mem_mb.notna().all()
    assert len(board) == 2 and set(board.dataset) == {"mlrsnet"}
    assert (board.method == "coop[epochs=2]").sum() == 1 and (board.method == "zeroshot").sum() == 1
    runs_csv = pd.read_csv(finished_sweep / "results" / "runs_b2n.csv")
    # coop: base, new and its validation row (the few-shot val draw, never in a leaderboard); zero-shot: base, new
    accuracy = runs_csv[runs_csv.metric == "acc"]
    assert len(accuracy) == 5 and set(accuracy.subset) == {"base", "new", "val"}
    # ECE and NLL of every reported evaluation; the cost of each run (subset `run`)
    assert len(runs_csv[runs_csv.metric.isin(["ece", "nll"])]) == 8
    assert len(runs_csv[runs_csv.subset == "run"]) == 2 * 7

    client = MlflowClient(tracking_uri=f"sqlite:///{finished_sweep / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("b2n")
    cells = client.search_runs([experiment.experiment_id], "tags.kind = 'cell'")
    assert len(cells) == 2
    for run in cells:
        assert run.info.status == "FINISHED"
        for tag in ("method", "protocol", "dataset", "seed", "shots", "backbone", "profile", "run_key"):
            assert run.data.tags[tag]
        assert "mlflow.parentRunId" in run.data.tags
        assert {"acc_base", "acc_new"} <= set(run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "config.json" in artifacts
        if run.data.tags["method"] == "coop":
            assert "prompt_params.pt" in artifacts
            history = client.get_metric_history(run.info.run_id, "train_loss")
            assert [m.step for m in history] == [0, 1]
            assert run.data.params["method.n_ctx"] == "4"  # b2n default: 4 vectors from "a photo of a"
            assert run.data.tags["selection"] == "last" and "acc_val" in run.data.metrics


def test_second_invocation_skips_every_cell(finished_sweep, capsys):
    capsys.readouterr()
    before = (finished_sweep / "results" / "leaderboard_b2n.csv").read_text()
    assert main(SMALL) == 0
    assert "0 cell(s) run, 2 skipped" in capsys.readouterr().out
    assert (finished_sweep / "results" / "leaderboard_b2n.csv").read_text() == before


def test_one_cell_run_twice_on_one_machine_gives_identical_bits(finished_sweep, tmp_path, monkeypatch):
    """Same machine, thread count and cache: a rerun in a fresh store reproduces every number bit for bit."""
    import gzip

    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    assert main(SMALL) == 0

    def results(folder):  # every measured number but the run's cost (wall times and memory differ between runs)
        frame = pd.read_csv(folder / "results" / "runs_b2n.csv")
        return frame[frame.subset != "run"].set_index(["method", "subset", "metric", "seed"])

    first, second = results(finished_sweep), results(tmp_path)
    assert second.value.to_dict() == first.value.to_dict()  # exact float equality: accuracy, ECE and NLL
    assert second.run_key.to_dict() == first.run_key.to_dict()

    def predictions(folder, run_id):
        client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
        local = client.download_artifacts(run_id, "predictions.csv.gz", str(tmp_path / "dl" / run_id))
        return gzip.decompress(Path(local).read_bytes())

    for (method, subset, metric, seed), row in first.iterrows():
        if subset == "base" and metric == "acc":
            other = second.loc[(method, subset, metric, seed)]
            assert predictions(finished_sweep, row.run_id) == predictions(tmp_path, other.run_id)


def test_leaderboard_command_rebuilds_from_mlflow_alone(finished_sweep):
    path = finished_sweep / "results" / "leaderboard_b2n.csv"
    before = path.read_text()
    path.unlink()
    assert main(["leaderboard"]) == 0
    assert path.read_text() == before


def test_leaderboard_rebuilds_from_the_runs_csv_alone_byte_identical(finished_sweep, tmp_path):
    """The committed runs CSV is enough: no tracking store, the same CSV, Markdown and figure."""
    results = finished_sweep / "results"
    argv = ["leaderboard", "--protocol", "b2n", "--from-runs", str(results / "runs_b2n.csv")]
    assert main([*argv, "--results-dir", str(tmp_path), "--tracking-uri", "sqlite:////nonexistent/x.db"]) == 0
    for name in ("leaderboard_b2n.csv", "leaderboard_b2n.md", "runs_b2n.csv", "configs_b2n.csv"):
        assert (tmp_path / name).read_bytes() == (results / name).read_bytes(), name
    assert "- `zeroshot`: method `zeroshot`" in (tmp_path / "leaderboard_b2n.md").read_text()  # the legend, too
    assert (tmp_path / "leaderboard_b2n.png").stat().st_size > 0


def test_force_reruns_and_the_leaderboard_counts_the_run_key_once(finished_sweep, capsys):
    argv = ["run", "--methods", "zeroshot", "--datasets", "mlrsnet", "--seeds", "1", "--quiet", "--force"]
    assert main(argv) == 0
    assert "1 cell(s) run" in capsys.readouterr().out
    runs_csv = pd.read_csv(finished_sweep / "results" / "runs_b2n.csv")
    assert len(runs_csv[runs_csv.metric == "acc"]) == 5 and runs_csv.run_key.nunique() == 2


def test_a_cell_another_sweep_is_running_is_left_to_it(world_env, capsys):
    """Two sweeps over the same cells: a cell with a live RUNNING run elsewhere is not run twice."""
    from benchmark.plan.sweep import SweepRequest, build_plan
    from benchmark.run.tracking import Tracker
    from benchmark.run.worker import WorkerEnv, execute_cell

    argv = ["run", "--methods", "zeroshot", "--datasets", "mlrsnet,rsicd", "--quiet"]
    plan = build_plan(SweepRequest(methods=["zeroshot"], datasets=["mlrsnet"]))
    busy = plan.specs[0]
    other_sweep = Tracker(f"sqlite:///{world_env / 'mlflow.db'}", lock_dir=world_env / "locks")
    run_id = other_sweep.start_cell(busy, None, label="zeroshot")  # RUNNING; this process holds its lock
    assert other_sweep.claim_conflict("b2n", busy.run_key) == "running"

    assert main(argv) == 0
    assert "1 cell(s) run, 0 skipped (already finished), 0 failed, 1 left to another sweep" in capsys.readouterr().out
    board = pd.read_csv(world_env / "results" / "leaderboard_b2n.csv")
    assert board.dataset.tolist() == ["rsicd"]  # mlrsnet was left to the other sweep

    other_sweep.fail(run_id, "stopped by the test", "KILLED")  # the other sweep gave up: the cell is free
    assert other_sweep.claim_conflict("b2n", busy.run_key) == ""
    assert main(argv) == 0
    assert "1 cell(s) run, 1 skipped (already finished), 0 failed\n" in capsys.readouterr().out
    assert other_sweep.claim_conflict("b2n", busy.run_key) == "finished"

    # A worker that reaches a cell another sweep finished after this one planned does not run it.
    env = WorkerEnv(tracking_uri=other_sweep.uri, profile="world", data_root=str(plan.data_root))
    status = execute_cell(busy.to_json(), "zeroshot", None, env)
    assert status.ok and status.claimed == "finished" and status.run_id is None
    cells = other_sweep.client.search_runs([other_sweep.experiment_id("b2n")], "tags.kind = 'cell'")
    assert sorted(r.info.status for r in cells) == ["FINISHED", "FINISHED", "KILLED"]


@pytest.mark.slow
def test_a_partial_run_leaves_the_committed_results_untouched(world_env, capsys):
    """A fresh clone: committed `results/`, an empty store; a smoke run goes to `results/partial/`."""
    base = ["run", "--methods", "zeroshot", "--quiet"]
    assert main([*base, "--datasets", "mlrsnet,rsicd"]) == 0
    out = capsys.readouterr().out
    assert "results/leaderboard_b2n.csv (average rows" in out and "zeroshot" in out  # the numbers on screen
    committed = {p.name: p.read_bytes() for p in (world_env / "results").glob("*_b2n.*")}
    base += ["--tracking-uri", f"sqlite:///{world_env / 'fresh.db'}"]  # what a fresh clone has: results, no store

    assert main([*base, "--datasets", "mlrsnet"]) == 0
    out = capsys.readouterr().out
    assert "holds 1 run(s) this sweep and the store do not" in out
    assert {p.name: p.read_bytes() for p in (world_env / "results").glob("*_b2n.*")} == committed
    partial = pd.read_csv(world_env / "results" / "partial" / "leaderboard_b2n.csv")
    assert partial.dataset.tolist() == ["mlrsnet"]

    assert main([*base, "--datasets", "mlrsnet", "--results-dir", "results"]) == 0  # on purpose: replaced
    assert pd.read_csv(world_env / "results" / "leaderboard_b2n.csv").dataset.tolist() == ["mlrsnet"]
