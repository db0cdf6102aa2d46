"""Hand-made finished runs for leaderboard, report and compare tests."""

from benchmark.run.tracking import FinishedRun


def finished(run_id: str, tags: dict, values: dict, end_time: int = 0) -> FinishedRun:
    """A FinishedRun whose `results.json` rows are `values`: {"acc_base": 80.0, "acc_all/T1": 55.0, ...}.

    The keys are written as MLflow metric names for brevity: `<metric>_<subset>`, evaluated on the
    run's own dataset, or on `/<dataset>`. Keys of other shapes (`lr`) are not result rows.
    """
    rows = []
    for key, value in values.items():
        name, _, eval_dataset = key.partition("/")
        metric, _, subset = name.partition("_")
        if metric == "acc":
            rows.append(
                {"eval_dataset": eval_dataset or tags["dataset"], "subset": subset, "metric": metric, "value": value}
            )
    return FinishedRun(run_id, tags, dict(values), end_time, results=rows)
