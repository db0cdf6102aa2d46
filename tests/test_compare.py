"""`benchmark compare` end to end on a temporary MLflow store with fake runs (no model)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from runs_support import finished
from scipy import stats

from benchmark.cli.main import main
from benchmark.errors import UsageError
from benchmark.results.compare import (
    CompareReport,
    check_selections,
    compare_outcomes,
    match_runs,
    select_runs,
)
from benchmark.results.compare_format import format_report
from benchmark.results.report import log_sweep_reports, write_reports
from benchmark.run.tracking import Tracker


def outcomes(n, right_a, right_b):
    """Predictions where A is right on `right_a` image indices and B on `right_b` (2 classes)."""
    labels = np.arange(n) % 2
    pred_a = np.where(np.isin(np.arange(n), right_a), labels, 1 - labels)
    pred_b = np.where(np.isin(np.arange(n), right_b), labels, 1 - labels)
    return labels, pred_a, pred_b


def predictions(subsets, which, dataset="ds"):
    frames = []
    for subset, (labels, pred_a, pred_b) in subsets.items():
        frames.append(
            pd.DataFrame(
                {
                    "eval_dataset": dataset,
                    "subset": subset,
                    "path": [f"{subset}/{i:04d}.png" for i in range(len(labels))],
                    "label": labels,
                    "predicted": pred_a if which == "a" else pred_b,
                }
            )
        )
    return pd.concat(frames)


def log_run(tracker, tmp_path, method, seed, shots, frame, label=None, dataset="ds"):
    experiment = tracker.experiment_id("b2n")
    tags = {
        "kind": "cell",
        "run_key": f"{label or method}-{dataset}-{seed}-{shots}",
        "method": method,
        "label": label or method,
        "protocol": "b2n",
        "dataset": dataset,
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


def log_seed_pairs(tracker, tmp_path, method_a, method_b, points, n=1000):
    """Two trained methods on dataset ds, one seed per entry of `points`: A beats B by that many points.

    B is right on the first 60% of the n images; A on the first 60% + points% (or fewer when negative),
    so every seed's difference is decisive on its own images.
    """
    for seed, diff in enumerate(points, start=1):
        right_b = int(0.6 * n)
        subsets = {"base": outcomes(n, range(right_b + round(diff * n / 100)), range(right_b))}
        log_run(tracker, tmp_path, method_a, seed, 16, predictions(subsets, "a"))
        log_run(tracker, tmp_path, method_b, seed, 16, predictions(subsets, "b"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, lock_dir=tmp_path / "locks")
    # dataset ds, every seed: base (100 images) A right on 0..89, B on 0..59 -> b = 30, c = 0 (+30 points)
    #                         new (20 images)   A right on 0..14, B on 0..12 and 15 -> b = 2, c = 1 (+5)
    subsets = {"base": outcomes(100, range(90), range(60)), "new": outcomes(20, range(15), [*range(13), 15])}
    # dataset ds2: base +25 on seed 1, +35 on seed 2 (B right on 0..59); new as on ds
    ds2 = {
        1: {"base": outcomes(100, range(85), range(60)), "new": subsets["new"]},
        2: {"base": outcomes(100, range(95), range(60)), "new": subsets["new"]},
    }
    # zero-shot runs once per dataset, with seed 0: it matches every seed (and shots) of a trained method
    log_run(tracker, tmp_path, "zeroshot", 0, 4, predictions(subsets, "b"))
    log_run(tracker, tmp_path, "zeroshot", 0, 4, predictions(ds2[1], "b", "ds2"), dataset="ds2")
    for seed in (1, 2):
        log_run(tracker, tmp_path, "alpha", seed, 16, predictions(subsets, "a"))
        log_run(tracker, tmp_path, "alpha", seed, 16, predictions(ds2[seed], "a", "ds2"), dataset="ds2")
        log_run(tracker, tmp_path, "beta", seed, 8, predictions(subsets, "b"))  # other shots: never matched
    log_run(tracker, tmp_path, "gamma", 1, 16, None)  # finished before predictions were logged
    # per-seed differences that disagree in sign (+10, +10, -12), and consistent ones (+8, +9, +10)
    log_seed_pairs(tracker, tmp_path, "flip_a", "flip_b", [10, 10, -12])
    log_seed_pairs(tracker, tmp_path, "steady_a", "steady_b", [8, 9, 10])
    return uri, tracker, tmp_path


def lines_of(out):
    """Table rows by (dataset, subset) (b2n: no training dataset column)."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) > 4 and words[2] in ("base", "new"):
            rows[(words[0], words[2])] = line
    return rows


