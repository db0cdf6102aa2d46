"""Cost and calibration: ECE/NLL definitions, the cost counters of a cell, the leaderboard columns,
progress lines for log files, batched epoch logging and the default executor layout."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from runs_support import finished

from benchmark.core.calibration import expected_calibration_error, softmax_stats
from benchmark.core.cost import CellCost, PeakMemory
from benchmark.core.evaluation import Predictions
from benchmark.core.protocol import CellOutput
from benchmark.plan.specs import COST_METRICS, Result
from benchmark.results.leaderboard import long_rows, wide_table
from benchmark.results.tables.run_columns import headline_points, run_column_names
from benchmark.run.live import EpochBuffer
from benchmark.run.runner import RunOptions, progress_line, resolve_layout
from benchmark.run.worker import CellStatus, add_cost_rows


# -- calibration -----------------------------------------------------------------------------------
def test_ece_by_hand():
    # bins of width 1/15: 0.95 and 0.99 share the last bin (14/15, 1]; 0.55 and 0.58 the 9th (8/15, 9/15];
    # 0.1 the 2nd (1/15, 2/15]
    confidence = np.array([0.95, 0.99, 0.55, 0.58, 0.1])
    correct = np.array([1, 0, 1, 0, 0])
    last = 2 / 5 * abs(0.5 - 0.97)
    middle = 2 / 5 * abs(0.5 - 0.565)
    low = 1 / 5 * abs(0.0 - 0.1)
    assert expected_calibration_error(confidence, correct) == pytest.approx(100 * (last + middle + low))
    # a perfectly calibrated bin contributes nothing; no images -> NaN
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0)))


def test_ece_bins_are_right_closed():
    # 1/15 belongs to the first bin (0, 1/15] with 0.0 (a right answer) and not with 0.1 (a wrong one):
    # first bin |1/2 - 1/30| * 2/3, second bin |0 - 0.1| * 1/3
    confidence, correct = np.array([1 / 15, 0.0, 0.1]), np.array([1, 0, 0])
    expected = 100 * (2 / 3 * abs(0.5 - 1 / 30) + 1 / 3 * 0.1)
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    # left-closed bins would put 1/15 with 0.1 instead: a different value
    assert expected != pytest.approx(100 * (1 / 3 * 0.0 + 2 / 3 * abs(0.5 - (1 / 15 + 0.1) / 2)))


def test_softmax_stats_match_their_definitions():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 30.0, 0.0]])
    labels = torch.tensor([0, 2])
    confidence, nll = softmax_stats(logits, labels)
    p = torch.softmax(logits.double(), dim=-1)
    assert confidence == pytest.approx(p.max(dim=-1).values.numpy())
    assert nll[0] == pytest.approx(-math.log(p[0, 0].item()))
    assert nll[1] == pytest.approx(30.0, rel=1e-6)  # a confident mistake: large and finite


def test_predictions_carry_ece_and_nll_rows_into_the_cell_output():
    preds = Predictions(
        paths=["a", "b"],
        labels=np.array([0, 1]),
        predicted=np.array([0, 0]),
        classnames=("x", "y"),
        confidence=np.array([0.9, 0.6]),
        nll=np.array([0.1, 2.0]),
        seconds=0.5,
        encode_seconds=0.2,
    )
    out = CellOutput()
    out.add("d", "base", preds)
    rows = {(r.metric, r.subset): r.value for r in out.results}
    assert rows[("acc", "base")] == 50.0
    assert rows[("ece", "base")] == pytest.approx(100 * (0.5 * 0.1 + 0.5 * 0.6))
    assert rows[("nll", "base")] == pytest.approx(1.05)
    assert out.cost.eval_s == pytest.approx(0.3) and out.cost.cache_fill_s == pytest.approx(0.2)
    assert out.cost.eval_images == 2
    out.add_not_applicable("d", "new", "no weights for unseen classes")
    assert all(math.isnan(r.value) for r in out.results if r.subset == "new")
    assert {r.metric for r in out.results if r.subset == "new"} == {"acc", "ece", "nll"}


# -- cost of a cell ----------------------------------------------------------------------------------
def test_training_cost_excludes_the_cache_fill_and_counts_trainable_values(monkeypatch):
    import time

    import benchmark.data.pipeline as pipeline

    method = torch.nn.Linear(3, 2)
    method.bias.requires_grad_(False)
    method.fitted_parameter_count = lambda: sum(p.numel() for p in method.parameters() if p.requires_grad)
    cost = CellCost()
    with cost.training(method):
        time.sleep(0.2)
        pipeline._ENCODE_SECONDS[0] += 0.15  # as if 0.15 s of the block filled the feature cache
    assert cost.params == 6 and cost.cache_fill_s == pytest.approx(0.15)
    assert 0.04 < cost.train_s < 5.0  # the fill is subtracted from the wall time (sleep 0.2 - fill 0.15)
    out = SimpleNamespace(cost=cost, results=[])
    add_cost_rows(out, "d", 123.0)
    names = [r.metric for r in out.results]
    assert sorted(names) == sorted(COST_METRICS) and {r.subset for r in out.results} == {"run"}
    assert Result("d", "run", "train_s", 1.0).metric_key("d") == "train_s"


def test_peak_memory_is_positive_on_this_machine():
    assert PeakMemory("cpu").peak_mb() > 10.0


# -- leaderboard columns ---------------------------------------------------------------------------
def _b2n_runs():
    runs = []
    for method, trains in (("coop", 10.0), ("zeroshot", 0.0)):
        for dataset in ("d1", "d2"):
            for seed in (1, 2) if method == "coop" else (1,):
                tags = {"run_key": f"{method}{dataset}{seed}", "method": method, "label": method, "protocol": "b2n"}
                tags.update(dataset=dataset, seed=str(seed), shots="16", backbone="world")
                run = finished(f"{method}-{dataset}-{seed}", tags, {"acc_base": 80.0 + seed, "acc_new": 60.0})
                run.results += [
                    {"eval_dataset": dataset, "subset": "base", "metric": "ece", "value": 5.0 * seed},
                    {"eval_dataset": dataset, "subset": "new", "metric": "ece", "value": 20.0},
                    {"eval_dataset": dataset, "subset": "run", "metric": "train_s", "value": trains * seed},
                    {"eval_dataset": dataset, "subset": "run", "metric": "params", "value": 512.0 * (trains > 0)},
                ]
                runs.append(run)
    return runs


def test_b2n_leaderboard_has_ece_and_cost_columns():
    wide = wide_table("b2n", long_rows(_b2n_runs()), ["d1", "d2"])
    for column in run_column_names(__import__("benchmark.registry").registry.PROTOCOLS.get("b2n").table):
        assert column in wide.columns
    coop = wide[wide.method == "coop"].set_index("dataset")
    assert coop.loc["d1", "ece_base"] == 7.5 and coop.loc["d1", "ece_new"] == 20.0
    assert coop.loc["average", "train_s"] == 15.0 and coop.loc["d2", "params"] == 512
    assert math.isnan(coop.loc["d1", "eval_s"])  # not measured by these runs
    zero = wide[wide.method == "zeroshot"].set_index("dataset")
    assert zero.loc["average", "train_s"] == 0.0 and zero.loc["d1", "ece_base"] == 5.0


def test_a_column_is_empty_unless_every_seed_measured_it():
    runs = _b2n_runs()
    old = next(r for r in runs if r.tags["method"] == "coop" and r.tags["dataset"] == "d1" and r.tags["seed"] == "2")
    old.results = [row for row in old.results if row["metric"] == "acc"]  # logged before ECE and cost existed
    coop = wide_table("b2n", long_rows(runs), ["d1", "d2"]).query("method == 'coop'").set_index("dataset")
    assert coop.loc["d1", "n_seeds"] == 2 and math.isnan(coop.loc["d1", "ece_base"])
    assert math.isnan(coop.loc["d1", "train_s"]) and coop.loc["d2", "train_s"] == 15.0


def test_transfer_cost_stands_on_every_target_of_its_source():
    runs = []
    for seed in (1, 2, 3):
        tags = {"run_key": f"k{seed}", "method": "coop", "label": "coop", "protocol": "xd", "dataset": "src"}
        tags.update(seed=str(seed), shots="16", backbone="world")
        run = finished(f"r{seed}", tags, {"acc_all": 90.0, "acc_all/t1": 40.0 + seed, "acc_all/t2": 50.0})
        run.results += [
            {"eval_dataset": "t1", "subset": "all", "metric": "ece", "value": 10.0},
            {"eval_dataset": "t2", "subset": "all", "metric": "ece", "value": 30.0},
            {"eval_dataset": "src", "subset": "run", "metric": "train_s", "value": float(seed)},
        ]
        runs.append(run)
    wide = wide_table("xd", long_rows(runs), ["src", "t1", "t2"]).set_index("target")
    assert list(wide.train_s) == [2.0, 2.0, 2.0, 2.0]
    assert wide.loc["average", "ece"] == 20.0 and math.isnan(wide.loc["src", "ece"])


def test_the_cost_figure_reads_the_headline_on_the_average_row(tmp_path):
    from benchmark.registry import PROTOCOLS
    from benchmark.results.leaderboard import seed_values
    from benchmark.results.report import plot_cost

    long = long_rows(_b2n_runs())
    wide = wide_table("b2n", long, ["d1", "d2"])
    seeds = seed_values("b2n", long, ["d1", "d2"])
    points = headline_points(PROTOCOLS.get("b2n").table, wide, seeds).set_index("method")
    hm = 2 * 81.5 * 60.0 / (81.5 + 60.0)
    assert points.loc["coop", "train_s"] == 15.0 and points.loc["coop", "value"] == pytest.approx(hm, abs=0.01)
    plot_cost("b2n", wide, seeds, tmp_path / "cost.png")
    assert (tmp_path / "cost.png").read_bytes().startswith(b"\x89PNG")


def test_markdown_shows_ece_and_cost_with_na_for_unscorable_subsets():
    from benchmark.results.leaderboard import seed_values
    from benchmark.results.report import markdown_leaderboard

    runs = _b2n_runs()
    for run in runs:
        if run.tags["method"] == "zeroshot":
            for row in run.results:
                if row["subset"] == "new" and row["metric"] in ("acc", "ece"):
                    row["value"] = float("nan")
    long = long_rows(runs)
    text = markdown_leaderboard("b2n", wide_table("b2n", long), profile="world", seeds=seed_values("b2n", long))
    assert "| ECE base | ECE new | train s | params |" in text
    line = next(x for x in text.splitlines() if x.startswith("| d1 | zeroshot"))
    assert line.endswith("| 5.00 | n/a | 0.0 | 0 |")


# -- progress lines, epoch batching, layout ----------------------------------------------------------
def test_progress_line_reads_like_a_log_line():
    spec = SimpleNamespace(dataset="patternnet", seed=2)
    status = CellStatus("k", "coop", ok=True, seconds=8.21, metrics={"acc_base": 91.12, "acc_new": 51.5, "acc_val": 1})
    line = progress_line(status, spec, 37, 260, elapsed=60.0)
    assert line == "[37/260] coop patternnet seed 2: base 91.1 new 51.5 (8.2 s), ETA 6 min"
    failed = CellStatus("k", "coop", ok=False, reason="non-finite loss", seconds=1.0)
    assert (
        progress_line(failed, spec, 260, 260, 99.0)
        == "[260/260] coop patternnet seed 2: FAILED: non-finite loss (1.0 s)"
    )
    xd = CellStatus("k", "coop", ok=True, seconds=2.0, metrics={"acc_all": 80.0, "acc_all/rsicd": 40.0})
    assert progress_line(xd, spec, 1, 4, 2.0).endswith("all 80.0 rsicd 40.0 (2.0 s), ETA 6 s")


def test_epoch_metrics_go_out_in_batches_of_at_most_1000():
    calls = []
    tracker = SimpleNamespace(log_epochs=lambda run_id, pending: calls.append(len(pending)))
    buffer = EpochBuffer(tracker, "run")
    for epoch in range(500):
        buffer.add(SimpleNamespace(epoch=epoch, train_loss=1.0, train_acc=50.0, lr=0.1))
    assert calls == []  # nothing sent while the cell trains (under FLUSH_EVERY_S)
    buffer.flush()
    assert calls == [500]

    sent = []
    from benchmark.run.tracking import Tracker

    fake = SimpleNamespace(
        client=SimpleNamespace(log_batch=lambda run_id, metrics, tags: sent.append((len(metrics), len(tags)))),
        _claims={},  # a run opened without a claim
    )
    Tracker.log_epochs(fake, "run", [(e, {"a": 1.0, "b": 2.0, "c": 3.0}, 0) for e in range(500)])
    assert sent == [(1000, 1), (500, 0)]  # 1500 metrics; one heartbeat


def test_auto_layout_on_cpus_is_one_thread_per_worker(monkeypatch):
    import benchmark.run.runner as runner

    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    options = RunOptions(tracking_uri="sqlite:///x.db", results_dir=".", device="cpu")
    layout = resolve_layout(options)
    assert (layout.executor, layout.workers, layout.threads) == ("local", 2, 1)
    assert resolve_layout(options, pending=runner.AUTO_POOL_MIN_CELLS).executor == "local"
    small = resolve_layout(options, pending=runner.AUTO_POOL_MIN_CELLS - 1)  # no pool start-up for a few cells
    assert (small.executor, small.threads) == ("serial", 1)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 64)
    assert resolve_layout(options).workers == runner.MAX_AUTO_WORKERS
    explicit = resolve_layout(RunOptions(tracking_uri="sqlite:///x.db", results_dir=".", executor="serial"))
    assert (explicit.executor, explicit.workers, explicit.threads) == ("serial", 1, 0)
    chosen = RunOptions(tracking_uri="sqlite:///x.db", results_dir=".", device="cpu", workers=3)
    assert (resolve_layout(chosen, pending=4).executor, resolve_layout(chosen, pending=4).workers) == ("local", 3)


def test_cost_columns_survive_the_runs_csv(tmp_path):
    from benchmark.results.leaderboard import read_long_rows, write_atomic

    long = long_rows(_b2n_runs())
    write_atomic(long, tmp_path / "runs.csv")
    again = wide_table("b2n", read_long_rows(tmp_path / "runs.csv"), ["d1", "d2"])
    pd.testing.assert_frame_equal(again, wide_table("b2n", long, ["d1", "d2"]))


@pytest.mark.slow
def test_a_redirected_run_prints_one_line_per_cell_and_every_run_carries_its_cost(world_cache, tmp_path):
    import re
    import sqlite3

    from sweep_support import run_sweep

    done = run_sweep(tmp_path, world_cache, quiet=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [x for x in done.stdout.splitlines() if x.startswith("[")]
    assert len(lines) == 4, done.stdout
    pattern = (
        r"\[(\d)/4\] (coop\[[^\]]+\]|zeroshot) (mlrsnet|rsicd) seed \d: "
        r"base \d+\.\d new \d+\.\d \(\d+\.\d s\)(, ETA \d+ (s|min))?"
    )
    assert all(re.fullmatch(pattern, x) for x in lines), lines
    assert [int(re.match(r"\[(\d)", x).group(1)) for x in lines] == [1, 2, 3, 4]
    assert "4 cell(s) run" in done.stdout

    con = sqlite3.connect(tmp_path / "mlflow.db")
    rows = con.execute(
        "select t.value, m.key from latest_metrics m join tags t on t.run_uuid = m.run_uuid and t.key = 'label'"
    ).fetchall()
    for label in ("coop", "zeroshot"):
        keys = {k for lab, k in rows if lab.split("[")[0] == label}
        assert {"ece_base", "ece_new", "nll_base", "nll_new", *COST_METRICS} <= keys, (label, keys)
    board = pd.read_csv(tmp_path / "results" / "leaderboard_b2n.csv")
    coop = board[board.method.str.startswith("coop")]
    assert len(coop) == 3 and board.ece_base.notna().all() and (coop.train_s > 0).all()
    assert (tmp_path / "results" / "cost_b2n.png").is_file()
