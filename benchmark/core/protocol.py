"""The protocol interface, a cell's output, and the train-then-evaluate step protocols share.

A protocol expands a sweep into cells (which datasets a cell trains and evaluates on), describes a
cell for `--dry-run` without touching images, and runs a cell with a `CellContext`. Running is pure:
no MLflow, no files, no printing; the runner persists what `CellOutput` holds.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark.core.cost import CellCost
from benchmark.data.fewshot import ClassSubset, FewShot, dassl_few_shot
from benchmark.errors import RunFailure
from benchmark.plan.specs import Result, RunSpec

if TYPE_CHECKING:
    from benchmark.core.context import CellContext
    from benchmark.core.evaluation import Predictions
    from benchmark.core.train import EpochLog
    from benchmark.data.catalog import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellPlan:
    """Datasets of one cell: the training dataset and the targets evaluated besides it."""

    dataset: str
    targets: tuple[str, ...] = ()


@dataclass
class Evaluation:
    """Predictions on one (eval dataset, subset)."""

    dataset: str
    subset: str
    predictions: Predictions


@dataclass
class CellOutput:
    """What a cell produced; the runner logs it."""

    results: list[Result] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    history: list[EpochLog] = field(default_factory=list)
    learned_state: dict[str, Any] = field(default_factory=dict)  # last epoch
    selected_state: dict[str, Any] = field(default_factory=dict)  # the selected epoch, if one was selected
    few_shot: FewShot | None = None
    tags: dict[str, str] = field(default_factory=dict)
    cost: CellCost = field(default_factory=CellCost)

    def add(self, dataset: str, subset: str, predictions: Predictions) -> None:
        """Record an evaluation: its accuracy, ECE and NLL rows, and its wall time in the cell's cost."""
        self.evaluations.append(Evaluation(dataset, subset, predictions))
        for metric, value in (("acc", predictions.accuracy), ("ece", predictions.ece), ("nll", predictions.mean_nll)):
            self.results.append(Result(dataset, subset, metric, value))  # type: ignore[arg-type]
        self.cost.add_evaluation(predictions)

    def add_not_applicable(self, dataset: str, subset: str, reason: str) -> None:
        """Record an evaluation the method cannot make: NaN rows, shown `n/a`, and the reason as a tag."""
        for metric in ("acc", "ece", "nll"):
            self.results.append(Result(dataset, subset, metric, float("nan")))  # type: ignore[arg-type]
        self.tags["not_applicable"] = reason


def cannot_score(method, trained: Sequence[str], classnames: Sequence[str]) -> str | None:
    """Why `method`, fitted on the classes `trained`, cannot score `classnames` (None: it can).

    A label space equal to the trained one (a domain-shift target with the same classes) is always
    scored; another one is refused when the method's config says it cannot transfer
    (`PromptMethod.config_transfer_error`: a linear probe, a cache keyed by the training labels).
    """
    if tuple(classnames) == tuple(trained):
        return None
    reason = type(method).config_transfer_error(method.cfg)
    return None if reason is None else f"{reason} (n/a)"


def split_tags(out: CellOutput, source: Dataset, targets: Sequence[Dataset] = ()) -> None:
    """Record on the run whether each dataset's split file is the public one (or generated)."""
    out.tags.update(source.split_tags())
    for target in targets:
        for key, value in target.split_tags().items():
            out.tags[f"{key}.{target.name}"] = value


class Protocol:
    """Base class of registered protocols: one file in `protocols/` subclasses it and registers an instance.

    Attributes:
        name: the registry name (`--protocol`), also the MLflow experiment's name.
        title: the readable name used in leaderboards.
        table: the result table kind (a `benchmark.results.tables.TableKind`): the leaderboard's
            columns, rows, figure and published-number matching.
        default_shots: `--shots` when none is given.
        shots_axis: the shot count is an axis of the leaderboard (few-shot curves), so a label never
            marks it; otherwise a run with shots outside `default_shots` is marked `<K>-shot`.
    """

    name: str = ""
    title: str = ""
    table: Any = None
    default_shots: tuple[int, ...] = (16,)
    shots_axis: bool = False

    @property
    def leaderboard_name(self) -> str:
        """`results/leaderboard_<leaderboard_name>.*`."""
        return self.name

    def default_datasets(self, profile) -> tuple[str, ...]:
        """What `--datasets` means when it is not given: the profile's entry for this protocol."""
        return profile.datasets_for(self.name)

    def leaderboard_order(self, profile) -> tuple[str, ...]:
        """Dataset order of the leaderboard's rows (the default datasets)."""
        return self.default_datasets(profile)

    def plan(self, datasets: Sequence[str] | None, profile) -> list[CellPlan]:
        """The cells of a sweep over `datasets` (None: the defaults): one per dataset, trained and tested on it."""
        return [CellPlan(name) for name in (datasets or self.default_datasets(profile))]

    def requests(self, runs, order: Sequence[str] = ()) -> list[tuple[tuple[str, ...], Any]]:
        """Split one label's finished runs (long rows) into the `--datasets` lists that plan them again.

        Used by `benchmark reproduce`. Default: one request over the training datasets.
        """
        first = [d for d in order if d in set(runs.train_dataset)]
        rest = sorted(set(runs.train_dataset) - set(first))
        return [((*first, *rest), runs)]

    def describe(self, spec: RunSpec, open_dataset) -> dict[str, Any]:
        """Dry-run description of a cell (class lists), from split files only."""
        raise NotImplementedError

    def evaluates_unseen_classes(self, cell: CellPlan, datasets: dict[str, Dataset]) -> bool:
        """Whether a cell evaluates classes the method was not trained on (then per-class prompts fail)."""
        return True

    def run(self, spec: RunSpec, ctx: CellContext) -> CellOutput:
        """Train and evaluate one cell."""
        raise NotImplementedError


