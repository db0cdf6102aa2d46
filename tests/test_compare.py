"""`benchmark compare` end to end on a temporary MLflow store with fake runs (no model)."""

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.compare import match_runs, select_runs
from benchmark.report import log_sweep_reports, write_reports
from benchmark.tracking import FinishedRun, Tracker


def outcomes(n, right_a, right_b):
    """Predictions where A is right on `right_a` image indices and B on `right_b` (2 classes)."""
    labels = np.arange(n) % 2
    pred_a = np.where(np.isin(np.arange(n), right_a), labels, 1 - labels)
    pred_b = np.where(np.isin(np.arange(n), right_b), labels, 1 - labels)
    return labels, pred_a, pred_b


def predictions(subsets, which):
    frames = []
    for subset, (labels, pred_a, pred_b) in subsets.items():
        frames.append(
            pd.DataFrame(
                {
                    "eval_dataset": "ds",
                    "subset": subset,
                    "path": [f"{subset}/{i:03d}.png" for i in range(len(labels))],
                    "label": labels,
                    "predicted": pred_a if which == "a" else pred_b,
                }
            )
        )
    return pd.concat(frames)


def log_run(tracker, tmp_path, method, seed, shots, frame, label=None):
    experiment = tracker.experiment_id("b2n")
    tags = {
        "kind": "cell",
        "run_key": f"{label or method}-{seed}-{shots}",
        "method": method,
        "label": label or method,
        "protocol": "b2n",
        "dataset": "ds",
        "seed": str(seed),
        "shots": str(shots),
        "backbone": "world",
        "profile": "world",
    }
    run_id = tracker.client.create_run(experiment, tags=tags).info.run_id
    if frame is not None:
        folder = tmp_path / run_id
        folder.mkdir()
        frame.to_csv(folder / "predictions.csv.gz", index=False)
        tracker.client.log_artifact(run_id, str(folder / "predictions.csv.gz"))
    tracker.client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, lock_dir=tmp_path / "locks")
    # per seed: base (100 images) A right on 0..89, B on 0..59 -> b = 30, c = 0
    #           new (20 images)   A right on 0..14, B on 0..12 and 15 -> b = 2, c = 1
    subsets = {"base": outcomes(100, range(90), range(60)), "new": outcomes(20, range(15), [*range(13), 15])}
    for seed in (1, 2):
        log_run(tracker, tmp_path, "alpha", seed, 16, predictions(subsets, "a"))
        log_run(tracker, tmp_path, "zeroshot", seed, 4, predictions(subsets, "b"))  # zero-shot: any shots match
        log_run(tracker, tmp_path, "beta", seed, 8, predictions(subsets, "b"))  # other shots: never matched
    log_run(tracker, tmp_path, "gamma", 1, 16, None)  # finished before predictions were logged
    return uri, tracker, tmp_path


