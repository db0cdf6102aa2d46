"""The backbone x method matrix (`leaderboard --matrix`): each method's headline number on every backbone.

A leaderboard ranks methods on one backbone. Whether a method's advantage survives another backbone (larger,
pretrained otherwise) needs the same number side by side, with the gain over zero-shot CLIP on the same backbone,
the model every method starts from. Nothing is computed anew here: the runs of each backbone are pivoted by the
protocol's table kind exactly as its leaderboard pivots them, and the number is the kind's headline
(`TableKind.headline` through `run_columns.headlines`: b2n HM, xd/dg target average, few-shot area) on its
`average` row, or on the only dataset a sweep covered. So a one-backbone matrix repeats the leaderboard, and no
protocol needs a branch of its own.

Intervals are over seeds (Student-t 95%, `benchmark.results.stats`). The gain's interval is that of the per-seed
differences, paired by seed; zero-shot runs once, so its value is subtracted from every seed of the method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.paths import replace_atomically
from benchmark.results.stats import t_halfwidth
from benchmark.results.tables import AVERAGE, DECIMALS, TableKind, new_figure, order_values
from benchmark.results.tables.run_columns import Headline, headlines

REFERENCE = "zeroshot"  # the label the gains are measured from (on each backbone)
COLUMNS = (
    "method",
    "source",
    "backbone",
    "label",
    "dataset",
    "covers",
    "n_seeds",
    "value",
    "ci95",
    "gain",
    "gain_ci95",
)


def base_label(label: str, backbone: str, default: str | None = None) -> str:
    """The leaderboard label without its backbone mark: `coop[random-tiny:1]` -> `coop` (see `method_label`).

    A run on the profile's `default` backbone carries no mark, so its label is returned as it is (a preset named
    like a backbone stays); with `default` unknown, the last mark equal to the backbone is dropped.
    """
    if backbone == default or not label.endswith("]") or "[" not in label:
        return label
    head, _, inner = label[:-1].partition("[")
    marks = inner.split(", ")
    if backbone not in marks:
        return label
    del marks[len(marks) - 1 - marks[::-1].index(backbone)]
    return f"{head}[{', '.join(marks)}]" if marks else head


def is_reference(label: str, backbone: str) -> bool:
    """Whether a leaderboard label is plain zero-shot CLIP on `backbone` (marked with nothing but the backbone)."""
    return label in (REFERENCE, f"{REFERENCE}[{backbone}]")


def _gain(point: Headline, reference: Headline) -> tuple[float, float]:
    """The headline minus zero-shot's, and the Student-t 95% half-width of the per-seed differences."""
    if len(reference.seeds) == 1:
        diffs = point.seeds - float(reference.seeds.iloc[0])
    elif len(point.seeds) == 1:
        diffs = float(point.seeds.iloc[0]) - reference.seeds
    else:
        common = point.seeds.index.intersection(reference.seeds.index)
        diffs = point.seeds.loc[common] - reference.seeds.loc[common]
    return point.value - reference.value, t_halfwidth(diffs.to_numpy(dtype=float))


def _round(value: float) -> float:
    return value if math.isnan(value) else round(value, DECIMALS)


