"""A protocol is one file: a toy protocol defined and registered here gets its own leaderboard.

Nothing outside this test knows the toy: not the profiles (it falls back to their default datasets),
not the leaderboard, report or published-number code (they ask its table kind), not the CLI.
"""

from typing import Any

import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.core.protocol import CellOutput, Protocol, split_tags
from benchmark.data.fewshot import all_classes
from benchmark.registry import PROTOCOLS
from benchmark.results.tables import SEED_COLUMNS, MetricColumn, TableKind, new_figure, seed_row


class OddImagesTable(TableKind):
    """Accuracy on the odd-indexed test images, per dataset."""

    name = "odd_images"
    columns = ("method", "dataset", "n_seeds", "acc_mean", "acc_std", "acc_ci95")
    metrics = (MetricColumn("odd-image accuracy", "acc_mean", "acc_std", "all", "acc"),)

    def seed_values(self, long, order=()):
        acc = long[(long.metric == "acc") & (long.subset == "all")]
        rows = [seed_row(r.method, "", r.eval_dataset, "all", r.seed, r.value) for r in acc.itertuples()]
        return pd.DataFrame(rows, columns=list(SEED_COLUMNS))

    def figure(self, wide, title, published_at=None):
        fig = new_figure(4, 3)
        fig.subplots().bar(list(wide.dataset), list(wide.acc_mean))
        return fig


class OddImages(Protocol):
    """Zero-shot-style evaluation on every other test image (a protocol no file of the harness knows)."""

    name = "odd_images"
    title = "odd images"
    table = OddImagesTable()

    def describe(self, spec, open_dataset) -> dict[str, Any]:
        return {"classes": list(open_dataset(spec.dataset).classnames)}

    def run(self, spec, ctx) -> CellOutput:
        from benchmark.core.evaluation import evaluate

        out = CellOutput()
        dataset = ctx.dataset(spec.dataset)
        split_tags(out, dataset)
        classes = all_classes(dataset.classnames)
        method = ctx.build_method(spec, classes.classnames)
        items = dataset.split.test[1::2]
        batch = ctx.train_config(spec).eval_batch_size
        out.add(
            dataset.name,
            "all",
            evaluate(method, ctx.bank(dataset, items, method), classes.classnames, batch_size=batch),
        )
        return out


@pytest.fixture
def odd_images():
    protocol = PROTOCOLS.register("odd_images")(OddImages())
    yield protocol
    PROTOCOLS._entries.pop("odd_images")


def test_a_protocol_registered_in_a_test_gets_its_leaderboard(world_env, odd_images):
    argv = ["run", "--protocol", "odd_images", "--methods", "zeroshot", "--datasets", "rsicd,mlrsnet", "--quiet"]
    assert main(argv) == 0
    results = world_env / "results"
    board = pd.read_csv(results / "leaderboard_odd_images.csv")
    assert list(board.columns)[: len(OddImagesTable.columns)] == list(OddImagesTable.columns)
    assert sorted(board.dataset) == ["mlrsnet", "rsicd"] and set(board.method) == {"zeroshot"}
    runs = pd.read_csv(results / "runs_odd_images.csv")
    runs = runs[runs.metric == "acc"]
    assert dict(zip(runs.eval_dataset, runs.value.round(2))) == dict(zip(board.dataset, board.acc_mean))
    assert 0 < board.acc_mean.min() and board.acc_mean.max() < 100
    text = (results / "leaderboard_odd_images.md").read_text()
    assert text.startswith("# Leaderboard: odd images (`odd_images`)")
    assert "| dataset | method | seeds | odd-image accuracy |" in text
    assert (results / "leaderboard_odd_images.png").stat().st_size > 0
    # and the store alone rebuilds it
    (results / "leaderboard_odd_images.csv").unlink()
    assert main(["leaderboard", "--protocol", "odd_images"]) == 0
    assert pd.read_csv(results / "leaderboard_odd_images.csv").equals(board)
