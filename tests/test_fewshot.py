"""The few-shot protocol: K as a sweep axis, the shots table (per-K rows and the area), labels, a real sweep."""

import math

import pandas as pd
import pytest
from runs_support import finished

from benchmark.cli.main import main
from benchmark.plan.sweep import SweepRequest, build_plan
from benchmark.results.leaderboard import long_rows, seed_values, wide_table
from benchmark.results.report import markdown_leaderboard
from benchmark.results.tables.shots import AREA, area_under_shots

COLUMNS = ["method", "dataset", "shots", "n_seeds", "acc_mean", "acc_std", "acc_ci95"]


def run(method, dataset, seed, shots, acc):
    tags = {
        "run_key": f"{method}-{dataset}-{seed}-{shots}",
        "method": method,
        "label": method,
        "protocol": "fewshot",
        "dataset": dataset,
        "seed": str(seed),
        "shots": str(shots),
        "backbone": "world",
    }
    return finished(f"id-{method}-{dataset}-{seed}-{shots}", tags, {"acc_all": acc, "acc_val": 1.0})


CURVES = {  # (dataset, seed) -> accuracy at K = 1, 4, 16
    ("A", 1): (40.0, 60.0, 80.0),
    ("A", 2): (50.0, 62.0, 78.0),
    ("B", 1): (30.0, 50.0, 70.0),
    ("B", 2): (34.0, 54.0, 66.0),
}
RUNS = [run("m", d, s, k, acc) for (d, s), accs in CURVES.items() for k, acc in zip((1, 4, 16), accs)]
RUNS += [run("zeroshot", "A", 0, 0, 45.0), run("zeroshot", "B", 0, 0, 35.0)]


def test_area_is_the_trapezoid_on_a_log2_axis_normalised_to_an_accuracy():
    # log2 K = 0, 2, 4: two trapezoids of width 2 over a span of 4
    assert area_under_shots([1, 4, 16], [40, 60, 80]) == pytest.approx((2 * 50 + 2 * 70) / 4)
    assert area_under_shots([1, 2, 4, 8, 16], [70.0] * 5) == pytest.approx(70.0)  # a flat curve is its level
    # unequal spacing: log2 K = 0, 3 -> one trapezoid over the whole span
    assert area_under_shots([1, 8], [10, 40]) == pytest.approx(25.0)
    with pytest.raises(ValueError):
        area_under_shots([16], [80.0])


def test_shots_table_rows_seeds_area_and_average():
    table = wide_table("fewshot", long_rows(RUNS), ["A", "B"])
    assert list(table.columns) == [*COLUMNS, "ece", "train_s", "eval_s", "params", "peak_mem_mb"]
    m = table[table.method == "m"].set_index(["dataset", "shots"])
    assert list(m.index) == [(d, k) for d in ("A", "B", "average") for k in ("1", "4", "16", AREA)]
    a1 = m.loc[("A", "1")]
    assert (a1.n_seeds, a1.acc_mean) == (2, 45.0)
    assert a1.acc_std == pytest.approx(math.sqrt(50), abs=0.005)  # sample std of 40, 50
    areas = [area_under_shots([1, 4, 16], CURVES[("A", s)]) for s in (1, 2)]
    assert m.loc[("A", AREA)].acc_mean == pytest.approx(sum(areas) / 2, abs=0.005)
    # the average dataset: per (K, seed) over A and B, then over seeds
    assert m.loc[("average", "16")].acc_mean == pytest.approx((80 + 78 + 70 + 66) / 4)
    per_seed_area = [
        (area_under_shots([1, 4, 16], CURVES[("A", s)]) + area_under_shots([1, 4, 16], CURVES[("B", s)])) / 2
        for s in (1, 2)
    ]
    assert m.loc[("average", AREA)].acc_mean == pytest.approx(sum(per_seed_area) / 2, abs=0.005)


def test_zero_shot_runs_once_and_stands_at_every_k():
    table = wide_table("fewshot", long_rows(RUNS), ["A", "B"])
    zs = table[table.method == "zeroshot"].set_index(["dataset", "shots"])
    for k in ("1", "4", "16", AREA):
        assert zs.loc[("A", k)].acc_mean == 45.0 and zs.loc[("A", k)].n_seeds == 1
        assert pd.isna(zs.loc[("A", k)].acc_std)
    assert zs.loc[("average", "4")].acc_mean == 40.0


def test_a_zero_shot_only_table_stands_on_the_default_k_axis():
    table = wide_table("fewshot", long_rows(RUNS[-2:]), ["A", "B"])
    assert list(table[table.dataset == "A"].shots) == ["1", "2", "4", "8", "16", AREA]
    assert set(table.acc_mean[table.dataset == "average"]) == {40.0}


