"""`benchmark reproduce`: the comparison logic on hand-made tables, the refusal of foreign run_keys, and
one real rerun of a tiny committed sweep (slow)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.errors import UsageError
from benchmark.plan.specs import LONG_COLUMNS
from benchmark.results.reproduce_check import FAMILY_ALPHA, TOLERANCE, compare, filter_committed
from benchmark.results.stats import prediction_halfwidth
from benchmark.run.reproduce import reproduce

# Per-seed base/new accuracies of a trained method on two datasets (spread of a few points, as seeds give).
BASE = {"d1": [80.0, 84.0, 78.0], "d2": [90.0, 88.0, 93.0]}
NEW = {"d1": [60.0, 55.0, 58.0], "d2": [70.0, 74.0, 69.0]}


def b2n_rows(method: str, values: dict[str, dict[str, list[float]]], seeds=(1, 2, 3)) -> list[dict]:
    """Long rows of one b2n method: values[subset][dataset] = per-seed accuracies."""
    rows = []
    for subset, per_dataset in values.items():
        for dataset, accs in per_dataset.items():
            for seed, value in zip(seeds, accs):
                rows.append(
                    {
                        "run_key": f"{method}-{dataset}-{seed}",
                        "run_id": "r",
                        "method": method,
                        "protocol": "b2n",
                        "train_dataset": dataset,
                        "eval_dataset": dataset,
                        "subset": subset,
                        "seed": seed,
                        "shots": 16,
                        "backbone": "world",
                        "metric": "acc",
                        "value": value,
                    }
                )
    return rows


def xd_rows(method: str, per_target: dict[str, list[float]], seeds=(1, 2, 3)) -> list[dict]:
    """Long rows of one xd method trained on `src`."""
    rows = []
    for target, accs in per_target.items():
        for seed, value in zip(seeds, accs):
            rows.append(
                {
                    "run_key": f"{method}-src-{seed}",
                    "run_id": "r",
                    "method": method,
                    "protocol": "xd",
                    "train_dataset": "src",
                    "eval_dataset": target,
                    "subset": "all",
                    "seed": seed,
                    "shots": 16,
                    "backbone": "world",
                    "metric": "acc",
                    "value": value,
                }
            )
    return rows


def long(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


def shifted(values: dict[str, dict[str, list[float]]], by: float) -> dict[str, dict[str, list[float]]]:
    return {s: {d: [v + by for v in accs] for d, accs in per.items()} for s, per in values.items()}


TRAINED = {"base": BASE, "new": NEW}


def row(report, method, dataset, subset, source=""):
    (found,) = [
        r for r in report.rows if (r.method, r.source, r.dataset, r.subset) == (method, source, dataset, subset)
    ]
    return found


def test_a_rerun_inside_the_interval_passes():
    committed = long(b2n_rows("coop", TRAINED))
    rerun = long(b2n_rows("coop", shifted(TRAINED, 0.5)))
    report = compare({"b2n": (committed, rerun)})
    assert report.k == 2 and report.alpha == pytest.approx(FAMILY_ALPHA / 2)
    assert [(r.dataset, r.subset) for r in report.decisive] == [("average", "base"), ("average", "new")]
    assert all(r.inside and r.test == "interval" for r in report.rows)
    assert report.exit_code == 0
    average = row(report, "coop", "average", "base")
    per_seed = np.mean([BASE["d1"], BASE["d2"]], axis=0)  # per seed over the datasets, as the leaderboard
    assert average.n == average.m == 3
    assert average.committed == pytest.approx(per_seed.mean()) and average.diff == pytest.approx(0.5)
    assert average.halfwidth == pytest.approx(prediction_halfwidth(per_seed, 3, FAMILY_ALPHA / 2))


def test_a_rerun_far_outside_fails_and_only_average_rows_decide():
    committed = long(b2n_rows("coop", TRAINED))
    far_on_d1 = {s: {"d1": [v + 30 for v in per["d1"]], "d2": per["d2"]} for s, per in TRAINED.items()}
    report = compare({"b2n": (committed, long(b2n_rows("coop", far_on_d1)))})
    assert not row(report, "coop", "d1", "base").inside and not row(report, "coop", "d1", "base").decisive
    assert row(report, "coop", "d2", "base").inside
    assert not row(report, "coop", "average", "base").inside  # +15 on the average, intervals of a few points
    assert not row(report, "coop", "average", "hm").decisive  # HM is shown, never tested
    assert report.exit_code == 1


def test_a_per_dataset_miss_alone_does_not_fail_the_run():
    """The per-dataset rows are informational: only the average rows decide the exit code."""
    committed = long(b2n_rows("coop", TRAINED))
    opposite = {s: {"d1": [v + 6 for v in per["d1"]], "d2": [v - 6 for v in per["d2"]]} for s, per in TRAINED.items()}
    report = compare({"b2n": (committed, long(b2n_rows("coop", opposite)))})
    assert all(r.inside for r in report.decisive) and report.exit_code == 0


def test_bonferroni_counts_average_rows_with_spread_over_all_protocols():
    zeroshot = {"base": {"d1": [50.0], "d2": [60.0]}, "new": {"d1": [40.0], "d2": [45.0]}}
    b2n = long(
        b2n_rows("coop", TRAINED) + b2n_rows("cocoop", shifted(TRAINED, 3)) + b2n_rows("zeroshot", zeroshot, (0,))
    )
    xd = long(xd_rows("coop", {"src": [90.0, 91.0, 89.0], "t1": [50.0, 53.0, 51.0], "t2": [40.0, 38.0, 44.0]}))
    report = compare({"b2n": (b2n, b2n), "xd": (xd, xd)})
    # coop and cocoop: base and new (4); xd coop: all (1); zero-shot has no spread: decisive but not in k.
    assert report.k == 5 and report.alpha == pytest.approx(0.01)
    assert len(report.decisive) == 7
    assert {r.test for r in report.decisive if r.method == "zeroshot"} == {"tolerance"}
    xd_average = row(report, "coop", "average", "all", source="src")
    assert xd_average.decisive and not row(report, "coop", "src", "all", source="src").decisive
    assert xd_average.halfwidth == pytest.approx(
        prediction_halfwidth(np.mean([[50.0, 53.0, 51.0], [40.0, 38.0, 44.0]], axis=0), 3, 0.01)
    )
    assert all(r.diff == 0 for r in report.rows) and report.exit_code == 0


def test_rows_without_spread_pass_within_the_tolerance_only():
    zeroshot = {"base": {"d1": [50.0], "d2": [60.0]}, "new": {"d1": [40.0], "d2": [45.0]}}
    committed = long(b2n_rows("zeroshot", zeroshot, (0,)))
    close = compare({"b2n": (committed, long(b2n_rows("zeroshot", shifted(zeroshot, TOLERANCE - 0.1), (0,))))})
    assert close.k == 0 and close.exit_code == 0
    assert all(r.n == 1 and r.test == "tolerance" and r.halfwidth == TOLERANCE for r in close.rows)
    far = compare({"b2n": (committed, long(b2n_rows("zeroshot", shifted(zeroshot, TOLERANCE + 0.1), (0,))))})
    assert far.exit_code == 1 and not row(far, "zeroshot", "average", "new").inside
    # identical values over several seeds (a deterministic method run per seed) are no spread either
    same = {"base": {"d1": [50.0] * 3, "d2": [60.0] * 3}, "new": {"d1": [40.0] * 3, "d2": [45.0] * 3}}
    report = compare({"b2n": (long(b2n_rows("zeroshot", same)), long(b2n_rows("zeroshot", shifted(same, 0.2))))})
    assert report.k == 0 and all(r.test == "tolerance" for r in report.rows) and report.exit_code == 0


def test_a_method_with_one_dataset_is_decided_by_that_dataset():
    one = {s: {"d1": per["d1"]} for s, per in TRAINED.items()}
    committed = long(b2n_rows("coop", one))
    report = compare({"b2n": (committed, long(b2n_rows("coop", shifted(one, 40))))})
    assert [(r.dataset, r.subset) for r in report.decisive] == [("d1", "base"), ("d1", "new")]
    assert report.k == 2 and report.exit_code == 1


def test_a_missing_rerun_fails_its_row():
    committed = long(b2n_rows("coop", TRAINED))
    rerun = committed[committed.seed != 3]  # the seed-3 cells failed
    report = compare({"b2n": (committed, rerun)})
    assert row(report, "coop", "average", "base").m == 2 and row(report, "coop", "average", "base").inside
    empty = compare({"b2n": (committed, committed.iloc[0:0])})
    assert empty.exit_code == 1 and {r.test for r in empty.rows} == {"missing"}
    assert math.isnan(row(empty, "coop", "average", "base").rerun)


def test_filters_keep_the_single_run_of_an_untrained_method():
    zeroshot = {"base": {"d1": [50.0]}, "new": {"d1": [40.0]}}
    committed = long(
        b2n_rows("coop", TRAINED) + b2n_rows("coop[paper_ctxv1]", TRAINED) + b2n_rows("zeroshot", zeroshot, (0,))
    )
    kept = filter_committed(committed, methods=["coop", "zeroshot"], datasets=["d1"], seeds=[1, 2])
    assert set(kept.method) == {"coop", "coop[paper_ctxv1]", "zeroshot"}
    assert set(kept.train_dataset) == {"d1"} and set(kept.seed) == {0, 1, 2}
    assert set(filter_committed(committed, methods=["coop[paper_ctxv1]"]).method) == {"coop[paper_ctxv1]"}


# -- planning against a committed csv --------------------------------------------------------------


def committed_csv(
    folder, world_cache, wrong: int = 0, protocol: str = "b2n", datasets=("mlrsnet",), methods=None, overrides=None
):
    """A committed runs csv of coop and zero-shot (b2n: on mlrsnet) with our run_keys, `wrong` of them broken."""
    from benchmark.plan.sweep import SweepRequest, build_plan

    assert os.environ["BENCHMARK_CACHE"] == str(world_cache)  # the caller points the cache at the world
    request = SweepRequest(
        methods=methods or ["coop", "zeroshot"],
        protocol=protocol,
        datasets=list(datasets) or None,
        seeds=[1, 2],
        overrides=overrides or {},
    )
    plan = build_plan(request)
    rows = []
    for index, spec in enumerate(plan.specs):
        evaluated = [(spec.dataset, s) for s in ("base", "new")] if protocol == "b2n" else []
        evaluated += [(d, "all") for d in (spec.dataset, *spec.targets)] if protocol != "b2n" else []
        for eval_dataset, subset in evaluated:
            rows.append(
                {
                    "run_key": spec.run_key if index >= wrong else "0" * 16,
                    "run_id": "r",
                    "method": plan.labels[spec.run_key],
                    "protocol": protocol,
                    "train_dataset": spec.dataset,
                    "eval_dataset": eval_dataset,
                    "subset": subset,
                    "seed": spec.seed,
                    "shots": spec.shots,
                    "backbone": spec.backbone,
                    "metric": "acc",
                    "value": 50.0 + spec.seed,
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    long(rows).to_csv(folder / f"runs_{protocol}.csv", index=False)
    return plan


@pytest.fixture
def no_sweep(monkeypatch):
    import benchmark.run.runner

    def refuse(*args, **kwargs):
        raise AssertionError("a sweep ran although planning should have refused")

    monkeypatch.setattr(benchmark.run.runner, "run_sweep", refuse)


def test_foreign_run_keys_are_refused_before_any_sweep(world_cache, tmp_path, monkeypatch, no_sweep):
    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    results = tmp_path / "results"
    committed_csv(results, world_cache, wrong=1)
    with pytest.raises(UsageError, match=r"1 of \d+ planned cells have run_keys that the committed runs_b2n.csv lacks"):
        reproduce(results, tmp_path / "work", ["b2n"], cache=world_cache)
    assert os.environ["BENCHMARK_CACHE"] == str(world_cache)  # the scratch cache is undone


def test_cli_reports_foreign_run_keys_in_one_line(world_cache, tmp_path, monkeypatch, capsys, no_sweep):
    from sweep_support import fresh_cache

    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    results = tmp_path / "results"
    committed_csv(results, world_cache, wrong=2)
    fresh_cache(tmp_path / "work" / "cache", world_cache)  # the scratch cache, sharing the generated world
    argv = ["reproduce", "--results-dir", str(results), "--workdir", str(tmp_path / "work"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "regenerate it first" in err[0] and "(e.g. " in err[0]


def test_planning_rebuilds_every_protocol_and_skips_labels_the_defaults_do_not_give(world_cache, tmp_path, monkeypatch):
    from benchmark.plan.sweep import SweepRequest
    from benchmark.run.reproduce import plan_reproduction

    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    results = tmp_path / "results"
    plans = {
        "b2n": committed_csv(results, world_cache, datasets=("mlrsnet", "rsicd")),
        "xd": committed_csv(results, world_cache, protocol="xd", datasets=()),
        "dg": committed_csv(results, world_cache, protocol="dg", datasets=()),
    }
    # a non-default preset of the same method, which the defaults cannot plan back
    b2n = pd.read_csv(results / "runs_b2n.csv")
    other = b2n[b2n.method == "coop"].assign(method="coop[paper_csc]", run_key=lambda f: "x" + f.run_key.str[1:])
    pd.concat([b2n, other]).to_csv(results / "runs_b2n.csv", index=False)

    selections = {s.protocol: s for s in plan_reproduction(results)}
    assert set(selections) == {"b2n", "xd", "dg"}
    for protocol, plan in plans.items():
        selection = selections[protocol]
        assert selection.run_keys == {spec.run_key for spec in plan.specs}, protocol
        assert sorted(selection.committed.seed.unique()) == [0, 1, 2]  # zero-shot's one run, coop's two seeds
        # one sweep plans coop's seeds and zero-shot's single run together (the backbone loads once)
        assert [sorted(r.methods) for r in selection.requests] == [["coop", "zeroshot"]]
    assert list(selections["b2n"].skipped) == ["coop[paper_csc]"]
    source, *targets = selections["xd"].requests[0].datasets
    assert (source, tuple(targets)) == (plans["xd"].specs[0].dataset, plans["xd"].specs[0].targets)

    # the same labels with overrides: skipped by the defaults, rebuilt by a base request that has them
    overridden = tmp_path / "overridden"
    plan = committed_csv(overridden, world_cache, datasets=("mlrsnet",), methods=["coop"], overrides={"epochs": 3})
    with pytest.raises(UsageError, match="no committed cell can be rebuilt"):
        plan_reproduction(overridden)
    (selection,) = plan_reproduction(overridden, base=SweepRequest(overrides={"epochs": 3}))
    assert selection.run_keys == {spec.run_key for spec in plan.specs} and not selection.skipped


def test_cli_refuses_unknown_filters(tmp_path, capsys, no_sweep):
    results = tmp_path / "results"
    results.mkdir()
    long(b2n_rows("coop", TRAINED)).to_csv(results / "runs_b2n.csv", index=False)
    base = ["reproduce", "--results-dir", str(results), "--workdir", str(tmp_path / "work")]
    assert main([*base, "--methods", "maple"]) == 2
    assert "--methods 'maple' is in no committed runs csv" in capsys.readouterr().err
    assert main([*base, "--seeds", "7"]) == 2
    assert main([*base, "--protocol", "xd"]) == 2
    assert "runs_xd.csv does not exist" in capsys.readouterr().err
    assert main(["reproduce", "--results-dir", str(tmp_path / "none")]) == 2


# -- one real rerun ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_rerunning_a_committed_sweep_on_the_same_machine_reproduces_it_exactly(world_cache, tmp_path, monkeypatch):
    """A tiny sweep is committed, then reproduced in a scratch store: every row identical, exit 0.

    The committed sweep uses overrides (so its coop label has brackets); the same overrides go to
    `reproduce` as its `base` request, which plans them back to the same labels and run_keys. The
    rerun's cache shares the generated world but starts with cold features, as on a fresh machine.
    """
    from sweep_support import fresh_cache

    from benchmark.cli.reproduce import format_report, json_lines
    from benchmark.plan.sweep import SweepRequest
    from benchmark.run.runner import RunOptions, run_sweep

    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    # Two epochs at a high rate without warm-up: seconds per cell, yet seeds 1 and 2 land points apart.
    overrides = {"epochs": 2, "warmup_epochs": 0, "lr": 0.2}
    template = SweepRequest(overrides=overrides)
    request = SweepRequest(methods=["coop", "zeroshot"], datasets=["mlrsnet"], seeds=[1, 2], overrides=overrides)
    committed = tmp_path / "committed"
    options = RunOptions(tracking_uri=f"sqlite:///{tmp_path / 'committed.db'}", results_dir=committed, progress=False)
    assert not run_sweep(request, options).failures

    cache = fresh_cache(tmp_path / "scratch-cache", world_cache)
    report = reproduce(committed, tmp_path / "work", None, base=template, cache=cache)
    assert os.environ["BENCHMARK_CACHE"] == str(world_cache)
    labels = set(pd.read_csv(committed / "runs_b2n.csv").method)
    assert any(label.startswith("coop[") for label in labels) and {r.method for r in report.rows} == labels
    assert not report.skipped and not any(report.failed_cells.values())
    assert report.rows and all(r.diff == 0 and r.inside and r.m == r.n for r in report.rows)  # bit for bit
    # One dataset, so no average: its rows decide. coop base and new by interval; zero-shot by tolerance.
    assert report.k == 2 and report.exit_code == 0
    assert {(r.method.partition("[")[0], r.subset, r.test) for r in report.decisive} == {
        ("coop", "base", "interval"),
        ("coop", "new", "interval"),
        ("zeroshot", "base", "tolerance"),
        ("zeroshot", "new", "tolerance"),
    }
    text = format_report(report)
    assert "k = 2, level 1-0.05/k = 0.9750; 4 of 4 average rows inside -> exit 0" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert len(json_lines(report)) == len(report.rows) + 1

    # A kept scratch folder resumes: nothing runs again, and the verdict stands.
    again = reproduce(committed, tmp_path / "work", ["b2n"], base=template, cache=cache, seeds=[1])
    assert again.exit_code == 0 and {r.n for r in again.rows if r.method.startswith("coop")} == {1}
