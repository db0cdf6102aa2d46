"""The backbone x method matrix (`leaderboard --matrix`) and the `--backbones` axis of a sweep."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from runs_support import finished

from benchmark.cli.main import main
from benchmark.results.leaderboard import collapsed_runs, long_rows, wide_table, write_atomic
from benchmark.results.matrix import COLUMNS, base_label, markdown_matrix, matrix_table, write_matrix
from benchmark.results.stats import t_halfwidth
from benchmark.results.tables.base_new import harmonic_mean

TINY = "random-tiny:1"


def _run(protocol, label, backbone, dataset, seed, values, shots=16):
    method = label.split("[", 1)[0]
    tags = {
        "run_key": f"{label}-{backbone}-{dataset}-{seed}-{shots}",
        "method": method,
        "label": label,
        "protocol": protocol,
        "dataset": dataset,
        "seed": str(seed),
        "shots": str(0 if method == "zeroshot" else shots),
        "backbone": backbone,
    }
    return finished(f"id-{tags['run_key']}", tags, values)


def b2n_runs(backbone="world", *, offset=0.0, zeroshot=True):
    """coop over seeds 1-3 on datasets A and B, zero-shot once per dataset; labels marked off the world backbone."""
    mark = "" if backbone == "world" else f"[{backbone}]"
    runs = []
    for dataset, shift in (("A", 0.0), ("B", -10.0)):
        for seed, (base, new) in zip((1, 2, 3), ((80, 60), (83, 62), (84, 57))):
            values = {"acc_base": base + shift + offset, "acc_new": new + shift + offset}
            runs.append(_run("b2n", f"coop{mark}", backbone, dataset, seed, values))
        if zeroshot:
            values = {"acc_base": 70 + shift + offset, "acc_new": 65 + shift + offset}
            runs.append(_run("b2n", f"zeroshot{mark}", backbone, dataset, 0, values))
    return runs


def test_b2n_matrix_repeats_the_leaderboard_average_row_and_the_gain_by_hand():
    long = long_rows(b2n_runs())
    matrix = matrix_table("b2n", long, ["A", "B"], default_backbone="world").set_index("method")
    assert list(matrix.reset_index().columns) == list(COLUMNS) and list(matrix.index) == ["zeroshot", "coop"]
    wide = wide_table("b2n", long, ["A", "B"]).set_index(["method", "dataset"])
    coop, zero = matrix.loc["coop"], matrix.loc["zeroshot"]
    assert coop.value == wide.loc[("coop", "average"), "hm"]
    assert zero.value == wide.loc[("zeroshot", "average"), "hm"]
    # by hand: per seed, average base and new over A and B, their HM; the interval is over those per-seed HMs
    per_seed = [harmonic_mean(b - 5, n - 5) for b, n in ((80, 60), (83, 62), (84, 57))]
    hm = harmonic_mean(np.mean([80, 83, 84]) - 5, np.mean([60, 62, 57]) - 5)
    assert coop.value == pytest.approx(hm, abs=0.005)
    assert coop.ci95 == pytest.approx(t_halfwidth(per_seed), abs=0.005)
    assert (coop.dataset, coop.covers, coop.n_seeds) == ("average", "A;B", 3)
    assert (coop.backbone, coop.label) == ("world", "coop")
    z = harmonic_mean(65, 60)
    assert coop.gain == pytest.approx(hm - z, abs=0.01)
    # zero-shot runs once: the per-seed differences are the per-seed HMs minus one number, same spread
    assert coop.gain_ci95 == pytest.approx(t_halfwidth(np.array(per_seed) - z), abs=0.005)
    assert zero.n_seeds == 1 and math.isnan(zero.ci95) and zero.gain == 0.0 and math.isnan(zero.gain_ci95)


def test_two_backbones_give_two_columns_each_with_its_own_zero_shot():
    runs = b2n_runs() + b2n_runs(TINY, offset=-20.0)
    matrix = matrix_table("b2n", long_rows(runs), ["A", "B"], default_backbone="world")
    assert list(matrix.method) == ["zeroshot", "zeroshot", "coop", "coop"]
    assert list(matrix.backbone) == ["world", TINY, "world", TINY]
    assert list(matrix.label) == ["zeroshot", f"zeroshot[{TINY}]", "coop", f"coop[{TINY}]"]
    world = matrix_table("b2n", long_rows(b2n_runs()), ["A", "B"], default_backbone="world")
    pd.testing.assert_frame_equal(matrix[matrix.backbone == "world"].reset_index(drop=True), world)
    tiny = matrix[(matrix.backbone == TINY) & (matrix.method == "coop")].iloc[0]
    zero_tiny = matrix[(matrix.backbone == TINY) & (matrix.method == "zeroshot")].iloc[0]
    assert tiny.gain == pytest.approx(tiny.value - zero_tiny.value, abs=0.01)  # not the world's zero-shot
    text = markdown_matrix("b2n", matrix, profile="world")
    assert "| method | world | random-tiny:1 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| coop |"))
    assert row.count("±") == 4 and row.count("(+") == 2


def test_a_missing_zero_shot_leaves_the_gain_na():
    runs = b2n_runs() + b2n_runs(TINY, zeroshot=False)
    matrix = matrix_table("b2n", long_rows(runs), ["A", "B"], default_backbone="world")
    tiny = matrix[matrix.backbone == TINY]
    assert list(tiny.method) == ["coop"] and tiny.gain.isna().all() and tiny.gain_ci95.isna().all()
    text = markdown_matrix("b2n", matrix, profile="world")
    row = next(line for line in text.splitlines() if line.startswith("| coop |"))
    assert row.endswith("(n/a) |")
    zero_row = next(line for line in text.splitlines() if line.startswith("| zeroshot |"))
    assert zero_row.endswith("| – |")  # not run on that backbone


def test_gain_needs_zero_shot_on_the_same_datasets():
    runs = [r for r in b2n_runs() if not (r.tags["method"] == "zeroshot" and r.tags["dataset"] == "B")]
    matrix = matrix_table("b2n", long_rows(runs), ["A", "B"], default_backbone="world").set_index("method")
    assert matrix.loc["zeroshot", "covers"] == "A" and matrix.loc["coop", "covers"] == "A;B"
    assert math.isnan(matrix.loc["coop", "gain"])


def xd_runs(backbone="world", offset=0.0):
    mark = "" if backbone == "world" else f"[{backbone}]"
    runs = []
    for seed, (src, t1, t2) in enumerate([(90, 40, 60), (92, 44, 62), (91, 47, 58)], start=1):
        values = {"acc_all": src + offset, "acc_all/T1": t1 + offset, "acc_all/T2": t2 + offset}
        runs.append(_run("xd", f"coop{mark}", backbone, "S", seed, values))
    values = {"acc_all": 70 + offset, "acc_all/T1": 45 + offset, "acc_all/T2": 50 + offset}
    runs.append(_run("xd", f"zeroshot{mark}", backbone, "S", 0, values))
    return runs


def test_transfer_matrix_is_the_target_average_with_its_interval():
    long = long_rows(xd_runs() + xd_runs(TINY, offset=-30))
    matrix = matrix_table("xd", long, ["T1", "T2"], default_backbone="world")
    world_long = long[long.backbone == "world"]
    wide = wide_table("xd", world_long, ["T1", "T2"]).set_index(["method", "target"])
    coop = matrix[(matrix.method == "coop") & (matrix.backbone == "world")].iloc[0]
    assert (coop.source, coop.dataset, coop.covers) == ("S", "average", "T1;T2")
    assert coop.value == wide.loc[("coop", "average"), "acc_mean"]
    assert coop.ci95 == wide.loc[("coop", "average"), "acc_ci95"]
    per_seed = np.array([50.0, 53.0, 52.5])  # mean of T1 and T2 per seed
    assert coop.value == pytest.approx(per_seed.mean(), abs=0.005)
    assert coop.gain == pytest.approx(per_seed.mean() - 47.5, abs=0.005)
    assert coop.gain_ci95 == pytest.approx(t_halfwidth(per_seed - 47.5), abs=0.005)
    tiny = matrix[(matrix.method == "coop") & (matrix.backbone == TINY)].iloc[0]
    assert tiny.value == pytest.approx(per_seed.mean() - 30, abs=0.005) and tiny.gain == coop.gain
    text = markdown_matrix("xd", matrix, profile="world")
    assert "| source | method | world | random-tiny:1 |" in text and "| S | coop |" in text


def test_fewshot_matrix_is_the_area_of_the_average_curve():
    runs = []
    for backbone, offset in (("world", 0.0), (TINY, -10.0)):
        mark = "" if backbone == "world" else f"[{backbone}]"
        for dataset, seed, accs in (("A", 1, (40, 60, 80)), ("A", 2, (50, 62, 78)), ("B", 1, (30, 50, 70))):
            for k, acc in zip((1, 4, 16), accs):
                runs.append(_run("fewshot", f"coop{mark}", backbone, dataset, seed, {"acc_all": acc + offset}, k))
        runs.append(_run("fewshot", f"coop{mark}", backbone, "B", 2, {"acc_all": 40 + offset}, 1))
        for k, acc in ((4, 54), (16, 66)):
            runs.append(_run("fewshot", f"coop{mark}", backbone, "B", 2, {"acc_all": acc + offset}, k))
        for dataset, acc in (("A", 45.0), ("B", 35.0)):
            runs.append(_run("fewshot", f"zeroshot{mark}", backbone, dataset, 0, {"acc_all": acc + offset}))
    long = long_rows(runs)
    matrix = matrix_table("fewshot", long, ["A", "B"], default_backbone="world")
    wide = wide_table("fewshot", long[long.backbone == "world"], ["A", "B"]).astype({"shots": str})
    area = wide[(wide.method == "coop") & (wide.dataset == "average") & (wide.shots == "area")].iloc[0]
    coop = matrix[(matrix.method == "coop") & (matrix.backbone == "world")].iloc[0]
    assert (coop.source, coop.dataset, coop.value, coop.ci95) == ("area", "average", area.acc_mean, area.acc_ci95)
    assert coop.gain == pytest.approx(coop.value - 40.0, abs=0.01)  # zero-shot's flat curve: its accuracy
    tiny = matrix[(matrix.method == "coop") & (matrix.backbone == TINY)].iloc[0]
    assert tiny.value == pytest.approx(coop.value - 10, abs=0.01)


def test_base_label_drops_only_the_backbone_mark():
    assert base_label(f"coop[world_ctxv1+abc123, {TINY}, 8-shot]", TINY, "world") == "coop[world_ctxv1+abc123, 8-shot]"
    assert base_label(f"coop[{TINY}]", TINY, "world") == "coop"
    assert base_label("coop[world]", "world", "world") == "coop[world]"  # a preset named like the default backbone
    assert base_label("coop[world, world]", "world", "ViT-B-16:openai") == "coop[world]"
    assert base_label("coop", TINY) == "coop"


def test_collapse_is_measured_against_zero_shot_on_the_same_backbone():
    runs = b2n_runs() + b2n_runs(TINY, offset=-20.0)
    # on the tiny backbone, coop seed 1 on A ends below the tiny zero-shot's base (50)
    runs.append(_run("b2n", f"coop[{TINY}]", TINY, "A", 4, {"acc_base": 45.0, "acc_new": 40.0}))
    collapsed = collapsed_runs("b2n", long_rows(runs))
    assert list(collapsed.method) == [f"coop[{TINY}]"] and list(collapsed.zero_shot) == [50.0]


def test_write_matrix_and_the_leaderboard_cli_from_runs(tmp_path, capsys):
    long = long_rows(b2n_runs() + b2n_runs(TINY, offset=-20.0))
    paths = write_matrix("b2n", long, tmp_path / "direct", profile="world", order=["A", "B"])
    assert [p.name for p in paths] == ["matrix_b2n.csv", "matrix_b2n.md", "matrix_b2n.png"]
    write_atomic(long, tmp_path / "runs_b2n.csv")
    out = tmp_path / "results"
    source = str(tmp_path / "runs_b2n.csv")
    assert main(["leaderboard", "--protocol", "b2n", "--from-runs", source, "--results-dir", str(out), "--matrix"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(out / "matrix_b2n.csv")
    for name in ("matrix_b2n.csv", "matrix_b2n.md"):
        assert (out / name).read_text() == (tmp_path / "direct" / name).read_text()
    assert (out / "leaderboard_b2n.csv").is_file()  # the leaderboard is rebuilt as without --matrix
    assert (out / "matrix_b2n.png").read_bytes().startswith(b"\x89PNG")
    assert pd.read_csv(out / "matrix_b2n.csv").backbone.nunique() == 2


def test_an_empty_matrix_still_writes_its_files(tmp_path):
    long = long_rows([])
    csv, md, png = write_matrix("xd", long, tmp_path, profile="world")
    assert pd.read_csv(csv).empty and "No finished runs yet." in md.read_text()
    assert png.read_bytes().startswith(b"\x89PNG")


# -- the --backbones axis of `run` ------------------------------------------------------------------------------
def _dry(capsys, *extra):
    argv = ["run", "--methods", "zeroshot,coop", "--datasets", "mlrsnet", "--seeds", "1", "--dry-run", *extra]
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_backbones_plan_every_cell_once_per_backbone(world_env, capsys):
    cells = _dry(capsys, "--backbones", f"world,{TINY}")
    assert [c["backbone"] for c in cells] == ["world", "world", TINY, TINY]  # backbone outermost
    assert [c["label"] for c in cells] == ["zeroshot", "coop", f"zeroshot[{TINY}]", f"coop[{TINY}]"]
    assert len({c["run_key"] for c in cells}) == 4
    # the same run_keys as one sweep per backbone: nothing of a RunSpec changed
    single = _dry(capsys, "--backbone", "world") + _dry(capsys, "--backbone", TINY)
    assert [c["run_key"] for c in single] == [c["run_key"] for c in cells]
    assert [c["label"] for c in single] == [c["label"] for c in cells]
    # a repeated backbone (`random-tiny` is `random-tiny:0`) is one axis value
    assert len(_dry(capsys, "--backbones", "random-tiny,random-tiny:0")) == 2


def test_backbones_from_a_config_file_and_a_flag_that_overrides_it(world_env, capsys):
    (world_env / "sweep.yaml").write_text(f"backbones: [world, '{TINY}']\n")
    assert [c["backbone"] for c in _dry(capsys, "--config", "sweep.yaml")] == ["world", "world", TINY, TINY]
    assert {c["backbone"] for c in _dry(capsys, "--config", "sweep.yaml", "--backbone", TINY)} == {TINY}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbone", "world", "--backbones", f"world,{TINY}"], "--backbone and --backbones are mutually exclusive"),
        (["--backbones", "world,ViT-Nope-99"], "unknown open_clip model 'ViT-Nope-99'"),
        (["--backbones", f"world,{TINY}x"], "must be an integer"),
        (["--backbones", ","], "--backbones is empty"),
    ],
)
def test_bad_backbones_exit_2_with_one_line_before_any_work(world_env, capsys, extra, message):
    argv = ["run", "--methods", "zeroshot,coop", "--datasets", "mlrsnet", "--seeds", "1", "--quiet", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (world_env / "results").exists() and not (world_env / "mlruns").exists()


@pytest.mark.slow
def test_a_two_backbone_sweep_and_its_matrix(world_env):
    argv = ["run", "--methods", "zeroshot,coop", "--datasets", "mlrsnet", "--seeds", "1", "--set", "epochs=1"]
    assert main([*argv, "--backbones", f"world,{TINY}", "--quiet"]) == 0
    assert main(["leaderboard", "--protocol", "b2n", "--matrix"]) == 0
    results = world_env / "results"
    matrix = pd.read_csv(results / "matrix_b2n.csv")
    assert sorted(matrix.backbone.unique()) == sorted(["world", TINY]) and len(matrix) == 4
    assert matrix.value.notna().all() and matrix[matrix.method != "zeroshot"].gain.notna().all()
    header = next(line for line in (results / "matrix_b2n.md").read_text().splitlines() if line.startswith("| method"))
    assert header == f"| method | world | {TINY} |"
    assert (results / "matrix_b2n.png").read_bytes().startswith(b"\x89PNG")
    board = pd.read_csv(results / "leaderboard_b2n.csv")
    assert len(board) == 4 and board.method.str.contains(TINY, regex=False).sum() == 2
