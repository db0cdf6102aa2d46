"""Few-shot classification over all classes (CoOp's main result; CLIP_benchmark `--fewshot_k`).

A method trains on K shots of every class of a dataset's train split (Dassl's sampler, the draw of the
seed) and is evaluated on the whole test split with all class names. K is an axis of the sweep:
`--shots 1,2,4,8,16` (the default) plans one cell per dataset, K and seed, and the leaderboard has one
row per (method, dataset, K) plus the area under the accuracy-vs-K curve (`ShotsTable`). Adapters and
probes are meant for this protocol; prompt learners report it too.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.protocol import CellOutput, Protocol, split_tags, train_few_shot
from benchmark.data.fewshot import all_classes
from benchmark.plan.specs import RunSpec
from benchmark.registry import PROTOCOLS
from benchmark.results.tables.shots import ShotsTable


class FewShot(Protocol):
    """Train on K shots of all classes, test on all classes."""

    name = "fewshot"
    title = "few-shot"
    default_shots = (1, 2, 4, 8, 16)
    table = ShotsTable(default_shots)
    shots_axis = True

    def evaluates_unseen_classes(self, cell, datasets) -> bool:
        """Never: the test classes are the trained ones."""
        return False

    def describe(self, spec: RunSpec, open_dataset) -> dict[str, Any]:
        """The class list (every class is trained and tested)."""
        return {"classes": list(open_dataset(spec.dataset).classnames)}

    def run(self, spec: RunSpec, ctx) -> CellOutput:
        """Train on K shots of every class (unless zero-shot), evaluate on the whole test split."""
        from benchmark.core.evaluation import evaluate

        out = CellOutput()
        dataset = ctx.dataset(spec.dataset)
        split_tags(out, dataset)
        classes = all_classes(dataset.classnames)
        method = ctx.build_method(spec, classes.classnames)
        batch = ctx.train_config(spec).eval_batch_size
        train_few_shot(spec, ctx, method, dataset, classes, out)
        bank = ctx.bank(dataset, dataset.split.test, method)
        out.add(dataset.name, "all", evaluate(method, bank, classes.classnames, batch_size=batch))
        return out


PROTOCOLS.register("fewshot")(FewShot())
