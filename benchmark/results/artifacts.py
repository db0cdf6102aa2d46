"""The files every finished run carries in MLflow, so a number can be checked without rerunning it.

* `predictions.csv.gz`: one row per evaluated image (what `benchmark compare` pairs on);
* `per_class_accuracy.csv` and `confusion_matrix.csv` (counts per true and predicted class): where a
  method wins or loses; `confusion_matrix.png` draws them for cells that took at least
  `FIGURE_MIN_CELL_S` seconds (drawing costs about 0.6 s, a quarter of a short world cell;
  `plot_confusion_matrices` draws any run's from its predictions);
* `prompt_params.pt`: the learned parameters at the last epoch (trainable methods), and
  `prompt_params_selected.pt` when a checkpoint was selected (BiMoRS's `best_test`): the parameters the
  transfer numbers were computed with; `config.json`: the resolved RunSpec;
* `few_shot.json`: the exact training and validation images and their digest, so anyone can check
  that two methods saw the same shots (trainable methods only; zero-shot sees none);
* `environment.json`: harness version, git commit, library versions and device;
* `results.json`, `history.json`: the result rows and the training curve.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import benchmark
from benchmark.plan.specs import RunSpec

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("eval_dataset", "subset", "path", "label", "predicted", "label_name", "predicted_name")
PER_CLASS_COLUMNS = ("eval_dataset", "subset", "label", "classname", "n", "correct", "accuracy")
CONFUSION_COLUMNS = ("eval_dataset", "subset", "label", "predicted", "count")
FIGURE_MIN_CELL_S = 30.0  # cells shorter than this get the confusion counts as CSV only
LIBRARIES = ("torch", "open_clip_torch", "mlflow", "numpy", "pandas", "scipy")


def write_run_artifacts(
    folder: Path, spec: RunSpec, output: Any, *, device: str = "unknown", figures: bool = True
) -> list[Path]:
    """Write every per-run file of a cell into `folder` (then uploaded as the run's artifacts).

    Args:
        folder: an existing, empty folder.
        spec: the cell's RunSpec.
        output: the protocol's `CellOutput`.
        device: the torch device the cell ran on ("cpu", "cuda", "cuda:1", ...).
        figures: also draw `confusion_matrix.png`.

    Returns:
        The files written.
    """
    folder = Path(folder)
    written = [folder / "config.json", folder / "results.json", folder / "environment.json"]
    written[0].write_text(spec.to_json())
    results = [r.__dict__ for r in output.results]
    written[1].write_text(json.dumps({"results": results, "tags": output.tags}, indent=1))
    written[2].write_text(json.dumps(environment(device), indent=1))
    import torch

    states = {"prompt_params.pt": output.learned_state, "prompt_params_selected.pt": output.selected_state}
    for name, state in states.items():
        if state:
            path = folder / name
            torch.save({k: v.detach().cpu() for k, v in state.items()}, path)
            written.append(path)
    if output.history:
        path = folder / "history.json"
        path.write_text(json.dumps([e.__dict__ for e in output.history], indent=1))
        written.append(path)
    if output.few_shot is not None:
        path = folder / "few_shot.json"
        path.write_text(json.dumps(few_shot_record(spec, output.few_shot), indent=1))
        written.append(path)
    if output.evaluations:
        predictions = predictions_frame(output.evaluations)
        path = folder / "predictions.csv.gz"
        # mtime=0: identical predictions give identical bytes, so artifacts can be compared by digest.
        predictions.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
        written.append(path)
        path = folder / "per_class_accuracy.csv"
        per_class_accuracy(predictions).to_csv(path, index=False)
        written.append(path)
        path = folder / "confusion_matrix.csv"
        confusion_counts(output.evaluations).to_csv(path, index=False)
        written.append(path)
        if figures:
            path = folder / "confusion_matrix.png"
            plot_confusion_matrices(output.evaluations, path)
            written.append(path)
    return written


def predictions_frame(evaluations: Sequence[Any]) -> pd.DataFrame:
    """One row per (evaluation, image): eval dataset, subset, path, true and predicted label and names."""
    frames = []
    for ev in evaluations:
        pred = ev.predictions
        names = np.asarray(pred.classnames, dtype=object)
        labels, predicted = np.asarray(pred.labels, dtype=np.int64), np.asarray(pred.predicted, dtype=np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "eval_dataset": ev.dataset,
                    "subset": ev.subset,
                    "path": list(pred.paths),
                    "label": labels,
                    "predicted": predicted,
                    "label_name": names[labels] if len(names) else "",
                    "predicted_name": names[predicted] if len(names) else "",
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(PREDICTION_COLUMNS)]


def per_class_accuracy(predictions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (eval dataset, subset, true class) in percent, evaluations in run order, classes by label."""
    frame = predictions.assign(correct=(predictions.label == predictions.predicted).astype(int))
    keys = ["eval_dataset", "subset", "label", "label_name"]
    table = frame.groupby(keys, sort=False).agg(n=("correct", "size"), correct=("correct", "sum")).reset_index()
    block = table.groupby(["eval_dataset", "subset"], sort=False).ngroup()
    table = table.assign(block=block).sort_values(["block", "label"], kind="stable")
    table["accuracy"] = (100.0 * table.correct / table.n).round(2)
    return table.rename(columns={"label_name": "classname"})[list(PER_CLASS_COLUMNS)].reset_index(drop=True)


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true, predicted] over `n_classes` classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def confusion_counts(evaluations: Sequence[Any]) -> pd.DataFrame:
    """The non-zero cells of every evaluation's confusion matrix: (eval dataset, subset, label, predicted, count)."""
    rows = []
    for ev in evaluations:
        pred = ev.predictions
        matrix = confusion(pred.labels, pred.predicted, len(pred.classnames))
        for label, predicted in zip(*np.nonzero(matrix)):
            rows.append((ev.dataset, ev.subset, int(label), int(predicted), int(matrix[label, predicted])))
    return pd.DataFrame(rows, columns=list(CONFUSION_COLUMNS))


