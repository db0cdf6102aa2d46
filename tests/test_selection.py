"""Checkpoint selection (last / best_val / best_test), the validation row, and the tuning search's choice."""

import pandas as pd
import pytest

from benchmark.errors import UsageError
from benchmark.plan.sweep import SweepRequest, build_plan
from benchmark.run.tune import check_seeds, default_grid, grid_points, search_table


@pytest.fixture(scope="module")
def world_context(world_cache):
    from benchmark.backbone.load import load_backbone, parse_backbone
    from benchmark.core.context import CellContext
    from benchmark.plan.profiles import get_profile
    from benchmark.world import ensure_world

    clip = load_backbone(parse_backbone("world"), device="cpu")
    return CellContext(profile=get_profile("world"), data_root=ensure_world(world_cache), clip=clip)


def _cell(context, selection: str):
    from benchmark.registry import PROTOCOLS

    request = SweepRequest(
        methods=["coop"],
        datasets=["mlrsnet"],
        seeds=[1],
        overrides={"train.epochs": 4, "train.selection": selection, "train.aug_views": 1},
    )
    spec = build_plan(request).specs[0]
    return PROTOCOLS.get("b2n").run(spec, context)


def test_best_val_reports_the_epoch_chosen_on_validation_shots(world_context):
    last = _cell(world_context, "last")
    best = _cell(world_context, "best_val")
    values = {kind: {r.subset: r.value for r in out.results} for kind, out in (("last", last), ("best", best))}
    assert set(values["best"]) == {"base", "new", "val"}  # the validation row is recorded, never reported
    assert last.tags["selection"] == "last" and "selected_epoch" not in last.tags
    assert best.tags["selection"] == "best_val" and 1 <= int(best.tags["selected_epoch"]) <= 4
    # the same trajectory (same seed); the chosen epoch is the best on validation, so never worse than the last
    assert values["best"]["val"] >= values["last"]["val"]
    assert set(best.selected_state) == set(best.learned_state)


def test_best_test_is_marked_in_the_label_on_every_profile(world_cache, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(world_cache))
    plan = build_plan(
        SweepRequest(methods=["bimors", "zeroshot"], datasets=["mlrsnet"], seeds=[1], presets={"bimors": "faithful"})
    )
    labels = {spec.method: plan.labels[spec.run_key] for spec in plan.specs}
    assert labels == {"bimors": "bimors[faithful, best_test]", "zeroshot": "zeroshot"}


def test_tuning_seeds_must_not_be_reported_seeds():
    check_seeds([101, 102, 103], [1, 2, 3, 4, 5])
    with pytest.raises(UsageError, match="tuning seeds 3 are reported seeds"):
        check_seeds([3, 101], [1, 2, 3, 4, 5])


def test_default_grid_is_the_same_budget_around_every_preset():
    grid = default_grid("coop", "world", "b2n")
    assert grid == {"train.lr": ["0.001", "0.002"], "train.epochs": ["50", "100"]}
    assert len(grid_points(grid)) == 4
    with pytest.raises(UsageError, match="trains nothing"):
        default_grid("zeroshot", "world", "b2n")


def test_search_table_chooses_the_best_validation_mean_and_breaks_ties_by_cost():
    points = grid_points({"train.lr": ["0.001", "0.002"], "train.epochs": ["5", "10"]})
    rows = []
    for index, _ in enumerate(points):
        for dataset in ("a", "b"):
            for seed in (101, 102):
                score = {0: 60.0, 1: 70.0, 2: 70.0, 3: 65.0}[index]  # points 1 and 2 tie on validation
                rows.append({"point": index, "dataset": dataset, "seed": seed, "value": score + (seed - 101)})
    table, best = search_table("coop", "world", "b2n", points, pd.DataFrame(rows))
    assert points[best] == {"train.lr": "0.002", "train.epochs": "5"}  # the tie goes to fewer epochs
    average = table[table.dataset == "average"].set_index("point")
    assert average.loc[best].chosen == "yes" and (table.chosen == "yes").sum() == 3  # a, b and average rows
    assert average.loc[1].val_mean == 70.5 and average.loc[1].n_seeds == 2


@pytest.mark.slow
def test_tune_runs_its_grid_on_tuning_seeds_and_scores_validation_rows(world_env, capsys):
    from benchmark.cli.main import main

    argv = ["tune", "coop", "--grid", "epochs=1,2", "--datasets", "mlrsnet", "--seeds", "101"]
    assert main(argv) == 0
    table = pd.read_csv(world_env / "results" / "tuning" / "coop.csv")
    assert len(table[table.dataset == "mlrsnet"]) == 2  # one row per grid point, scored from the runs' val rows
    assert table.val_mean.between(0, 100).all() and "chosen: epochs=" in capsys.readouterr().out
