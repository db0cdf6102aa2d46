"""Markdown and PNG leaderboards, and the published tables they compare against."""

import pandas as pd
import pytest
from runs_support import finished

from benchmark.results.configs import LabelConfig
from benchmark.results.leaderboard import (
    long_rows,
    rebuild,
    seed_values,
)
from benchmark.results.published import PUBLISHED_DIR, load_published, load_table, method_key
from benchmark.results.report import markdown_leaderboard, plot_leaderboard, write_reports
from benchmark.results.tables.base_new import BaseNewTable
from benchmark.results.tables.run_columns import run_column_names
from benchmark.results.tables.transfer import TransferTable

PNG = b"\x89PNG\r\n\x1a\n"


def run(method, dataset, seed, metrics, protocol="b2n", profile="world"):
    tags = {
        "run_key": f"{method}-{dataset}-{seed}",
        "method": method.split("[")[0],
        "label": method,
        "protocol": protocol,
        "dataset": dataset,
        "seed": str(seed),
        "shots": "16",
        "backbone": "world",
        "profile": profile,
    }
    return finished(f"id-{method}-{dataset}-{seed}", tags, metrics, 0)


def b2n_runs(datasets=("patternnet", "rsicd"), profile="world"):
    runs = []
    for seed in (1, 2, 3):
        for i, dataset in enumerate(datasets):
            runs.append(run("coop", dataset, seed, {"acc_base": 90 + seed + i, "acc_new": 60 - i}, profile=profile))
    for i, dataset in enumerate(datasets):  # zero-shot is deterministic: one run (seed 0)
        runs.append(run("zeroshot", dataset, 0, {"acc_base": 64.0, "acc_new": 64.0 + i}, profile=profile))
    return runs


def test_published_csvs_parse_with_required_columns_and_citations():
    for protocol in ("b2n", "xd", "dg"):
        frame = load_table(protocol)
        assert frame is not None and len(frame) >= 7 * 4
        assert frame.citation.str.contains("arXiv:").all()
        methods = set(frame.method)
        assert {"CLIP", "CoOp", "CoCoOp", "MaPLe"} <= methods
    b2n = load_table("b2n")
    maple = b2n[(b2n.method == "MaPLe") & (b2n.dataset == "mlrsnet")].iloc[0]
    assert maple.hm == 64.59 and "64.77" in maple.note  # the printed, inconsistent value is kept and flagged
    coop = b2n[(b2n.method == "CoOp") & (b2n.dataset == "patternnet")].iloc[0]
    assert (coop.base, coop.new, coop.hm) == (91.62, 62.23, 74.12)
    assert (PUBLISHED_DIR / "README.md").is_file()


def test_published_lookup_maps_our_names():
    assert method_key("zeroshot") == "clip" and method_key("coop[paper+1a2b3c]") == "coop"
    assert method_key("C-SAW") == "csaw"
    b2n = load_published("b2n")
    assert b2n.get("zeroshot", "", "rsicd", "base").value == 54.61
    assert b2n.get("bimors", "", "rsicd", "base") is None
    xd = load_published("xd")
    assert xd.get("cocoop", "patternnet", "resisc45", "acc").value == 49.53
    # the papers print no transfer average: it is computed, and says so
    average = xd.get("coop", "patternnet", "average", "acc")
    assert average.value == pytest.approx(round((42.53 + 49.34 + 44.50) / 3, 2)) and "computed" in average.note


def test_markdown_marks_the_best_cell_per_dataset_and_keeps_average_last():
    long = long_rows(b2n_runs())
    wide = BaseNewTable().wide(long, ["patternnet", "rsicd"])
    text = markdown_leaderboard("b2n", wide, profile="world", seeds=seed_values("b2n", long))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["patternnet"] * 2 + ["rsicd"] * 2 + ["average"] * 2
    coop_pn = next(r for r in rows if r.startswith("| patternnet | coop"))
    zs_pn = next(r for r in rows if r.startswith("| patternnet | zeroshot"))
    assert "**92.00** ± 1.00" in coop_pn  # best base on patternnet: mean of 91, 92, 93, sample std 1
    assert "| zeroshot | 1 | 64.00 | **64.00** |" in zs_pn  # one run: no spread; best new on every seed
    assert "**60.00**" not in coop_pn
    assert "Published values: none" in text


def test_markdown_bolds_only_a_best_that_the_seeds_separate_from_the_runner_up():
    runs = []
    for seed, (a, b) in enumerate([(80, 70), (75, 78), (82, 74)], start=1):  # A ahead on average, not every seed
        runs.append(run("alpha", "patternnet", seed, {"acc_base": a, "acc_new": 50}))
        runs.append(run("beta", "patternnet", seed, {"acc_base": b, "acc_new": 40 + seed}))
    long = long_rows(runs)
    text = markdown_leaderboard("b2n", BaseNewTable().wide(long), profile="world", seeds=seed_values("b2n", long))
    alpha = next(line for line in text.splitlines() if line.startswith("| patternnet | alpha"))
    beta = next(line for line in text.splitlines() if line.startswith("| patternnet | beta"))
    assert "79.00 ≈" in alpha and "74.00 ≈" in beta and "**79.00**" not in alpha  # a tie, said so
    assert "**50.00**" in alpha  # new: 50 vs 41, 42, 43 on every seed -> separated
    assert "not distinguishable over seeds" in text