def test_compare_prints_differences_intervals_and_p_values(store, capsys):
    uri, _, _ = store
    assert main(["compare", "alpha", "zeroshot", "--protocol", "b2n", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "matched pairs: 2" in out
    base = next(line for line in out.splitlines() if " base " in line)
    new = next(line for line in out.splitlines() if " new " in line)
    # base: 90% vs 60% over 200 paired images; McNemar b=60, c=0 -> chi-square 59^2/60 = 58.02 on 1 df,
    # whose survival function is erfc(sqrt(x / 2)) = 2.60e-14
    assert "+30.00" in base and "90.00" in base and "60.00" in base
    assert "McNemar chi2-cc (b=60, c=0)" in base and f"{math.erfc(math.sqrt(59**2 / 60 / 2)):.2e}" in base
    # new: 75% vs 70%; b=4, c=2 -> exact binomial, p = 2 * (1 + 6 + 15) / 64 = 0.6875
    assert "+5.00" in new and "McNemar exact (b=4, c=2)" in new and "0.6875" in new
    low, high = (float(v) for v in base.split("[")[1].split("]")[0].split(","))
    assert low < 30.0 < high
    # deterministic: the same command prints the same table
    assert main(["compare", "alpha", "zeroshot", "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out == out


def test_compare_swapped_order_negates_the_difference(store, capsys):
    uri, _, _ = store
    assert main(["compare", "zeroshot", "alpha", "--tracking-uri", uri]) == 0
    base = next(line for line in capsys.readouterr().out.splitlines() if " base " in line)
    assert "-30.00" in base and "(b=0, c=60)" in base


@pytest.mark.parametrize(
    "argv, message",
    [
        (["alpha", "nosuch"], "no finished b2n, profile world runs of 'nosuch'"),
        (["alpha", "beta"], "share dataset, seed, shots"),
        (["gamma", "zeroshot"], "has predictions.csv.gz on both sides"),
        (["alpha", "alpha"], "two different methods"),
    ],
)
def test_compare_exits_2_with_one_line(store, capsys, argv, message):
    uri, _, _ = store
    assert main(["compare", *argv, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def fake(method, seed, shots, label=None, end=0):
    tags = {"method": method, "label": label or method, "dataset": "ds", "seed": str(seed), "shots": str(shots)}
    return FinishedRun(f"{label or method}-{seed}-{shots}-{end}", tags, {}, end)


def test_matching_rules():
    trained = [fake("coop", 1, 16), fake("coop", 1, 4), fake("coop", 2, 16)]
    zero = [fake("zeroshot", 1, 16), fake("zeroshot", 2, 1)]
    pairs = match_runs(trained, zero, zero_a=False, zero_b=True)
    assert sorted((a.tags["seed"], a.tags["shots"], b.tags["seed"]) for a, b in pairs) == [
        ("1", "16", "1"),
        ("1", "4", "1"),
        ("2", "16", "2"),
    ]
    flipped = match_runs(zero, trained, zero_a=True, zero_b=False)
    assert {(a.tags["method"], b.tags["shots"]) for a, b in flipped} == {("zeroshot", "16"), ("zeroshot", "4")}
    # two trained methods need equal shots; the latest run of a key wins
    other = [fake("maple", 1, 16, end=1), fake("maple", 1, 16, end=2), fake("maple", 2, 8)]
    pairs = match_runs(trained, other, zero_a=False, zero_b=False)
    assert [(a.tags["seed"], b.end_time) for a, b in pairs] == [("1", 2)]


def test_select_runs_prefers_labels_and_rejects_ambiguous_methods():
    runs = [fake("coop", 1, 16), fake("coop", 1, 16, label="coop[world+abc]"), fake("maple", 1, 16)]
    assert len(select_runs(runs, "coop")) == 1 and len(select_runs(runs, "coop[world+abc]")) == 1
    runs = [fake("coop", 1, 16, label="coop[a]"), fake("coop", 1, 16, label="coop[b]")]
    with pytest.raises(Exception, match="several variants"):
        select_runs(runs, "coop")


def test_sweep_reports_attach_to_a_finished_parent_run(store):
    _, tracker, tmp_path = store
    parent = tracker.client.create_run(tracker.experiment_id("b2n"), tags={"kind": "sweep"}).info.run_id
    tracker.client.set_terminated(parent, "FINISHED")
    out = tmp_path / "results"
    wide = pd.DataFrame(
        [{"method": "m", "dataset": "ds", "n_seeds": 1, "base_mean": 50.0, "base_std": 0.0, "base_ci95": 0.0,
          "new_mean": 40.0, "new_std": 0.0, "new_ci95": 0.0, "hm": 44.44}]
    )  # fmt: skip
    paths = write_reports("b2n", wide, out, profile="world")
    log_sweep_reports(tracker, parent, [*paths, out / "missing.csv"])
    names = {a.path for a in tracker.client.list_artifacts(parent, "leaderboards")}
    assert names == {"leaderboards/leaderboard_b2n.md", "leaderboards/leaderboard_b2n.png"}
