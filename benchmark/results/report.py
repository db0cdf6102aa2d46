"""Readable leaderboards: `leaderboard_<protocol>.md` and `.png`, rendered from the wide CSV table.

They are regenerated together with the CSVs (`benchmark.results.leaderboard.rebuild`) and attached to the
sweep's parent MLflow run (`log_sweep_reports`). The Markdown marks the best value per column among
the methods of each dataset in bold only when a paired t-test over seeds separates it from the
runner-up, and marks a tie otherwise. For paper-profile runs it puts the published number and our difference
beside every cell (`benchmark.results.published`). The PNG draws grouped bars with 95% seed intervals.
Figures are built with `matplotlib.figure.Figure`, which renders with Agg and never touches pyplot's
global state, so this works headless and inside worker processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.results.published import AVERAGE, Published, load_published
from benchmark.results.stats import paired_t

log = logging.getLogger(__name__)

TITLES = {"b2n": "base-to-new", "xd": "cross-dataset", "dg": "domain generalization"}
# (column title, mean column, spread column or None, published metric)
B2N_METRICS = (
    ("base", "base_mean", "base_std", "base"),
    ("new", "new_mean", "new_std", "new"),
    ("HM", "hm", None, "hm"),
)
TRANSFER_METRICS = (("accuracy", "acc_mean", "acc_std", "acc"),)
SEED_SUBSET = {"acc": "all"}  # published metric -> subset of its per-seed values (base/new/hm are their own)
ALPHA = 0.05


def new_figure(width: float, height: float):
    """A pyplot-free matplotlib Figure (saved with the Agg canvas)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _groups(protocol: str, wide: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """Rows grouped per compared cell: (source, dataset) for b2n ("" source) or (source, target); averages last."""
    if protocol == "b2n":
        frame = wide.assign(_source="", _dataset=wide["dataset"])
    else:
        frame = wide.assign(_source=wide["source"], _dataset=wide["target"])
    keys = list(dict.fromkeys(zip(frame._source, frame._dataset)))
    keys = [k for k in keys if k[1] != AVERAGE] + [k for k in keys if k[1] == AVERAGE]
    out = []
    for source, dataset in keys:
        rows = frame[(frame._source == source) & (frame._dataset == dataset)].sort_values("method", kind="stable")
        out.append(((source, dataset), rows))
    return out


def _covered(wide: pd.DataFrame, protocol: str, method: str, source: str) -> tuple[str, ...]:
    """The datasets our average row of `method` averages over (for matching a published average)."""
    if protocol == "b2n":
        rows = wide[(wide.method == method) & (wide.dataset != AVERAGE)]
        return tuple(rows.dataset)
    rows = wide[(wide.method == method) & (wide.source == source)]
    return tuple(t for t in rows.target if t not in (AVERAGE, source))


def _best_marks(
    rows: pd.DataFrame, metrics, seeds: pd.DataFrame | None, source: str, dataset: str
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
    for _, mean_col, _, metric in metrics:
        ranked = rows.sort_values(mean_col, ascending=False, kind="stable")
        best, runner_up = ranked.iloc[0], ranked.iloc[1]
        if best[mean_col] == runner_up[mean_col]:
            marks[(best.method, mean_col)] = marks[(runner_up.method, mean_col)] = "tie"
            continue
        subset = SEED_SUBSET.get(metric, metric)
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
) -> str:
    """The Markdown leaderboard of one protocol.

    Args:
        protocol: "b2n", "xd" or "dg".
        wide: the leaderboard CSV table (`benchmark.results.leaderboard.wide_table`).
        published: published values to show beside ours (paper profile), or None.
        profile: the runs' profile, for the note under the table.
        seeds: per-seed values (`benchmark.results.leaderboard.seed_values`), for the seed-level best marks.
        collapsed: collapsed runs (`benchmark.results.leaderboard.collapsed_runs`), counted in a footnote.
    """
    b2n = protocol == "b2n"
    metrics = B2N_METRICS if b2n else TRANSFER_METRICS
    lines = [f"# Leaderboard: {TITLES.get(protocol, protocol)} (`{protocol}`)", ""]
    lines.append(
        f"Generated from MLflow by `python -m benchmark leaderboard` (profile {profile or 'any'}); do not edit. "
        f"Numbers are the CSV `leaderboard_{protocol}.csv`, top-1 accuracy in percent."
    )
    lines.append("")
    if wide.empty:
        return "\n".join([*lines, "No finished runs yet.", ""])
    head = ["dataset"] if b2n else ["source", "target"]
    head += ["method", "seeds"]
    for title, *_ in metrics:
        head.append(title)
        if published is not None:
            head.append(f"{title} paper (diff)")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: dict[str, int] = {}
    for (source, dataset), rows in _groups(protocol, wide):
        marks = _best_marks(rows, metrics, seeds, source, dataset)
        for row in rows.itertuples(index=False):
            cells = [dataset] if b2n else [source, dataset]
            cells += [row.method, str(row.n_seeds)]
            for _, mean_col, std_col, metric in metrics:
                mean = getattr(row, mean_col)
                text = f"{mean:.2f}"
                mark = marks.get((row.method, mean_col))
                if mark == "bold":
                    text = f"**{text}**"
                elif mark == "tie":
                    text = f"{text} ≈"
                if std_col is not None:
                    text += _spread(getattr(row, std_col))
                cells.append(text)
                if published is not None:
                    where = (row.method, source, dataset, metric)
                    cells.append(_published_cell(published, wide, protocol, where, mean, notes))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    spread = "base/new" if b2n else "accuracy"
    lines.append(
        f"**Bold**: the best mean of a column among the methods on the same {'dataset' if b2n else 'target'}, "
        "and better than the runner-up by a paired t-test over seeds at 5%. ≈: the best and the runner-up are "
        "not distinguishable over seeds (a tie). "
        f"± is the sample std over seeds (ddof 1); the Student-t 95% half-widths t(0.975, n-1)·s/√n are the "
        f"`*_ci95` columns of the CSV ({spread}). A method that trains nothing (zero-shot) runs once: 1 seed, no "
        "spread. "
        + ("HM is of the seed-averaged base and new. " if b2n else "")
        + f"The `{AVERAGE}` row averages per seed over the {'datasets' if b2n else 'targets (not the source)'}, "
        "then over seeds. Use `python -m benchmark compare A B` for a seed-level comparison of any two methods."
    )
    lines.append("")
    test_selected = sorted(m for m in set(wide.method) if "best_test" in m)
    if test_selected:
        lines += [
            f"best_test: the numbers of {', '.join(f'`{m}`' for m in test_selected)} come from a checkpoint "
            "chosen on the test split (as the reference code does). They are optimistic, and not comparable with "
            "rows that report the last epoch or an epoch chosen on validation shots.",
            "",
        ]
    lines += _collapse_note(protocol, collapsed)
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
    return "\n".join(lines)


def _collapse_note(protocol: str, collapsed: pd.DataFrame | None) -> list[str]:
    """Footnote lines counting collapsed runs per method (empty when there are none)."""
    if collapsed is None or collapsed.empty:
        return []
    what = "base" if protocol == "b2n" else "source"
    lines = [
        f"Collapsed runs: a trained run whose {what} accuracy ended below zero-shot CLIP's on the same dataset "
        "(tagged `collapsed=yes` in MLflow). They are kept in the means above, not averaged away silently:"
    ]
    for method, group in collapsed.groupby("method", sort=True):
        cells = "; ".join(
            f"{r.dataset} seed {r.seed}: {r.value:.1f} < {r.zero_shot:.1f}" for r in group.itertuples(index=False)
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


def comparable(published: Published, wide: pd.DataFrame, protocol: str, where: tuple[str, str, str, str]):
    """The published Value for (method, source, dataset, metric), or None when there is none to compare with.

    Only a row run in the published setting is compared (`setting_differs`), and an `average` row only
    when ours averages the same datasets as the published average.
    """
    method, source, dataset, metric = where
    if setting_differs(method):
        return None
    value = published.get(method, source, dataset, metric)
    if value is not None and dataset == AVERAGE:
        if set(_covered(wide, protocol, method, source)) != set(published.datasets.get(source, ())):
            return None
    return value


def _published_cell(
    published: Published,
    wide: pd.DataFrame,
    protocol: str,
    where: tuple[str, str, str, str],
    ours: float,
    notes: dict[str, int],
) -> str:
    """`published (ours - published)` with a note marker; a dash when there is nothing comparable."""
    differs = setting_differs(where[0])
    if differs and published.get(*where) is not None:
        note = f"not comparable with the published setting: {differs}"
        return f"– [{notes.setdefault(note, len(notes) + 1)}]"
    value = comparable(published, wide, protocol, where)
    if value is None:
        return "–"
    text = f"{value.value:.2f} ({ours - value.value:+.2f})"
    if value.note:
        text += f" [{notes.setdefault(value.note, len(notes) + 1)}]"
    return text


def plot_leaderboard(protocol: str, wide: pd.DataFrame, path: Path, *, published: Published | None = None) -> None:
    """Grouped bars: base/new/HM per method per dataset (b2n) or accuracy per target (xd/dg), ±ci95."""
    groups = _groups(protocol, wide) if not wide.empty else []
    if not groups:
        fig = new_figure(5, 2)
        fig.text(0.5, 0.5, f"{protocol}: no finished runs yet", ha="center", va="center")
    elif protocol == "b2n":
        fig = _plot_b2n(groups, published, wide)
    else:
        fig = _plot_transfer(protocol, groups, published, wide)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _plot_b2n(groups, published: Published | None, wide: pd.DataFrame):
    cols = min(len(groups), 3)
    rows = -(-len(groups) // cols)
    n_methods = max(len(g) for _, g in groups)
    fig = new_figure(max(4.0, 1.1 * n_methods + 1.5) * cols, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    width = 0.27
    for ax, ((_, dataset), frame) in zip(axes, groups):
        x = list(range(len(frame)))
        for i, (title, mean_col, _, metric) in enumerate(B2N_METRICS):
            ci = frame[mean_col.replace("_mean", "_ci95")].fillna(0.0) if mean_col != "hm" else None
            pos = [v + (i - 1) * width for v in x]
            ax.bar(pos, frame[mean_col], width, yerr=ci, capsize=2, label=title)
            if published is not None:
                values = [comparable(published, wide, "b2n", (m, "", dataset, metric)) for m in frame.method]
                pts = [(p, v.value) for p, v in zip(pos, values) if v is not None]
                if pts:
                    label = "published" if i == 0 else None
                    ax.scatter(*zip(*pts), marker="_", s=120, color="black", zorder=3, label=label)
        ax.set_title(dataset, fontsize=10)
        ax.set_xticks(x, list(frame.method), rotation=25, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right", ncol=2)
    fig.suptitle("base-to-new: base / new / HM (error bars: 95% interval over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_transfer(protocol: str, groups, published: Published | None, wide: pd.DataFrame):
    methods = sorted({m for _, g in groups for m in g.method})
    sources = list(dict.fromkeys(source for (source, _), _ in groups))
    fig = new_figure(max(6.0, 0.45 * len(groups) * len(methods) + 2), 3.8 * len(sources))
    axes = fig.subplots(len(sources), 1, squeeze=False).ravel()
    width = 0.8 / len(methods)
    for ax, source in zip(axes, sources):
        mine = [(dataset, frame) for (src, dataset), frame in groups if src == source]
        for j, method in enumerate(methods):
            xs, ys, errs, paper = [], [], [], []
            for i, (dataset, frame) in enumerate(mine):
                row = frame[frame.method == method]
                if len(row):
                    xs.append(i + (j - (len(methods) - 1) / 2) * width)
                    ys.append(float(row.acc_mean.iloc[0]))
                    errs.append(float(row.acc_ci95.fillna(0.0).iloc[0]))
                    where = (method, source, dataset, "acc")
                    value = comparable(published, wide, protocol, where) if published is not None else None
                    if value is not None:
                        paper.append((xs[-1], value.value))
            ax.bar(xs, ys, width, yerr=errs, capsize=2, label=method)
            if paper:
                ax.scatter(*zip(*paper), marker="_", s=120, color="black", zorder=3)
        labels = [f"{d}\n(source)" if d == source else d for d, _ in mine]
        ax.set_xticks(range(len(mine)), labels, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.set_title(f"{TITLES.get(protocol, protocol)} from {source}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    suffix = "; black ticks: published" if published is not None else ""
    fig.suptitle(f"accuracy per target (error bars: 95% interval over seeds{suffix})", fontsize=10)
    fig.tight_layout()
    return fig


def report_paths(out_dir: Path, protocol: str) -> list[Path]:
    """The files `rebuild` writes for a protocol: both CSVs, the Markdown and the PNG."""
    out_dir = Path(out_dir)
    names = ("leaderboard_{}.csv", "runs_{}.csv", "leaderboard_{}.md", "leaderboard_{}.png")
    return [out_dir / name.format(protocol) for name in names]


def write_reports(
    protocol: str,
    wide: pd.DataFrame,
    out_dir: Path,
    *,
    profile: str | None = None,
    published_dir: Path | None = None,
    seeds: pd.DataFrame | None = None,
    collapsed: pd.DataFrame | None = None,
) -> list[Path]:
    """Write `leaderboard_<protocol>.md` and `.png`; paper-profile tables get the published values beside ours."""
    out_dir = Path(out_dir)
    published = load_published(protocol, published_dir) if profile == "paper" else None
    md, png = out_dir / f"leaderboard_{protocol}.md", out_dir / f"leaderboard_{protocol}.png"
    text = markdown_leaderboard(protocol, wide, published=published, profile=profile, seeds=seeds, collapsed=collapsed)
    replace_atomically(md, lambda tmp: Path(tmp).write_text(text))
    plot_leaderboard(protocol, wide, png, published=published)
    return [md, png]


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