def plot_confusion_matrices(evaluations: Sequence[Any], path: Path) -> None:
    """One row-normalised confusion matrix per evaluation, side by side in one PNG."""
    from benchmark.results.report import new_figure

    count = len(evaluations)
    cols = min(count, 2)
    rows = -(-count // cols)
    size = 5.5 if max(len(ev.predictions.classnames) for ev in evaluations) > 20 else 4.5
    fig = new_figure(size * cols, size * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    for ax, ev in zip(axes, evaluations):
        pred = ev.predictions
        n = len(pred.classnames)
        matrix = confusion(pred.labels, pred.predicted, n).astype(float)
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"{ev.dataset} / {ev.subset}  (acc {pred.accuracy:.2f}%)", fontsize=9)
        fontsize = max(3.0, min(7.0, 160.0 / max(n, 1)))
        ax.set_xticks(range(n), pred.classnames, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), pred.classnames, fontsize=fontsize)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def few_shot_record(spec: RunSpec, few_shot: Any) -> dict[str, Any]:
    """The few-shot lists of a run and a digest two runs can be compared by.

    The digest is the sha256 of the sorted train and val paths (newline-joined, "train:"/"val:"
    prefixed, so an image moving between lists changes it); sorting makes it independent of draw order.
    """
    train = [item.path for item in few_shot.train]
    val = [item.path for item in few_shot.val]
    return {
        "dataset": spec.dataset,
        "seed": spec.seed,
        "shots": spec.shots,
        "train": train,
        "val": val,
        "short_classes": list(few_shot.short_classes),
        "digest": few_shot_digest(train, val),
    }


def few_shot_digest(train: Sequence[str], val: Sequence[str]) -> str:
    """sha256 of the sorted, list-prefixed few-shot paths."""
    lines = sorted([f"train:{p}" for p in train] + [f"val:{p}" for p in val])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def environment(device: str) -> dict[str, Any]:
    """What the run ran on: harness version and commit, library versions, python, platform, device."""
    info: dict[str, Any] = {
        "harness_version": benchmark.__version__,
        "git_sha": git_sha(),
        "git_dirty": git_dirty(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
    }
    for name in LIBRARIES:
        try:
            info[name.replace("open_clip_torch", "open_clip")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name.replace("open_clip_torch", "open_clip")] = None
    info["lock"] = lock_status()
    if device.startswith("cuda"):
        try:
            import torch

            info["device_name"] = torch.cuda.get_device_name(torch.device(device))
            info["cuda"] = torch.version.cuda
        except Exception:  # noqa: BLE001 - environment.json must never fail a finished run
            log.debug("could not query the CUDA device", exc_info=True)
    return info


LOCK_FILE = "requirements.lock"


def lock_status() -> dict[str, Any]:
    """Whether this environment is the committed lock's (`make run`/`make test` install from it).

    `matches`: every `name==version` of the lock is what is installed (None when there is no lock beside the
    package, e.g. an installed wheel); `differs`: the first few that are not, so a number produced by another
    torch build says so in its run's `environment.json`.
    """
    lock = Path(benchmark.__file__).resolve().parent.parent / LOCK_FILE
    if not lock.is_file():
        return {"file": None, "matches": None}
    differs = []
    for line in lock.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if not sep or line.startswith("#"):
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            differs.append(f"{name}=={version} (installed: {installed})")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    return {"file": f"{LOCK_FILE}@{digest}", "matches": not differs, "differs": differs[:10]}


def _git(*args: str) -> str | None:
    root = Path(benchmark.__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """HEAD of the repository the package is imported from, or "unknown" (installed wheel, no git)."""
    return _git("rev-parse", "HEAD") or "unknown"


@functools.lru_cache(maxsize=1)
def git_dirty() -> bool | None:
    """Whether tracked files differ from HEAD (the sha then does not fully describe the code); None if unknown."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)
