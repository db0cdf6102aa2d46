"""What each leaderboard label ran: its preset, overrides and resolved configuration, from MLflow params.

A label such as `coop[epochs=2]` or `coop[world_ctxv1+3fa9c2d1]` names what departs from the defaults, in
short or as a hash (`benchmark.plan.sweep.variant_mark`). The Markdown leaderboard spells every label
out in full here, so a reader never needs the store to know what a row ran. The same facts are written as
`configs_<protocol>.csv` (label, key, value) beside `runs_<protocol>.csv`, so that a leaderboard rebuilt from
the committed CSVs alone (`leaderboard --from-runs`) is byte-identical to the one built from the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SECTIONS = (("method", "method"), ("train", "training"))  # param prefix, its name in the legend


@dataclass
class LabelConfig:
    """The union of a label's runs' configurations; a key with several values lists each."""

    method: str
    values: dict[str, set[str]] = field(default_factory=dict)

    def add(self, key: str, value: str) -> None:
        """Record one run's value of a key."""
        self.values.setdefault(key, set()).add(value)

    def shown(self, key: str) -> str:
        """The value(s) of a key, `a | b` where the label's runs differ (a per-dataset preset); `''` is empty."""
        values = sorted(self.values.get(key, ()), key=_natural)
        return " | ".join(value or "''" for value in values) or "-"

    def keys(self, prefix: str) -> list[str]:
        """The recorded keys of one section (`method`, `train`), sorted."""
        return sorted(k for k in self.values if k.startswith(prefix + "."))


def _natural(value: str) -> tuple[int, float, str]:
    """Numbers by value (1, 2, 16 shots), then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def label_configs(runs: Iterable, long: pd.DataFrame) -> dict[str, LabelConfig]:
    """The configurations of the labels of a long table, read from the runs it was built from.

    `runs`: the store's finished runs (`benchmark.run.tracking.FinishedRun`: run_id, tags, params).

    Only runs whose rows the long table kept count: an older run superseded by a newer one of the
    same label (`benchmark.results.leaderboard.long_rows`) does not add its configuration.
    """
    kept = set(long.run_id)
    configs: dict[str, LabelConfig] = {}
    for run in runs:
        if run.run_id not in kept:
            continue
        tags = run.tags
        label = tags.get("label", tags["method"])
        config = configs.setdefault(label, LabelConfig(tags["method"]))
        config.add("backbone", tags.get("backbone", "-"))
        config.add("shots", tags.get("shots", "-"))
        plugin = tags.get("numerics", "").partition(";plugin=")[2]  # `RunSpec.numerics_label`
        if plugin:
            config.add("plugin", plugin)
        overrides = sorted((k.removeprefix("override."), v) for k, v in run.params.items() if k.startswith("override."))
        config.add("overrides", ", ".join(f"{k}={v}" for k, v in overrides) or "none")
        for key, value in run.params.items():
            if key == "preset" or key.startswith(tuple(prefix + "." for prefix, _ in SECTIONS)):
                config.add(key, value)
    return configs


CSV_COLUMNS = ("label", "key", "value")


def configs_frame(configs: dict[str, LabelConfig]) -> pd.DataFrame:
    """The configurations as rows (label, key, value), one per distinct value; the method is key `method`."""
    rows = []
    for label in sorted(configs):
        config = configs[label]
        rows.append((label, "method", config.method))
        for key in sorted(config.values):
            rows += [(label, key, value) for value in sorted(config.values[key], key=_natural)]
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def read_configs(path: Path) -> dict[str, LabelConfig]:
    """The configurations written by `configs_frame` (every value read as text, the empty string included).

    Raises:
        ValueError: the file lacks the columns, or a label has no method row.
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != CSV_COLUMNS:
        raise ValueError(f"{path}: expected the columns {', '.join(CSV_COLUMNS)}")
    configs: dict[str, LabelConfig] = {}
    for label, group in frame.groupby("label", sort=False):
        methods = group.value[group.key == "method"].tolist()
        if len(methods) != 1:
            raise ValueError(f"{path}: label {label!r} needs exactly one method row")
        config = LabelConfig(methods[0])
        for row in group[group.key != "method"].itertuples(index=False):
            config.add(row.key, row.value)
        configs[str(label)] = config
    return configs


def markdown_configs(configs: dict[str, LabelConfig], order: Iterable[str] = ()) -> list[str]:
    """The Markdown legend of the labels: one entry per label, in `order` (the table's), then the rest."""
    if not configs:
        return []
    labels = [label for label in dict.fromkeys(order) if label in configs]
    labels += sorted(set(configs) - set(labels))
    lines = [
        "## Configurations",
        "",
        "What each label ran, from its runs' MLflow params: the preset, the `--set` overrides, and the resolved "
        "method and training configuration they produce. A key whose value differs between a label's runs "
        "(a per-dataset preset) lists each value.",
        "",
    ]
    for label in labels:
        config = configs[label]
        head = (
            f"- {_code(label)}: method {_code(config.method)}, preset {_code(config.shown('preset'))}, "
            f"overrides {_code(config.shown('overrides'))}, backbone {_code(config.shown('backbone'))}, "
            f"{config.shown('shots')} shots"
        )
        if "plugin" in config.values:
            head += f", plugin {_code(config.shown('plugin'))}"
        lines.append(head + ".")
        for prefix, title in SECTIONS:
            keys = config.keys(prefix)
            if keys:
                items = ", ".join(f"{k.removeprefix(prefix + '.')}={config.shown(k)}" for k in keys)
                lines.append(f"  {title}: {_code(items)}.")
    return [*lines, ""]


def _code(text: str) -> str:
    """`text` as a Markdown code span that survives any value: newlines written out, backticks fenced."""
    text = text.replace("\n", "\\n")
    return f"`` {text} ``" if "`" in text else f"`{text}`"