def test_paper_profile_shows_published_value_and_difference():
    datasets = ("patternnet", "rsicd", "resisc45", "mlrsnet")
    maple = [run("maple", "mlrsnet", s, {"acc_base": 79.0, "acc_new": 55.0}, profile="paper") for s in (1, 2, 3)]
    wide = BaseNewTable().wide(long_rows([*b2n_runs(datasets, profile="paper"), *maple]), datasets)
    text = markdown_leaderboard("b2n", wide, published=load_published("b2n"), profile="paper")
    lines = text.splitlines()
    assert "base paper (diff)" in text
    coop_pn = next(line for line in lines if line.startswith("| patternnet | coop"))
    assert "91.62 (+0.38)" in coop_pn  # ours 92.00 - published 91.62
    zs_rsicd = next(line for line in lines if line.startswith("| rsicd | zeroshot"))
    assert "54.61 (+9.39)" in zs_rsicd  # zeroshot is compared with CLIP
    maple_ml = next(line for line in lines if line.startswith("| mlrsnet | maple"))
    assert maple_ml.endswith("64.59 (+0.26) [1] |")  # the source's inconsistent HM is footnoted, only the HM
    assert maple_ml.count("[1]") == 1
    assert any(line.startswith("- [1] ") and "64.77" in line for line in lines)
    coop_avg = next(line for line in lines if line.startswith("| average | coop"))
    assert "87.10 (" in coop_avg  # ours covers the four published datasets, so the average is compared


def test_published_values_only_beside_rows_run_in_the_published_setting():
    runs = [
        run("coop[random-tiny, 1-shot]", "patternnet", s, {"acc_base": 5.0, "acc_new": 4.0}, profile="paper")
        for s in (1, 2)
    ]
    wide = BaseNewTable().wide(long_rows(runs), ["patternnet"])
    text = markdown_leaderboard("b2n", wide, published=load_published("b2n"), profile="paper")
    row = next(line for line in text.splitlines() if line.startswith("| patternnet | coop"))
    assert "91.62" not in row and "(-86" not in row and "– [1]" in row
    assert "- [1] not comparable with the published setting: random-tiny, 1-shot" in text


def test_average_is_compared_only_over_the_published_datasets():
    wide = BaseNewTable().wide(long_rows(b2n_runs(("patternnet", "rsicd"), profile="paper")), ["patternnet", "rsicd"])
    text = markdown_leaderboard("b2n", wide, published=load_published("b2n"), profile="paper")
    average = next(line for line in text.splitlines() if line.startswith("| average | coop"))
    assert "87.10" not in average and "–" in average  # ours averages 2 datasets, the paper 4


