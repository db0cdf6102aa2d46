"""Text and JSON renderings of `data check` reports (`benchmark.data.check`); strings only, no printing.

Text: a table (one row per dataset), then per dataset with anything to say, each problem kind
(`error:`) and each note (`note:`) with its first offending items (`path: reason`) and how many more
there are. JSON: one document with the same content, for machines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from benchmark.data.check import CheckReport, Problem

HEADER = ("dataset", "classes", "train", "val", "test", "canonical", "images", "problems", "notes")


def summary(findings: Sequence[Problem]) -> str:
    """`kind: count` of each finding (count: offending items), e.g. `missing: 2; unreadable: 1`."""
    return "; ".join(f"{f.kind}: {f.count}" for f in findings)


def _row(report: CheckReport) -> tuple[str, ...]:
    counts = [str(report.counts.get(s, "-")) for s in ("train", "val", "test")]
    images = "skipped" if report.images_checked is None else str(report.images_checked)
    problems = summary(report.problems) or "ok"
    classes = "-" if report.classes is None else str(report.classes)
    return (report.name, classes, *counts, report.split, images, problems, str(len(report.notes)))


def _lines(label: str, finding: Problem) -> list[str]:
    lines = [f"  {label}: {finding.message}"]
    lines += [f"    {where}: {reason}" for where, reason in finding.items]
    if finding.more:
        lines.append(f"    ... and {finding.more} more")
    return lines


def render_text(reports: Sequence[CheckReport]) -> list[str]:
    """The table, then every problem and note of each dataset with its items (lines for stdout)."""
    rows = [HEADER, *(_row(r) for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for report in reports:
        if not report.problems and not report.notes:
            continue
        lines += ["", f"{report.name} ({report.folder})"]
        for problem in report.problems:
            lines += _lines("error", problem)
        for note in report.notes:
            lines += _lines("note", note)
    return lines


def error_lines(reports: Sequence[CheckReport]) -> list[str]:
    """One line per dataset with a problem, for stderr."""
    return [f"error: {r.name}: {summary(r.problems)}" for r in reports if r.problems]


def _finding(finding: Problem) -> dict:
    return {
        "kind": finding.kind,
        "count": finding.count,
        "message": finding.message,
        "items": [{"item": where, "reason": reason} for where, reason in finding.items],
        "more": finding.more,
    }


def render_json(reports: Sequence[CheckReport], *, profile: str, data_root: str, strict: bool) -> str:
    """One JSON document: the options, whether all passed, and per dataset its counts, status and findings."""
    datasets = [
        {
            "name": r.name,
            "folder": r.folder,
            "classes": r.classes,
            "counts": r.counts,
            "canonical": r.split,
            "images_checked": r.images_checked,
            "ok": r.ok,
            "problems": [_finding(p) for p in r.problems],
            "notes": [_finding(n) for n in r.notes],
        }
        for r in reports
    ]
    document = {
        "profile": profile,
        "data_root": data_root,
        "strict": strict,
        "ok": all(r.ok for r in reports),
        "datasets": datasets,
    }
    return json.dumps(document, indent=2)
