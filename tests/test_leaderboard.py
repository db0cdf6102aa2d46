import pandas as pd
import pytest
from runs_support import finished

from benchmark.plan.specs import LONG_COLUMNS, Result
from benchmark.results.leaderboard import (
    collapsed_runs,
    harmonic_mean,
    long_rows,
    seed_values,
    write_atomic,
)
from benchmark.results.tables.base_new import BaseNewTable
from benchmark.results.tables.transfer import TransferTable
from benchmark.run.tracking import FinishedRun


def b2n_run(method, dataset, seed, base, new, key=None):
    tags = {
        "run_key": key or f"{method}-{dataset}-{seed}",
        "method": method,
        "label": method,
        "protocol": "b2n",
        "dataset": dataset,
        "seed": str(seed),
        "shots": "16",
        "backbone": "world",
    }
    return finished(f"id-{method}-{dataset}-{seed}", tags, {"acc_base": base, "acc_new": new, "lr": 1.0}, 0)


RUNS = [
    b2n_run("m", "A", 1, 80, 60),
    b2n_run("m", "A", 2, 82, 62),
    b2n_run("m", "A", 3, 84, 58),
    b2n_run("m", "B", 1, 70, 50),
    b2n_run("m", "B", 2, 70, 52),
    b2n_run("m", "B", 3, 70, 54),
]


def test_long_rows_have_the_documented_schema():
    long = long_rows(RUNS)
    assert tuple(long.columns) == LONG_COLUMNS
    assert len(long) == 12 and set(long.subset) == {"base", "new"}


def test_b2n_arithmetic_on_hand_made_rows():
    table = BaseNewTable().wide(long_rows(RUNS), ["A", "B"]).set_index("dataset")
    a = table.loc["A"]
    assert (a.n_seeds, a.base_mean, a.new_mean) == (3, 82.0, 60.0)
    assert a.base_std == pytest.approx(2.0, abs=0.005)  # sample std (ddof 1) of 80, 82, 84
    assert a.base_ci95 == pytest.approx(4.302653 * 2.0 / 3**0.5, abs=0.005)  # t(0.975, 2) * s / sqrt(3)
    assert a.hm == pytest.approx(2 * 82 * 60 / 142, abs=0.005)
    b = table.loc["B"]
    assert (b.base_mean, b.base_std, b.base_ci95, b.new_mean) == (70.0, 0.0, 0.0, 52.0)
    avg = table.loc["average"]
    # HM of the averaged base and new, not the mean of per-dataset HMs (the papers' convention)
    assert (avg.base_mean, avg.new_mean) == (76.0, 56.0)
    assert avg.hm == pytest.approx(2 * 76 * 56 / 132, abs=0.005)
    assert avg.base_std == pytest.approx(1.0, abs=0.005)  # sample std over seeds of per-seed dataset averages


def test_average_row_uses_only_seeds_every_dataset_has():
    runs = [*RUNS, b2n_run("m", "A", 4, 100, 100)]
    avg = BaseNewTable().wide(long_rows(runs)).set_index("dataset").loc["average"]
    assert avg.n_seeds == 3 and avg.base_mean == 76.0


def test_hm_known_values():
    # methods/REFERENCES.md §2: CoOp 82.69/63.22 -> 71.66, CoCoOp 80.47/71.69 -> 75.83, MaPLe 82.28/75.14 -> 78.55
    assert round(harmonic_mean(82.69, 63.22), 2) == 71.66
    assert round(harmonic_mean(80.47, 71.69), 2) == 75.83
    assert round(harmonic_mean(82.28, 75.14), 2) == 78.55


def test_transfer_table_averages_targets_not_the_source():
    runs = []
    for seed, (src, t1, t2) in enumerate([(90, 40, 60), (92, 44, 62)], start=1):
        tags = {
            "run_key": f"k{seed}",
            "method": "m",
            "label": "m",
            "protocol": "xd",
            "dataset": "S",
            "seed": str(seed),
            "shots": "16",
            "backbone": "world",
        }
        metrics = {"acc_all": src, "acc_all/T1": t1, "acc_all/T2": t2}
        runs.append(finished(f"r{seed}", tags, metrics, 0))
    table = TransferTable().wide(long_rows(runs), ["T1", "T2"]).set_index("target")
    assert list(table.index) == ["S", "T1", "T2", "average"]
    assert table.loc["S"].acc_mean == 91.0 and table.loc["T1"].acc_std == pytest.approx(2.83, abs=0.005)
    assert table.loc["average"].acc_mean == pytest.approx((50 + 53) / 2)