def matrix_table(
    protocol: str, long: pd.DataFrame, order: Iterable[str] = (), *, default_backbone: str | None = None
) -> pd.DataFrame:
    """One row per (method, source, backbone) with the headline number, its interval and the gain over zero-shot.

    Args:
        protocol: a registered protocol (its table kind pivots the runs).
        long: the long table of the runs (`benchmark.results.leaderboard.long_rows`), any number of backbones.
        order: datasets first in this order (as the leaderboard orders them).
        default_backbone: the profile's backbone: listed first, and its labels carry no backbone mark.

    The gain is n/a without a plain zero-shot run on the same backbone whose headline covers the same datasets.
    """
    from benchmark.results.leaderboard import accuracy_rows, table_kind

    kind = table_kind(protocol)
    order = list(order)
    rows: list[dict[str, Any]] = []
    backbones = order_values(long.backbone, [default_backbone] if default_backbone else [])
    for backbone in backbones:
        mine = accuracy_rows(long[long.backbone == backbone])
        labels = dict(zip([base_label(m, backbone, default_backbone) for m in mine.method], mine.method))
        mine = mine.assign(method=[base_label(m, backbone, default_backbone) for m in mine.method])
        wide = kind.wide(mine, order)
        points = {(p.method, p.source): p for p in headlines(kind, wide, kind.seed_values(mine, order))}
        covers = {key: _covers(kind, wide, *key, p.dataset) for key, p in points.items()}
        for (method, source), point in points.items():
            reference = next(
                (p for (m, s), p in points.items() if s == source and is_reference(labels[m], backbone)), None
            )
            gain = ci = math.nan
            if reference is not None and covers[(reference.method, source)] == covers[(method, source)]:
                gain, ci = _gain(point, reference)
            rows.append(
                {
                    "method": method,
                    "source": source,
                    "backbone": backbone,
                    "label": labels[method],
                    "dataset": point.dataset,
                    "covers": ";".join(covers[(method, source)]),
                    "n_seeds": len(point.seeds),
                    "value": _round(point.value),
                    "ci95": _round(point.ci95),
                    "gain": _round(gain),
                    "gain_ci95": _round(ci),
                }
            )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    methods = order_values(frame.method, [REFERENCE])
    rank = {name: i for i, name in enumerate(methods)}
    column = {name: i for i, name in enumerate(backbones)}
    keys = [(rank[m], s, column[b]) for m, s, b in zip(frame.method, frame.source, frame.backbone)]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)].reset_index(drop=True)


def _covers(kind: TableKind, wide: pd.DataFrame, method: str, source: str, dataset: str) -> tuple[str, ...]:
    """The datasets a headline averages: those of the `average` row, or the one dataset it is read on."""
    return tuple(sorted(kind.covered(wide, method, source))) if dataset == AVERAGE else (dataset,)


def _cell(row: Any) -> str:
    """`value ± ci95 (gain ± gain_ci95)`; n/a for a number the method cannot make."""
    if pd.isna(row.value):
        return "n/a"
    text = f"{row.value:.2f}" + ("" if pd.isna(row.ci95) else f" ± {row.ci95:.2f}")
    if row.method == REFERENCE:
        return text
    gain = (
        "n/a"
        if pd.isna(row.gain)
        else f"{row.gain:+.2f}" + ("" if pd.isna(row.gain_ci95) else f" ± {row.gain_ci95:.2f}")
    )
    return f"{text} ({gain})"


def _per_source(kind: TableKind) -> bool:
    """Whether the headline is one number per training source (transfer), so rows show their source."""
    return kind.headline[1] is None


def markdown_matrix(protocol: str, matrix: pd.DataFrame, *, profile: str | None = None) -> str:
    """The Markdown matrix: methods as rows, backbones as columns, `value ± ci95 (gain ± gain_ci95)` per cell."""
    from benchmark.registry import PROTOCOLS

    owner = PROTOCOLS.get(protocol)
    kind: TableKind = owner.table
    name = owner.leaderboard_name
    lines = [f"# Backbone x method matrix: {owner.title} (`{owner.name}`)", ""]
    lines += [
        f"Generated by `python -m benchmark leaderboard --matrix` (profile {profile or 'any'}); do not edit. "
        f"Numbers are the CSV `matrix_{name}.csv`, in percent.",
        "",
    ]
    if matrix.empty:
        return "\n".join([*lines, "No finished runs yet.", ""])
    backbones = list(dict.fromkeys(matrix.backbone))
    keys = ["source", "method"] if _per_source(kind) else ["method"]
    head = [*keys, *backbones]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells = {(r.method, r.source, r.backbone): _cell(r) for r in matrix.itertuples(index=False)}
    for method, source in dict.fromkeys(zip(matrix.method, matrix.source)):
        row = [source, method] if _per_source(kind) else [method]
        lines.append("| " + " | ".join(row + [cells.get((method, source, b), "–") for b in backbones]) + " |")
    lines += [
        "",
        f"Each cell: the {kind.headline[2]} of the method on that backbone, the headline number of "
        f"`leaderboard_{name}.csv` read on its `average` row (or on the only dataset run), ± the Student-t 95% "
        "half-width t(0.975, n-1)·s/√n of its per-seed values; in brackets the gain over zero-shot CLIP "
        f"(`{REFERENCE}`) on the same backbone ± the 95% half-width of the per-seed differences, paired by seed "
        "(zero-shot runs once: its value is subtracted from every seed). No ±: one seed. n/a: a number the "
        "method cannot make, or (as a gain) no zero-shot run on that backbone covering the same datasets. "
        "–: not run on that backbone. Rows are labels without their backbone mark (the CSV's `label` has it).",
        "",
        "Datasets behind each column: "
        + "; ".join(f"{b}: {_coverage(matrix[matrix.backbone == b])}" for b in backbones)
        + ".",
        "",
    ]
    return "\n".join(lines)


