"""Train once on a source, evaluate everywhere: cross-dataset transfer (`xd`) and domain generalization (`dg`).

The method trains on the source with all its classes (16 shots, Dassl's sampler), is evaluated on the
source test split, then the same learned parameters are evaluated on each target's full test split
with the target's class names. Nothing is retrained per target. The two protocols differ only in their
datasets, so they are two registered instances of one class:

* `xd` (CoCoOp Sec. 4.2; on RS: APPLeNet, C-SAW, BiMoRS): PatternNet with all 38 classes -> RSICD,
  RESISC45 and MLRSNet, each with its own class names (new label spaces).
* `dg` (APPLeNet Table 3, C-SAW, BiMoRS): PatternNetv2 (16 shared classes) -> RSICDv2, RESISC45v2 and
  MLRSNetv2: the same label space in shifted domains.

`--datasets` lists the source first, then the targets; the defaults are the profile's entry for the
protocol (the world profile mirrors the same datasets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.core.protocol import CellOutput, CellPlan, Protocol, cannot_score, split_tags, train_few_shot
from benchmark.data.fewshot import all_classes
from benchmark.plan.specs import RunSpec
from benchmark.registry import PROTOCOLS
from benchmark.results.tables.transfer import TransferTable


class SourceToTargets(Protocol):
    """Train on a source dataset, evaluate on it and on target datasets."""

    table = TransferTable()

    def __init__(self, name: str, title: str) -> None:
        self.name, self.title = name, title

    def plan(self, datasets: Sequence[str] | None, profile) -> list[CellPlan]:
        """One cell: the source first, then the targets (default: the profile's)."""
        datasets = list(datasets or self.default_datasets(profile))
        return [CellPlan(datasets[0], tuple(d for d in datasets[1:] if d != datasets[0]))]

    def leaderboard_order(self, profile) -> tuple[str, ...]:
        """The default targets (the source's row comes first on its own)."""
        return tuple(self.default_datasets(profile)[1:])

    def requests(self, runs, order: Sequence[str] = ()) -> list[tuple[tuple[str, ...], Any]]:
        """One request per source: the source, then the targets its committed runs evaluated."""
        out = []
        for source, sub in runs.groupby("train_dataset", sort=True):
            evaluated = set(sub.eval_dataset) - {source}
            targets = [d for d in order if d in evaluated] + sorted(evaluated - set(order))
            out.append(((source, *targets), sub))
        return out

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
            reason = cannot_score(method, classes.classnames, target.classnames)
            if reason is not None:
                out.add_not_applicable(target.name, "all", reason)
                continue
            method.set_classnames(target.classnames)
            bank = ctx.bank(target, target.split.test, method)
            out.add(target.name, "all", evaluate(method, bank, target.classnames, batch_size=batch))
        return out


PROTOCOLS.register("xd")(SourceToTargets("xd", "cross-dataset"))
PROTOCOLS.register("dg")(SourceToTargets("dg", "domain generalization"))