def test_transfer_markdown_and_png(tmp_path):
    runs = []
    for seed in (1, 2):
        for method, shift in (("coop", 0.0), ("maple", 2.0)):
            metrics = {"acc_all": 85 + shift, "acc_all/rsicd": 43 + shift + seed, "acc_all/resisc45": 49.0}
            runs.append(run(method, "patternnet", seed, metrics, protocol="xd", profile="paper"))
    wide = TransferTable().wide(long_rows(runs), ["rsicd", "resisc45"])
    assert tuple(wide.columns) == TransferTable.columns
    written = write_reports("xd", wide, tmp_path, profile="paper", seeds=seed_values("xd", long_rows(runs)))
    text = (tmp_path / "leaderboard_xd.md").read_text()
    maple_rsicd = next(line for line in text.splitlines() if line.startswith("| patternnet | rsicd | maple"))
    # maple leads coop by exactly 2 points on both seeds: separated over seeds (sample std of 46, 47 is 0.71)
    assert "**46.50** ± 0.71" in maple_rsicd and "45.23 (+1.27)" in maple_rsicd
    png = (tmp_path / "leaderboard_xd.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 10_000
    assert [p.name for p in written] == ["leaderboard_xd.md", "leaderboard_xd.png", "cost_xd.png"]
    assert (tmp_path / "cost_xd.png").read_bytes().startswith(PNG)


def test_png_is_produced_for_b2n_and_for_an_empty_table(tmp_path):
    wide = BaseNewTable().wide(long_rows(b2n_runs()), ["patternnet", "rsicd"])
    plot_leaderboard("b2n", wide, tmp_path / "b.png")
    data = (tmp_path / "b.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    plot_leaderboard("dg", pd.DataFrame(columns=list(TransferTable.columns)), tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


class FakeTracker:
    def __init__(self, runs):
        self.runs = runs

    def finished_runs(self, protocol, *, profile=None, with_results=False):
        runs = [r for r in self.runs if r.tags["protocol"] == protocol]
        return [r for r in runs if profile is None or r.tags.get("profile") == profile]


def test_rebuild_writes_csv_with_ci95_columns_and_the_md_and_png(tmp_path):
    rebuild(FakeTracker(b2n_runs()), "b2n", tmp_path, profile="world", order=["patternnet", "rsicd"])
    board = pd.read_csv(tmp_path / "leaderboard_b2n.csv")
    assert tuple(board.columns) == (*BaseNewTable.columns, *run_column_names(BaseNewTable()))
    coop = board[(board.method == "coop") & (board.dataset == "patternnet")].iloc[0]
    assert coop.base_ci95 == pytest.approx(round(4.302653 * 1.0 / 3**0.5, 2))  # t(0.975, 2) * s / sqrt(3), s = 1
    assert coop.new_ci95 == 0.0
    zero = board[(board.method == "zeroshot") & (board.dataset == "patternnet")].iloc[0]
    assert zero.n_seeds == 1 and pd.isna(zero.base_std) and pd.isna(zero.base_ci95)
    for name in ("leaderboard_b2n.md", "leaderboard_b2n.png", "runs_b2n.csv"):
        assert (tmp_path / name).is_file()


def test_the_markdown_legend_spells_out_every_labels_full_configuration(tmp_path):
    """A label names its overrides in short (or as a hash); the legend lists preset, overrides and every param."""
    runs = b2n_runs()
    for r in runs:
        method = r.tags["method"]
        r.params = {"preset": "world", "method.n_ctx": "4", "train.epochs": "100", "train.lr": "0.002"}
        if method == "zeroshot":
            r.params = {"preset": "paper", "method.template": "a photo of a {}."}
    hashed = "coop[world+1a2b3c]"  # a label past the readable length: only the legend says what it ran
    for dataset, epochs in (("patternnet", "2"), ("rsicd", "3")):  # a per-dataset value is listed, not hidden
        extra = run(hashed, dataset, 1, {"acc_base": 95.0, "acc_new": 70.0})
        extra.tags["numerics"] = "coop=1;harness=7;plugin=rs-prompts==0.2.0"
        extra.params = {"preset": "world", "method.n_ctx": "4", "train.epochs": epochs, "override.train.epochs": epochs}
        runs.append(extra)
    rebuild(FakeTracker(runs), "b2n", tmp_path, profile="world", order=["patternnet", "rsicd"])
    text = (tmp_path / "leaderboard_b2n.md").read_text()
    legend = text[text.index("## Configurations") :].splitlines()
    entries = [line for line in legend if line.startswith("- `")]
    assert [e.split("`")[1] for e in entries] == ["coop", hashed, "zeroshot"]  # the table's order
    assert entries[0] == "- `coop`: method `coop`, preset `world`, overrides `none`, backbone `world`, 16 shots."
    assert entries[1].endswith(
        "overrides `train.epochs=2 | train.epochs=3`, backbone `world`, 16 shots, plugin `rs-prompts==0.2.0`."
    )
    coop = legend.index(entries[0])
    assert legend[coop + 1 : coop + 3] == ["  method: `n_ctx=4`.", "  training: `epochs=100, lr=0.002`."]
    assert "  training: `epochs=2 | 3`." in legend
    assert "  method: `template=a photo of a {}.`." in legend
    # a table rebuilt from the runs CSV alone has no params to show: no legend rather than an empty one
    text = markdown_leaderboard("b2n", BaseNewTable().wide(long_rows(runs)), profile="world")
    assert "## Configurations" not in text


def test_a_legend_value_lists_numbers_by_value_and_names_the_empty_string():
    config = LabelConfig("coop")
    for shots in ("16", "2", "1", "8"):
        config.add("shots", shots)
    config.add("method.ctx_init", "")
    assert config.shown("shots") == "1 | 2 | 8 | 16"
    assert config.shown("method.ctx_init") == "''" and config.shown("absent") == "-"


def test_configs_csv_round_trips_every_value(tmp_path):
    from benchmark.results.configs import configs_frame, read_configs
    from benchmark.results.leaderboard import write_atomic

    config = LabelConfig("coop")
    for key, value in (("shots", "16"), ("shots", "2"), ("method.ctx_init", ""), ("train.x", 'a, "b"')):
        config.add(key, value)
    written = {"coop[epochs=2]": config, "zeroshot": LabelConfig("zeroshot", {"preset": {"paper"}})}
    write_atomic(configs_frame(written), tmp_path / "configs_b2n.csv")
    read = read_configs(tmp_path / "configs_b2n.csv")
    assert {label: (c.method, c.values) for label, c in read.items()} == {
        label: (c.method, c.values) for label, c in written.items()
    }
    (tmp_path / "bad.csv").write_text("label,key,value\ncoop,preset,world\n")
    with pytest.raises(ValueError, match="exactly one method row"):
        read_configs(tmp_path / "bad.csv")
