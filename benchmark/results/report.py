"""Readable leaderboards: `leaderboard_<protocol>.md` and `.png`, rendered from the wide CSV table.

They are regenerated together with the CSVs (`benchmark.results.leaderboard.rebuild`) and attached to the
sweep's parent MLflow run (`log_sweep_reports`). The Markdown marks the best value per column among
the methods of each dataset in bold only when a paired t-test over seeds separates it from the
runner-up, and marks a tie otherwise. For paper-profile runs it puts the published number and our difference
beside every cell (`benchmark.results.published`). The PNG draws grouped bars with 95% seed intervals.
What the rows, columns and figure are is the protocol's table kind (`benchmark.results.tables`);
this module only lays them out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.results.configs import LabelConfig, markdown_configs
from benchmark.results.published import AVERAGE, Published, load_published
from benchmark.results.stats import paired_t
from benchmark.results.tables import MetricColumn, TableKind, new_figure

log = logging.getLogger(__name__)

ALPHA = 0.05

__all__ = ["new_figure", "markdown_leaderboard", "write_reports", "report_paths", "log_sweep_reports"]


def _protocol(protocol: str):
    from benchmark.registry import PROTOCOLS

    return PROTOCOLS.get(protocol)


def _groups(kind: TableKind, wide: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """Rows grouped per compared cell, (source, dataset) in order of appearance, averages last."""
    keys = [kind.row_key(row) for row in wide.itertuples(index=False)]
    frame = wide.assign(_source=[k[0] for k in keys], _dataset=[k[1] for k in keys])
    order = list(dict.fromkeys(keys))
    order = [k for k in order if k[1] != AVERAGE] + [k for k in order if k[1] == AVERAGE]
    out = []
    for source, dataset in order:
        rows = frame[(frame._source == source) & (frame._dataset == dataset)].sort_values("method", kind="stable")
        out.append(((source, dataset), rows.drop(columns=["_source", "_dataset"])))
    return out


def _best_marks(
    rows: pd.DataFrame, metrics: tuple[MetricColumn, ...], seeds: pd.DataFrame | None, source: str, dataset: str
) -> dict[tuple[str, str], str]:
    """Per (method, mean column): "bold" for a best mean that beats the runner-up over seeds, "tie" otherwise.

    The comparison is the paired t-test over the seeds both methods share (`benchmark.results.stats.paired_t`);
    against a deterministic row (one run, zero-shot) the other method's per-seed values are tested
    against its value. Without per-seed values nothing is marked.
    """
    if len(rows) < 2 or seeds is None or seeds.empty:
        return {}
    marks: dict[tuple[str, str], str] = {}
    here = seeds[(seeds.source == source) & (seeds.dataset == dataset)]
    for metric in metrics:
        mean_col = metric.mean
        ranked = rows[rows[mean_col].notna()].sort_values(mean_col, ascending=False, kind="stable")
        if len(ranked) < 2:
            continue
        best, runner_up = ranked.iloc[0], ranked.iloc[1]
        if best[mean_col] == runner_up[mean_col]:
            marks[(best.method, mean_col)] = marks[(runner_up.method, mean_col)] = "tie"
            continue
        subset = metric.subset
        a = here[(here.method == best.method) & (here.subset == subset)].set_index("seed")["value"]
        b = here[(here.method == runner_up.method) & (here.subset == subset)].set_index("seed")["value"]
        if a.empty or b.empty:
            continue
        if len(a) == 1 or len(b) == 1:
            diffs = (a - float(b.iloc[0])) if len(b) == 1 else (float(a.iloc[0]) - b)
        else:
            common = a.index.intersection(b.index)
            diffs = a.loc[common] - b.loc[common]
        test = paired_t(diffs.to_numpy())
        if test.n >= 2 and test.p_value < ALPHA and test.mean > 0:
            marks[(best.method, mean_col)] = "bold"
        else:
            marks[(best.method, mean_col)] = marks[(runner_up.method, mean_col)] = "tie"
    return marks


MARKDOWN_COST = ("train_s", "params")  # the cost columns the Markdown shows (the CSV has all of them)
_EXTRA_TITLES = {"ece": "ECE", "ece_base": "ECE base", "ece_new": "ECE new", "train_s": "train s"}


_ECE_OF = {"ece_base": "base_mean", "ece_new": "new_mean", "ece": "acc_mean"}  # the accuracy an ECE belongs to


def _extra_cell(column: str, value: float, row) -> str:
    if pd.isna(value):
        accuracy = getattr(row, _ECE_OF.get(column, ""), 0.0)
        return "n/a" if pd.isna(accuracy) else "–"
    if column == "params":
        return f"{int(value):,}"
    return f"{value:.1f}" if column == "train_s" else f"{value:.2f}"


def _spread(value: float) -> str:
    return "" if pd.isna(value) else f" ± {value:.2f}"


def markdown_leaderboard(
    protocol: str,
    wide: pd.DataFrame,
    *,
    published: Published | None = None,
    profile: str | None = None,
    seeds: pd.DataFrame | None = None,
    collapsed: pd.DataFrame | None = None,
    configs: dict[str, LabelConfig] | None = None,
) -> str:
    """The Markdown leaderboard of one protocol.

    Args:
        protocol: a registered protocol; its table kind decides the columns and the legend.
        wide: the leaderboard CSV table (`benchmark.results.leaderboard.wide_table`).
        published: published values to show beside ours (paper profile), or None.
        profile: the runs' profile, for the note under the table.
        seeds: per-seed values (`benchmark.results.leaderboard.seed_values`), for the seed-level best marks.
        collapsed: collapsed runs (`benchmark.results.leaderboard.collapsed_runs`), counted in a footnote.
        configs: each label's full configuration (`benchmark.results.configs.label_configs`), the legend's
            last section.
    """
    owner = _protocol(protocol)
    kind: TableKind = owner.table
    metrics = kind.metrics
    lines = [f"# Leaderboard: {owner.title} (`{owner.name}`)", ""]
    lines.append(
        f"Generated from MLflow by `python -m benchmark leaderboard` (profile {profile or 'any'}); do not edit. "
        f"Numbers are the CSV `leaderboard_{owner.leaderboard_name}.csv`, top-1 accuracy in percent."
    )
    lines.append("")
    if wide.empty:
        return "\n".join([*lines, "No finished runs yet.", ""])
    head = [*kind.key_titles, "method", "seeds"]
    for metric in metrics:
        head.append(metric.title)
        if published is not None:
            head.append(f"{metric.title} paper (diff)")
    extra = [c for c in (*(name for name, _ in kind.calibration), *MARKDOWN_COST) if c in wide.columns]
    head += [_EXTRA_TITLES.get(c, c) for c in extra]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: dict[str, int] = {}
    for (source, dataset), rows in _groups(kind, wide):
        marks = _best_marks(rows, metrics, seeds, source, dataset)
        for row in rows.itertuples(index=False):
            cells = [*kind.key_cells(source, dataset), row.method, str(row.n_seeds)]
            for metric in metrics:
                mean = getattr(row, metric.mean)
                text = "n/a" if pd.isna(mean) else f"{mean:.2f}"
                mark = marks.get((row.method, metric.mean))
                if mark == "bold":
                    text = f"**{text}**"
                elif mark == "tie":
                    text = f"{text} ≈"
                if metric.spread is not None:
                    text += _spread(getattr(row, metric.spread))
                cells.append(text)
                if published is not None:
                    where = (row.method, source, dataset, metric.published)
                    cells.append(_published_cell(published, wide, kind, where, mean, notes))
            cells += [_extra_cell(c, getattr(row, c), row) for c in extra]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    spread = "/".join(m.title for m in metrics if m.spread is not None)
    lines.append(
        f"**Bold**: the best mean of a column among the methods on the same {kind.compared_on}, "
        "and better than the runner-up by a paired t-test over seeds at 5%. ≈: the best and the runner-up are "
        "not distinguishable over seeds (a tie). "
        f"± is the sample std over seeds (ddof 1); the Student-t 95% half-widths t(0.975, n-1)·s/√n are the "
        f"`*_ci95` columns of the CSV ({spread}). A method that trains nothing (zero-shot) runs once: 1 seed, no "
        "spread. n/a: an evaluation the method cannot make (a linear probe or a cache keyed by the training "
        "labels has no weights for unseen classes), recorded as such, never filled in. "
        + kind.legend
        + f"The `{AVERAGE}` row averages per seed over the {kind.average_of}, "
        "then over seeds. Use `python -m benchmark compare A B` for a seed-level comparison of any two methods."
    )
    if extra:
        lines += [
            "",
            "ECE: expected calibration error of the softmax in percent (15 equal-width confidence bins; 0 is "
            "perfect), mean over seeds. train s: wall seconds of fitting per run (the shared frozen-feature cache "
            "fill excluded), params: values fitted on the shots, both means over seeds; the CSV adds `eval_s` and "
            "`peak_mem_mb`, and `results/README.md` defines them. Times depend on the machine; "
            f"`cost_{owner.leaderboard_name}.png` plots the headline number against training time. "
            "–: not measured (a run logged before these measurements existed) or a curve's summary row.",
        ]
    lines.append("")
    test_selected = sorted(m for m in set(wide.method) if "best_test" in m)
    if test_selected:
        lines += [
            f"best_test: the numbers of {', '.join(f'`{m}`' for m in test_selected)} come from a checkpoint "
            "chosen on the test split (as the reference code does). They are optimistic, and not comparable with "
            "rows that report the last epoch or an epoch chosen on validation shots.",
            "",
        ]
    lines += _collapse_note(kind, collapsed, with_shots=owner.shots_axis)
    if published is not None:
        lines.append(
            f"paper (diff): the published value and ours minus it, from `results/published/{protocol}.csv` "
            "(matched by method name, zeroshot = CLIP; citations there), only for rows run in the published "
            "setting (the profile's backbone, 16 shots, the default preset without overrides, the public split). "
            "A dash: no published value, a setting that differs (footnoted), or our average covers other "
            "datasets than the published one."
        )
        if notes:
            lines += ["", *(f"- [{n}] {note}" for note, n in notes.items())]
    elif profile == "paper":
        lines.append(f"No published values found for `{protocol}` (results/published/{protocol}.csv).")
    else:
        lines.append(
            "Published values: none for these runs. They are not on the paper profile (e.g. the embedded world's "
            "synthetic datasets and tiny CLIP), and no paper reports on them."
        )
    lines.append("")
    lines += markdown_configs(configs or {}, order=wide.method)
    return "\n".join(lines)


def _collapse_note(kind: TableKind, collapsed: pd.DataFrame | None, *, with_shots: bool = False) -> list[str]:
    """Footnote lines counting collapsed runs per method (empty when there are none); K too where it is an axis."""
    if collapsed is None or collapsed.empty:
        return []
    lines = [
        f"Collapsed runs: a trained run whose {kind.trained_words} accuracy ended below zero-shot CLIP's on the same "
        "dataset (tagged `collapsed=yes` in MLflow). They are kept in the means above, not averaged away silently:"
    ]
    for method, group in collapsed.groupby("method", sort=True):
        cells = "; ".join(
            f"{r.dataset} seed {r.seed}{f' {r.shots}-shot' if with_shots else ''}: {r.value:.1f} < {r.zero_shot:.1f}"
            for r in group.sort_values(["dataset", "seed", "shots"], kind="stable").itertuples(index=False)
        )
        lines.append(f"- {method}: {len(group)} run(s) ({cells})")
    return [*lines, ""]


def setting_differs(label: str) -> str:
    """What of a leaderboard label departs from the published setting ("" when nothing does).

    Labels carry in brackets everything that departs from the profile's defaults (preset or overrides,
    backbone, shots, a split that is not the public one); on the paper profile those defaults are the
    published setting, so a bracket means the published number is not comparable.
    """
    return label.split("[", 1)[1].rstrip("]") if "[" in label else ""


def comparable(published: Published, wide: pd.DataFrame, kind: TableKind, where: tuple[str, str, str, str]):
    """The published Value for (method, source, dataset, metric), or None when there is none to compare with.

    Only a row run in the published setting is compared (`setting_differs`), and an `average` row only
    when ours averages the same datasets as the published average.
    """
    method, source, dataset, metric = where
    if setting_differs(method):
        return None
    value = published.get(method, source, dataset, metric)
    if value is not None and dataset == AVERAGE:
        if set(kind.covered(wide, method, source)) != set(published.datasets.get(source, ())):
            return None
    return value


def _published_cell(
    published: Published,
    wide: pd.DataFrame,
    kind: TableKind,
    where: tuple[str, str, str, str],
    ours: float,
    notes: dict[str, int],
) -> str:
    """`published (ours - published)` with a note marker; a dash when there is nothing comparable."""
    differs = setting_differs(where[0])
    if differs and published.get(*where) is not None:
        note = f"not comparable with the published setting: {differs}"
        return f"– [{notes.setdefault(note, len(notes) + 1)}]"
    value = comparable(published, wide, kind, where)
    if value is None:
        return "–"
    text = f"{value.value:.2f} ({ours - value.value:+.2f})"
    if value.note:
        text += f" [{notes.setdefault(value.note, len(notes) + 1)}]"
    return text


def plot_leaderboard(protocol: str, wide: pd.DataFrame, path: Path, *, published: Published | None = None) -> None:
    """Write the protocol's figure (its table kind draws it), with published values where comparable."""
    owner = _protocol(protocol)
    kind: TableKind = owner.table
    if wide.empty:
        fig = new_figure(5, 2)
        fig.text(0.5, 0.5, f"{owner.name}: no finished runs yet", ha="center", va="center")
    else:
        published_at = None
        if published is not None:

            def published_at(method: str, source: str, dataset: str, metric: str):
                return comparable(published, wide, kind, (method, source, dataset, metric))

        fig = kind.figure(wide, owner.title, published_at)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def report_paths(out_dir: Path, protocol: str) -> list[Path]:
    """The files `rebuild` writes for a protocol: the CSVs, the Markdown and the PNGs."""
    out_dir = Path(out_dir)
    names = ("leaderboard_{}.csv", "runs_{}.csv", "configs_{}.csv", "leaderboard_{}.md", "leaderboard_{}.png")
    names += ("cost_{}.png",)
    return [out_dir / name.format(_protocol(protocol).leaderboard_name) for name in names]