def json_rows(uri, capsys, a, b):
    assert main(["compare", a, b, "--json", "--tracking-uri", uri]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_compare_prints_seed_level_intervals_p_values_and_verdicts(store, capsys):
    uri, _, _ = store
    assert main(["compare", "alpha", "zeroshot", "--protocol", "b2n", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "matched pairs: 4" in out  # 2 seeds x 2 datasets, each with the dataset's one zero-shot run
    rows = lines_of(out)
    base, new = rows[("ds", "base")], rows[("ds", "new")]
    # ds base: +30 on both seeds: no spread over seeds -> p 0; the bootstrap interval excludes 0
    assert "+30.00" in base and "90.00" in base and "60.00" in base and "A better" in base
    # pooled McNemar (secondary): b=60, c=0 -> chi-square 59^2/60 = 58.02 on 1 df = erfc(sqrt(x / 2)) = 2.60e-14
    assert f"{math.erfc(math.sqrt(59**2 / 60 / 2)):.2e}" in base
    low, high = (float(v) for v in base.split("[")[1].split("]")[0].split(","))
    assert 0 < low < 30.0 < high
    # ds new: +5 on both seeds, but 20 images per seed: the image level leaves it open
    assert "+5.00" in new and "not distinguishable" in new
    # ds2 base: +25 and +35: t = 6 on 1 df, p = 0.1051 -> not distinguishable with two seeds
    ds2 = rows[("ds2", "base")]
    assert "+30.00" in ds2 and "0.1051" in ds2 and "not distinguishable" in ds2
    # the average over ds and ds2: 4 (dataset, seed) pairs 30, 30, 25, 35 -> t = 14.7 on 3 df
    average = rows[("average", "base")]
    assert "2 (4)" in average and "+30.00" in average and "A better" in average
    assert "McNemar p (same models)" in out and "hierarchical bootstrap" in out and "trained on" not in out
    assert max(len(line) for line in out.splitlines()) <= 120
    # deterministic: the same command prints the same table
    assert main(["compare", "alpha", "zeroshot", "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out == out


def test_compare_swapped_order_negates_the_difference(store, capsys):
    uri, _, _ = store
    assert main(["compare", "zeroshot", "alpha", "--tracking-uri", uri]) == 0
    base = lines_of(capsys.readouterr().out)[("ds", "base")]
    assert "-30.00" in base and "B better" in base


def test_compare_json_rows_carry_seed_level_statistics(store, capsys):
    uri, _, _ = store
    rows = json_rows(uri, capsys, "alpha", "zeroshot")
    keys = {"train_dataset", "shots", "dataset", "subset", "n_seeds", "n_pairs", "diff", "ci_low", "ci_high", "p"}
    keys |= {"verdict", "acc_a", "acc_b", "mcnemar_p_same_models"}
    assert all(keys <= set(row) for row in rows)
    by_key = {(row["dataset"], row["subset"]): row for row in rows}
    assert set(by_key) == {(d, s) for d in ("ds", "ds2", "average") for s in ("base", "new")}
    ds2 = by_key[("ds2", "base")]
    assert (ds2["train_dataset"], ds2["shots"], ds2["n_seeds"], ds2["n_pairs"]) == ("ds2", "16", 2, 2)
    assert ds2["diff"] == pytest.approx(30.0) and ds2["p"] == pytest.approx(stats.ttest_1samp([25, 35], 0).pvalue)
    assert ds2["ci_low"] < ds2["diff"] < ds2["ci_high"]
    average = by_key[("average", "base")]
    assert (average["n_seeds"], average["n_pairs"], average["datasets"]) == (2, 4, ["ds", "ds2"])
    assert average["p"] == pytest.approx(stats.ttest_1samp([30, 30, 25, 35], 0).pvalue)
    assert average["verdict"] == "A better" and average["acc_a"] == pytest.approx(90.0)


def test_disagreeing_seeds_are_not_distinguishable_although_mcnemar_is_significant(store, capsys):
    uri, _, _ = store
    (row,) = [r for r in json_rows(uri, capsys, "flip_a", "flip_b") if r["dataset"] == "ds"]
    # pooled over the 3 x 1000 images: b = 200, c = 120 -> (80 - 1)^2 / 320 = 19.5, p = 1e-5
    same_models = row["mcnemar_p_same_models"]
    assert same_models == pytest.approx(stats.chi2.sf(79**2 / 320, 1)) and same_models < 1e-3
    assert row["diff"] == pytest.approx((10 + 10 - 12) / 3)
    assert row["p"] == pytest.approx(stats.ttest_1samp([10, 10, -12], 0).pvalue) and row["p"] > 0.05
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["verdict"] == "not distinguishable"


def test_consistent_seeds_give_a_verdict(store, capsys):
    uri, _, _ = store
    (row,) = [r for r in json_rows(uri, capsys, "steady_a", "steady_b") if r["dataset"] == "ds"]
    assert row["n_seeds"] == 3 and row["diff"] == pytest.approx(9.0)
    assert row["p"] == pytest.approx(stats.ttest_1samp([8, 9, 10], 0).pvalue) and row["p"] < 0.05
    assert row["ci_low"] > 0 and row["verdict"] == "A better"
    (row,) = [r for r in json_rows(uri, capsys, "steady_b", "steady_a") if r["dataset"] == "ds"]
    assert row["verdict"] == "B better"


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


def transfer_outcomes(points_by_target, n=500):
    """`paired_outcomes` rows of an xd run trained on src: per (target, seed), A beats B by the given points."""
    frames = []
    for target, points in points_by_target.items():
        for seed, diff in enumerate(points, start=1):
            index = np.arange(n)
            frames.append(
                pd.DataFrame(
                    {
                        "train_dataset": "src",
                        "shots": "16",
                        "seed": seed,
                        "eval_dataset": target,
                        "subset": "all",
                        "path": [f"{i}.png" for i in index],
                        "correct_a": (index < 300 + round(diff * n / 100)).astype(int),
                        "correct_b": (index < 300).astype(int),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_transfer_average_is_over_the_targets_only():
    paired = transfer_outcomes({"src": [-20, -20, -20], "t1": [4, 5, 6], "t2": [6, 7, 8]})
    rows = compare_outcomes(paired, protocol="xd", resamples=500)
    assert [(r.train_dataset, r.eval_dataset) for r in rows] == [
        ("src", "src"),
        ("src", "t1"),
        ("src", "t2"),
        ("src", "average"),
    ]
    average = rows[-1]
    assert average.datasets == ("t1", "t2") and (average.n_seeds, average.n_pairs) == (3, 6)
    assert average.bootstrap.diff == pytest.approx(6.0) and average.verdict == "A better"
    # the targets of one seed share its trained model: the t-test runs over the per-seed target averages
    assert average.test.p_value == pytest.approx(stats.ttest_1samp([5, 6, 7], 0).pvalue)
    # one seed: all targets share one trained model, so there is no training replication to test
    (one,) = [r for r in compare_outcomes(paired[paired.seed == 1], protocol="xd", resamples=500) if r.is_average]
    assert one.n_pairs == 2 and one.verdict == "not distinguishable (one seed)"
    report = CompareReport("a", "b", "xd", None, 3, 3, 3, 500, rows)
    assert "trained on" in format_report(report).splitlines()[3]


def fake(method, seed, shots, label=None, end=0, dataset="ds"):
    tags = {"method": method, "label": label or method, "dataset": dataset, "seed": str(seed), "shots": str(shots)}
    return finished(f"{label or method}-{dataset}-{seed}-{shots}-{end}", tags, {}, end)


def test_compare_refuses_to_mix_checkpoint_selections_unless_told():
    test_selected = fake("bimors", 1, 16)
    test_selected.tags["selection"] = "best_test"
    last = fake("coop", 1, 16)
    last.tags["selection"] = "last"
    untagged = fake("cocoop", 1, 16)  # runs that predate the tag reported the last epoch
    with pytest.raises(UsageError, match="bimors reports checkpoints chosen by best_test, coop by last"):
        check_selections([test_selected], [last], ("bimors", "coop"), allow_mixed=False)
    check_selections([test_selected], [last], ("bimors", "coop"), allow_mixed=True)
    check_selections([last], [untagged], ("coop", "cocoop"), allow_mixed=False)
    check_selections([test_selected], [fake("zeroshot", 0, 0)], ("bimors", "zeroshot"), allow_mixed=False)


def test_matching_rules():
    trained = [fake("coop", 1, 16), fake("coop", 1, 4), fake("coop", 2, 16), fake("coop", 3, 16, dataset="other")]
    zero = [fake("zeroshot", 0, 1)]  # one zero-shot run per dataset, seed 0: it matches every seed and shots
    pairs = match_runs(trained, zero, zero_a=False, zero_b=True)
    assert sorted((a.tags["seed"], a.tags["shots"], b.tags["seed"]) for a, b in pairs) == [
        ("1", "16", "0"),
        ("1", "4", "0"),
        ("2", "16", "0"),
    ]
    flipped = match_runs(zero, trained, zero_a=True, zero_b=False)
    assert sorted((b.tags["seed"], b.tags["shots"]) for a, b in flipped) == [("1", "16"), ("1", "4"), ("2", "16")]
    assert {a.tags["method"] for a, b in flipped} == {"zeroshot"}
    # older per-seed zero-shot runs collapse onto one key: the latest stands
    zero = [fake("zeroshot", 1, 16, end=5), fake("zeroshot", 0, 16, end=9), fake("zeroshot", 2, 16, end=7)]
    pairs = match_runs(trained, zero, zero_a=False, zero_b=True)
    assert len(pairs) == 3 and {b.end_time for _, b in pairs} == {9}
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
    assert names == {"leaderboards/leaderboard_b2n.md", "leaderboards/leaderboard_b2n.png", "leaderboards/cost_b2n.png"}