def test_markdown_marks_a_separated_winner_per_dataset_and_k():
    long = long_rows(RUNS)
    text = markdown_leaderboard(
        "fewshot", wide_table("fewshot", long, ["A", "B"]), profile="world", seeds=seed_values("fewshot", long)
    )
    assert text.splitlines()[0] == "# Leaderboard: few-shot (`fewshot`)"
    assert "| dataset | shots | method | seeds | accuracy |" in text
    assert "`area`" in text  # the legend defines the area
    # at K = 16 on A, m (80, 78) beats zero-shot's single run (45) by 35 and 33: t = 34, p = 0.019 over 2 seeds
    assert "| A | 16 | m | 2 | **79.00** ± 1.41 |" in text
    # at K = 1 on B, m (30, 34) against 35: the best is zero-shot, and -5, -1 over two seeds is not separated
    assert "| B | 1 | zeroshot | 1 | 35.00 ≈ |" in text


def test_plan_takes_several_shot_counts_and_labels_do_not_mark_k(world_cache, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    plan = build_plan(
        SweepRequest(methods=["zeroshot", "coop"], protocol="fewshot", datasets=["rsicd"], seeds=[1, 2], shots=[1, 4])
    )
    cells = sorted((s.method, s.seed, s.shots) for s in plan.specs)
    # zero-shot draws nothing: one run (seed 0, shots 0) whatever the seeds and shot counts
    assert cells == [("coop", 1, 1), ("coop", 1, 4), ("coop", 2, 1), ("coop", 2, 4), ("zeroshot", 0, 0)]
    assert set(plan.labels.values()) == {"coop", "zeroshot"}
    assert len({s.run_key for s in plan.specs}) == 5
    default = build_plan(SweepRequest(methods=["coop"], protocol="fewshot", datasets=["rsicd"], seeds=[1]))
    assert sorted(s.shots for s in default.specs) == [1, 2, 4, 8, 16]
    b2n = build_plan(SweepRequest(methods=["coop"], protocol="b2n", datasets=["rsicd"], seeds=[1], shots=[8]))
    assert set(b2n.labels.values()) == {"coop[8-shot]"}  # off the b2n default: marked


@pytest.mark.slow
def test_fewshot_sweep_writes_its_leaderboard(world_env):
    argv = ["run", "--protocol", "fewshot", "--methods", "zeroshot,coop", "--datasets", "rsicd,mlrsnet"]
    assert main([*argv, "--seeds", "1", "--shots", "1,4", "--set", "epochs=1", "--quiet"]) == 0
    results = world_env / "results"
    board = pd.read_csv(results / "leaderboard_fewshot.csv", dtype={"shots": str})
    assert list(board.columns) == [*COLUMNS, "ece", "train_s", "eval_s", "params", "peak_mem_mb"]
    coop = board[board.method.str.startswith("coop")]
    assert sorted(set(coop.shots)) == ["1", "4", AREA]
    assert set(coop.dataset) == {"rsicd", "mlrsnet", "average"} and len(coop) == 9
    runs = pd.read_csv(results / "runs_fewshot.csv")
    trained = runs[(runs.method.str.startswith("coop")) & (runs.subset == "all") & (runs.metric == "acc")]
    for row in trained.itertuples():
        cell = coop[(coop.dataset == row.train_dataset) & (coop.shots == str(row.shots))]
        assert cell.acc_mean.iloc[0] == pytest.approx(row.value, abs=0.005)
    assert (results / "leaderboard_fewshot.md").read_text().startswith("# Leaderboard: few-shot")
    assert (results / "leaderboard_fewshot.png").stat().st_size > 1000


def test_paper_fewshot_dry_run_on_a_placeholder_eurosat_root(tmp_path, capsys):
    from PIL import Image

    for folder in ("AnnualCrop", "Forest", "SeaLake"):
        (tmp_path / "eurosat" / "2750" / folder).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (40 * i, 90, 60)).save(
                tmp_path / "eurosat" / "2750" / folder / f"{folder}_{i}.jpg"
            )
    argv = ["run", "--profile", "paper", "--protocol", "fewshot", "--datasets", "eurosat", "--data-root", str(tmp_path)]
    assert main([*argv, "--methods", "coop", "--seeds", "1", "--dry-run"]) == 0
    import json

    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [c["shots"] for c in cells] == [1, 2, 4, 8, 16]
    # CoOp's names for EuroSAT's folders, in the recorded label order; the split is generated (no split file)
    assert cells[0]["classes"] == ["Annual Crop Land", "Forest", "Sea or Lake"]
    assert all(c["label"] == "coop[generated split of eurosat]" for c in cells)