def _coverage(rows: pd.DataFrame) -> str:
    covers = sorted(set(rows.covers))
    return covers[0].replace(";", ", ") if len(covers) == 1 else "differs by method (the CSV's `covers`)"


def matrix_figure(kind: TableKind, matrix: pd.DataFrame, title: str):
    """Grouped bars of the headline per method, one bar per backbone, Student-t 95% intervals over seeds."""
    shown = matrix[matrix.value.notna()]
    rows = list(dict.fromkeys(zip(shown.method, shown.source)))
    backbones = list(dict.fromkeys(matrix.backbone))
    fig = new_figure(max(5.0, 0.5 * len(rows) * len(backbones) + 2), 4.2)
    ax = fig.subplots()
    width = 0.8 / max(len(backbones), 1)
    for j, backbone in enumerate(backbones):
        xs, ys, errs = [], [], []
        for i, key in enumerate(rows):
            row = shown[(shown.method == key[0]) & (shown.source == key[1]) & (shown.backbone == backbone)]
            if len(row):
                xs.append(i + (j - (len(backbones) - 1) / 2) * width)
                ys.append(float(row.value.iloc[0]))
                errs.append(float(row.ci95.fillna(0.0).iloc[0]))
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=backbone)
    names = [f"{m}\n({s})" if _per_source(kind) and s else m for m, s in rows]
    ax.set_xticks(range(len(rows)), names, fontsize=7, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{kind.headline[2]} (%)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, title="backbone", title_fontsize=7, loc="best")
    fig.suptitle(f"{title}: {kind.headline[2]} per backbone (error bars: 95% interval over seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def matrix_paths(out_dir: Path, protocol: str) -> list[Path]:
    """`matrix_<protocol>.csv`, `.md` and `.png` in `out_dir`."""
    from benchmark.registry import PROTOCOLS

    name = PROTOCOLS.get(protocol).leaderboard_name
    return [Path(out_dir) / f"matrix_{name}.{ext}" for ext in ("csv", "md", "png")]


def write_matrix(
    protocol: str, long: pd.DataFrame, out_dir: Path, *, profile: str | None = None, order: Iterable[str] = ()
) -> list[Path]:
    """Write `matrix_<protocol>.csv`, `.md` and `.png` from a long table (see `matrix_table`)."""
    from benchmark.plan.profiles import get_profile
    from benchmark.registry import PROTOCOLS
    from benchmark.results.leaderboard import write_atomic

    owner = PROTOCOLS.get(protocol)
    default = get_profile(profile).backbone if profile else None
    matrix = matrix_table(owner.name, long, order, default_backbone=default)
    csv, md, png = matrix_paths(out_dir, owner.name)
    write_atomic(matrix, csv)
    text = markdown_matrix(owner.name, matrix, profile=profile)
    replace_atomically(md, lambda tmp: Path(tmp).write_text(text))
    if matrix.value.notna().any():
        fig = matrix_figure(owner.table, matrix, owner.title)
    else:
        fig = new_figure(5, 2)
        fig.text(0.5, 0.5, f"{owner.name}: no finished runs yet", ha="center", va="center")
    replace_atomically(png, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return [csv, md, png]