def train_few_shot(spec: RunSpec, ctx: CellContext, method, dataset: Dataset, subset: ClassSubset, out: CellOutput):
    """Train `method` on Dassl's few-shot draw restricted to `subset` (nothing for zero-shot).

    The draw is over all classes of the split (so base and new runs of a seed share it) and is kept on
    `out` for the run's `few_shot.json`; classes with fewer images than shots are tagged.

    Returns:
        What `fit_on` returns: the parameters for transfer evaluations, or None.
    """
    if not type(method).requirements.trainable:
        return None
    out.few_shot = dassl_few_shot(dataset.split, spec.shots, spec.seed)
    if out.few_shot.short_classes:
        out.tags["short_classes"] = ",".join(out.few_shot.short_classes)
    return fit_on(
        spec,
        ctx,
        method,
        dataset,
        subset.select(out.few_shot.train),
        selection_subset=subset,
        out=out,
        val_items=subset.select(out.few_shot.val),
    )


def fit_on(
    spec: RunSpec,
    ctx: CellContext,
    method,
    dataset: Dataset,
    train_items,
    *,
    selection_subset: ClassSubset,
    out: CellOutput,
    val_items: Sequence | None = None,
):
    """Train `method` on `train_items` and return the state to evaluate transfers with.

    The checkpoint that is reported is chosen by `selection` (tagged on the run):
    * `last`: the last epoch, as most reference scripts report.
    * `best_val`: the epoch with the best accuracy on `val_items`, the run's own few-shot validation
      draw in the training label space (Dassl's min(shots, 4) per class). Its parameters are loaded
      into `method` before any reported evaluation: nothing is chosen by looking at test numbers.
    * `best_test` (BiMoRS's reference trainer): the model is evaluated on the test split of the
      training label space after every epoch and the best epoch's parameters are kept for the transfer
      evaluations, while the training-space accuracy is reported from the last epoch, as the
      reference's final `test()` does. This is model selection on the test set (leakage), kept for
      faithfulness; its rows are labelled `best_test` in every leaderboard.
    * `best_test_reported` (Tip-Adapter-F's reference): the same test-split choice, loaded before every
      reported evaluation. Leakage too, labelled `best_test` the same way.

    Whatever the selection, the reported model's accuracy on `val_items` is recorded as the result row
    (training dataset, "val"): the number a hyper-parameter search (`benchmark tune`) may look at.

    Returns:
        The parameters to load before evaluating unseen classes or datasets, or None to keep the
        state `method` holds.
    """
    from benchmark.core.evaluation import evaluate
    from benchmark.core.train import fit

    with out.cost.training(method):  # train_s: everything up to the model whose numbers are reported
        cfg = ctx.train_config(spec)
        bank = ctx.bank(dataset, train_items, method)
        best: dict[str, Any] = {"acc": -1.0, "state": None, "epoch": -1}
        select_bank = None
        val_bank = ctx.bank(dataset, val_items, method) if val_items else None
        trains = type(method).config_requirements(method.cfg).gradient_training
        out.tags["selection"] = cfg.selection if trains else "none (no gradient training)"
        ran = ctx.effective_precision(cfg.precision)
        out.tags["precision"] = ran if ran == cfg.precision else f"{ran} ({cfg.precision} requested; it needs CUDA)"
        if not trains:
            pass  # no epochs to choose from
        elif cfg.selection in ("best_test", "best_test_reported"):
            select_bank = ctx.bank(dataset, selection_subset.select(dataset.split.test), method)
            out.tags["selection_note"] = "model selection on the test split, as the reference"
        elif cfg.selection == "best_val":
            if val_bank is None:
                raise RunFailure("selection best_val needs validation shots, and the few-shot draw has none")
            select_bank = val_bank

        def on_epoch(entry) -> None:
            if select_bank is not None:
                selected = evaluate(method, select_bank, selection_subset.classnames, batch_size=cfg.eval_batch_size)
                acc = selected.accuracy
                if acc > best["acc"]:
                    best.update(acc=acc, state=copy.deepcopy(method.learned_state()), epoch=entry.epoch)
                method.train()
            if ctx.on_epoch is not None:
                ctx.on_epoch(entry)

        out.tags.update(method.prepare_training(bank, val_bank, cfg, seed=spec.seed))
        if trains:
            out.history = fit(method, bank, cfg, seed=spec.seed, on_epoch=on_epoch, progress=ctx.progress)
            out.cost.train_images += sum(e.images for e in out.history)
        out.learned_state = method.learned_state()
        transfer_state = None
        if best["state"] is not None:
            out.tags["selected_epoch"] = str(best["epoch"] + 1)
            out.selected_state = best["state"]
            if cfg.selection in ("best_val", "best_test_reported"):
                method.load_learned_state(best["state"])  # every reported number comes from the selected epoch
            else:
                transfer_state = best["state"]
        out.tags.update(method.after_training(bank, val_bank, cfg, seed=spec.seed))
        if val_bank is not None:
            val = evaluate(method, val_bank, selection_subset.classnames, batch_size=cfg.eval_batch_size)
            out.results.append(Result(dataset.name, "val", "acc", val.accuracy))
        return transfer_state