def write_reports(
    protocol: str,
    wide: pd.DataFrame,
    out_dir: Path,
    *,
    profile: str | None = None,
    published_dir: Path | None = None,
    seeds: pd.DataFrame | None = None,
    collapsed: pd.DataFrame | None = None,
    configs: dict[str, LabelConfig] | None = None,
) -> list[Path]:
    """Write `leaderboard_<protocol>.md`, `.png` and `cost_<protocol>.png`.

    Paper-profile tables get the published values beside ours.
    """
    out_dir = Path(out_dir)
    published = load_published(protocol, published_dir) if profile == "paper" else None
    name = _protocol(protocol).leaderboard_name
    md, png = out_dir / f"leaderboard_{name}.md", out_dir / f"leaderboard_{name}.png"
    text = markdown_leaderboard(
        protocol, wide, published=published, profile=profile, seeds=seeds, collapsed=collapsed, configs=configs
    )
    replace_atomically(md, lambda tmp: Path(tmp).write_text(text))
    plot_leaderboard(protocol, wide, png, published=published)
    cost = out_dir / f"cost_{name}.png"
    plot_cost(protocol, wide, seeds if seeds is not None else pd.DataFrame(), cost)
    return [md, png, cost]


def plot_cost(protocol: str, wide: pd.DataFrame, seeds: pd.DataFrame, path: Path) -> None:
    """Write the headline number against training time per method (`run_columns.cost_figure`)."""
    from benchmark.results.tables.run_columns import cost_figure

    owner = _protocol(protocol)
    if wide.empty or seeds.empty:
        fig = new_figure(5, 2)
        fig.text(0.5, 0.5, f"{owner.name}: no finished runs yet", ha="center", va="center")
    else:
        fig = cost_figure(owner.table, wide, seeds, owner.title)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def log_sweep_reports(tracker, parent_run_id: str, paths: Iterable[Path]) -> None:
    """Attach the leaderboard files to the sweep's parent run (works after the run is terminated).

    Args:
        tracker: a `benchmark.run.tracking.Tracker`.
        parent_run_id: the sweep's parent MLflow run.
        paths: files to attach, e.g. `report_paths(results_dir, protocol)`; missing ones are skipped.
    """
    for path in map(Path, paths):
        if path.is_file():
            tracker.client.log_artifact(parent_run_id, str(path), artifact_path="leaderboards")
        else:
            log.debug("not attaching %s: missing", path)
