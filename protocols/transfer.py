"""What cross-dataset and domain generalization share: train once on a source, evaluate everywhere.

The method trains on the source with all its classes (16 shots, Dassl's sampler), is evaluated on the
source test split, then the same learned parameters are evaluated on each target's full test split
with the target's class names. Nothing is retrained per target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.core.protocol import CellOutput, CellPlan, Protocol, split_tags, train_few_shot
from benchmark.data.fewshot import all_classes
from benchmark.plan.specs import RunSpec


class SourceToTargets(Protocol):
    """Train on a source dataset, evaluate on it and on target datasets."""

    def defaults(self, profile) -> tuple[str, tuple[str, ...]]:
        """The profile's (source, targets) for this protocol."""
        raise NotImplementedError

    def plan(self, datasets: Sequence[str] | None, profile) -> list[CellPlan]:
        """One cell: `--datasets` lists the source first, then the targets (default: the profile's)."""
        source, targets = self.defaults(profile)
        if datasets:
            source, targets = datasets[0], tuple(d for d in datasets[1:] if d != datasets[0])
        return [CellPlan(source, tuple(targets))]

    def evaluates_unseen_classes(self, cell: CellPlan, datasets) -> bool:
        """True when some target's class list differs from the source's (always for xd; not for the v2 sets)."""
        source = datasets[cell.dataset].classnames
        return any(datasets[target].classnames != source for target in cell.targets)

    def describe(self, spec: RunSpec, open_dataset) -> dict[str, Any]:
        """Source and target class lists."""
        return {
            "source": spec.dataset,
            "targets": list(spec.targets),
            "source_classes": list(open_dataset(spec.dataset).classnames),
            "target_classes": {t: list(open_dataset(t).classnames) for t in spec.targets},
        }

    def run(self, spec: RunSpec, ctx) -> CellOutput:
        """Train on the source (unless zero-shot), then evaluate source and targets."""
        from benchmark.core.evaluation import evaluate

        out = CellOutput()
        source = ctx.dataset(spec.dataset)
        split_tags(out, source, [ctx.dataset(name) for name in spec.targets])
        classes = all_classes(source.classnames)
        method = ctx.build_method(spec, classes.classnames)
        batch = ctx.train_config(spec).eval_batch_size
        transfer_state = train_few_shot(spec, ctx, method, source, classes, out)
        out.add(
            source.name,
            "all",
            evaluate(method, ctx.bank(source, source.split.test, method), classes.classnames, batch_size=batch),
        )
        if transfer_state is not None:
            method.load_learned_state(transfer_state)
        for name in spec.targets:
            target = ctx.dataset(name)
            method.set_classnames(target.classnames)
            bank = ctx.bank(target, target.split.test, method)
            out.add(target.name, "all", evaluate(method, bank, target.classnames, batch_size=batch))
        return out
