"""Base-to-novel generalisation (CoCoOp, Zhou et al. CVPR 2022, Sec. 4.1).

Each dataset's classes are split in label order: base = the first ceil(n/2) labels, new = the rest
(CoOp `datasets/oxford_pets.py::subsample_classes`). A method trains on 16 shots of the base classes
(shots drawn over all classes first, as Dassl does, then filtered) and is evaluated on the base and
on the new classes of the test split, each in its own label space. HM is derived in the leaderboard.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.protocol import CellOutput, Protocol, cannot_score, split_tags, train_few_shot
from benchmark.data.fewshot import split_base_new
from benchmark.plan.specs import RunSpec
from benchmark.registry import PROTOCOLS
from benchmark.results.tables.base_new import BaseNewTable


class BaseToNew(Protocol):
    """Train on base classes, test on base and on new classes."""

    name = "b2n"
    title = "base-to-novel"
    table = BaseNewTable()

    def describe(self, spec: RunSpec, open_dataset) -> dict[str, Any]:
        """Base and new class names in label order."""
        base, new = split_base_new(open_dataset(spec.dataset).classnames)
        return {"base_classes": list(base.classnames), "new_classes": list(new.classnames)}

    def run(self, spec: RunSpec, ctx) -> CellOutput:
        """Train on base (unless zero-shot), then evaluate base and new."""
        from benchmark.core.evaluation import evaluate

        out = CellOutput()
        dataset = ctx.dataset(spec.dataset)
        split_tags(out, dataset)
        base, new = split_base_new(dataset.classnames)
        method = ctx.build_method(spec, base.classnames)
        batch = ctx.train_config(spec).eval_batch_size
        transfer_state = train_few_shot(spec, ctx, method, dataset, base, out)
        for subset in (base, new):
            reason = cannot_score(method, base.classnames, subset.classnames)
            if reason is not None:
                out.add_not_applicable(dataset.name, subset.name, reason)
                continue
            if subset is new and transfer_state is not None:
                method.load_learned_state(transfer_state)
            method.set_classnames(subset.classnames)
            bank = ctx.bank(dataset, subset.select(dataset.split.test), method)
            out.add(dataset.name, subset.name, evaluate(method, bank, subset.classnames, batch_size=batch))
        return out


PROTOCOLS.register("b2n")(BaseToNew())