def test_long_rows_come_from_the_result_rows_not_from_metric_names():
    run = b2n_run("m", "A", 1, 80, 60)
    # MLflow metrics are a view: a run's rows are its results.json rows, whatever its metrics say
    run.metrics.update({"acc_base": 1.0, "acc_all/B": 2.0})
    long = long_rows([run])
    assert sorted(long.subset) == ["base", "new"] and sorted(long.value) == [60.0, 80.0]
    assert long_rows([FinishedRun("x", run.tags, {"acc_base": 80.0}, 0, results=[])]).empty
    with pytest.raises(ValueError, match="not read"):
        long_rows([FinishedRun("x", run.tags, {"acc_base": 80.0}, 0)])
    assert Result("T", "all", "acc", 2.0).metric_key("S") == "acc_all/T"


def test_write_atomic_replaces_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("old")
    write_atomic(pd.DataFrame({"a": [1]}), path)
    assert path.read_text().splitlines() == ["a", "1"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_one_seed_of_one_configuration_counts_once():
    old = b2n_run("m", "A", 1, 10, 10, key="old-version-key")
    new = b2n_run("m", "A", 1, 80, 60, key="new-version-key")
    old.end_time, new.end_time = 1, 2
    long = long_rows([new, old, b2n_run("m", "A", 2, 82, 62)])
    assert sorted(set(long.run_key)) == ["m-A-2", "new-version-key"]
    assert BaseNewTable().wide(long).set_index("dataset").loc["A"].n_seeds == 2


def test_transfer_runs_over_other_target_sets_do_not_double_count_seeds():
    def xd(key, targets, end, metrics):
        tags = {
            "run_key": key,
            "method": "m",
            "label": "m",
            "protocol": "xd",
            "dataset": "S",
            "seed": "1",
            "shots": "16",
            "backbone": "world",
            "targets": targets,
        }
        return finished(key, tags, metrics, end)

    partial = xd("k1", "T1", 1, {"acc_all": 90, "acc_all/T1": 40})
    full = xd("k2", "T1,T2", 2, {"acc_all": 92, "acc_all/T1": 44, "acc_all/T2": 60})
    table = TransferTable().wide(long_rows([partial, full])).set_index("target")
    assert table.loc["S"].n_seeds == 1 and table.loc["S"].acc_mean == 92
    assert table.loc["T1"].acc_mean == 44 and table.loc["average"].acc_mean == 52


def test_ci95_is_student_t_over_seeds_recomputed_from_the_runs_csv(tmp_path):
    """The Done-when check: *_ci95 = t(0.975, n-1) * sd(ddof=1) / sqrt(n), from runs_*.csv alone."""
    from scipy import stats

    runs = [
        *RUNS,
        b2n_run("m", "A", 4, 90, 40),
        b2n_run("zeroshot", "A", 0, 50, 55),
        b2n_run("zeroshot", "B", 0, 40, 45),
    ]
    long = long_rows(runs)
    write_atomic(long, tmp_path / "runs_b2n.csv")
    board = BaseNewTable().wide(long, ["A", "B"])
    csv = pd.read_csv(tmp_path / "runs_b2n.csv")
    for row in board[board.dataset != "average"].itertuples(index=False):
        for subset in ("base", "new"):
            values = csv[(csv.method == row.method) & (csv.train_dataset == row.dataset) & (csv.subset == subset)].value
            assert row.n_seeds == len(values)
            ci = getattr(row, f"{subset}_ci95")
            if len(values) == 1:
                assert pd.isna(ci) and pd.isna(getattr(row, f"{subset}_std"))
            else:
                expected = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / len(values) ** 0.5
                assert ci == pytest.approx(expected, abs=0.005)
    zero = board[board.method == "zeroshot"].set_index("dataset")
    assert list(zero.n_seeds) == [1, 1, 1]  # A, B and their average: one deterministic run each


def test_seed_values_carry_per_seed_hm_and_averages():
    values = seed_values("b2n", long_rows(RUNS), ["A", "B"])
    hm = values[(values.dataset == "A") & (values.subset == "hm")].set_index("seed").value
    assert hm.loc[1] == pytest.approx(harmonic_mean(80, 60))
    average = values[(values.dataset == "average") & (values.subset == "base")].set_index("seed").value
    assert list(average) == [75.0, 76.0, 77.0]


def test_a_trained_run_below_zero_shot_is_collapsed():
    runs = [
        b2n_run("zeroshot", "A", 0, 60, 55),
        b2n_run("coop", "A", 1, 85, 50),
        b2n_run("coop", "A", 2, 41, 50),  # ended below what the frozen model knew
        b2n_run("coop", "B", 1, 10, 10),  # no zero-shot run on B: nothing to compare with
    ]
    collapsed = collapsed_runs("b2n", long_rows(runs))
    assert list(zip(collapsed.method, collapsed.dataset, collapsed.seed)) == [("coop", "A", 2)]
    assert collapsed.zero_shot.iloc[0] == 60 and collapsed.value.iloc[0] == 41
