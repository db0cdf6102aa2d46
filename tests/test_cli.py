import json

import pytest

from benchmark.cli.main import main

BAD_INPUTS = [
    (["run", "--methods", "cop", "--dry-run"], "unknown method 'cop'; did you mean 'coop'"),
    (["run", "--protocol", "b2m", "--dry-run"], "unknown protocol 'b2m'"),
    (["run", "--datasets", "patternet", "--dry-run"], "unknown world dataset 'patternet'"),
    (["run", "--methods", "coop", "--set", "n_cxt=4", "--dry-run"], "n_cxt"),
    (["run", "--methods", "coop", "--set", "n_ctx=four", "--dry-run"], "n_ctx='four': expected int"),
    (["run", "--set", "nonsense", "--dry-run"], "--set expects key=value"),
    (["run", "--seeds", "1,x", "--dry-run"], "--seeds expects comma-separated integers"),
    (["run", "--shots", "0", "--dry-run"], "shots must be positive integers, got 0"),
    (["run", "--profile", "papr", "--dry-run"], "unknown profile 'papr'"),
    (["run", "--methods", "coop", "--preset", "paprr", "--dry-run"], "unknown preset 'paprr'; did you mean 'paper'"),
    (["run", "--executor", "slurm"], "unknown executor 'slurm'"),
    (["run", "--bogus-flag"], "unrecognized arguments"),
    (["run", "--tracking-uri", "./mlruns"], "file store is not supported"),
    (["parity", "/nonexistent/fixture.pt"], "parity fixture not found"),
    (["world", "build", "extra"], "world build takes no arguments, got: extra"),
    (["list", "methods", "--profile", "bogus"], "unknown profile 'bogus'"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(argv, message, isolated, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_list_prints_every_kind(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("coop", "zeroshot", "b2n", "base2new", "patternnetv2"):
        assert word in out


def test_dry_run_prints_cells_with_class_lists(world_env, capsys):
    assert main(["run", "--methods", "coop,zeroshot", "--protocol", "base2new", "--seeds", "1,2", "--dry-run"]) == 0
    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(cells) == 4 * 2 + 4  # coop: 4 datasets x 2 seeds; zero-shot: once per dataset
    for cell in cells:
        for key in ("method", "protocol", "dataset", "seed", "shots", "run_key", "base_classes", "new_classes"):
            assert key in cell
        assert cell["protocol"] == "b2n"
        trained = cell["method"] == "coop"
        assert (cell["shots"], cell["selection"]) == ((16, "last") if trained else (0, "none"))
        assert cell["seed"] in ((1, 2) if trained else (0,))
        assert cell["preset"] == ("world_ctxv1" if trained else "paper")  # CoOp's b2n default: the ctxv1 model
    from benchmark.world import WORLD_DATASETS

    first = next(c for c in cells if c["dataset"] == "patternnet")
    names = list(WORLD_DATASETS["patternnet"].classnames)
    half = (len(names) + 1) // 2
    assert first["base_classes"] == names[:half] and first["new_classes"] == names[half:]
    assert len({c["run_key"] for c in cells}) == len(cells)
    assert not (world_env / "mlflow.db").exists()


def test_overrides_are_typed_and_scoped(world_env, capsys):
    argv = [
        "run",
        "--methods",
        "coop,zeroshot",
        "--datasets",
        "rsicd",
        "--seeds",
        "1",
        "--dry-run",
        "--set",
        "coop.n_ctx=4",
        "--set",
        "train.epochs=3",
    ]
    assert main(argv) == 0
    cells = {c["method"]: c for c in map(json.loads, capsys.readouterr().out.splitlines())}
    assert cells["coop"]["method_config"]["n_ctx"] == 4 and cells["coop"]["train_config"]["epochs"] == 3
    assert cells["coop"]["label"] == "coop[n_ctx=4, train.epochs=3]"  # readable: the overrides themselves
    assert cells["zeroshot"]["label"] == "zeroshot"  # training settings do not apply to zero-shot


def test_repeated_seeds_and_datasets_are_planned_once(world_env, capsys):
    argv = ["run", "--methods", "coop", "--datasets", "rsicd,rsicd", "--seeds", "1,2,1", "--dry-run"]
    assert main(argv) == 0
    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["dataset"], c["seed"]) for c in cells] == [("rsicd", 1), ("rsicd", 2)]


def test_a_config_that_cannot_transfer_is_planned_and_its_unseen_cells_read_n_a(world_env, capsys):
    # class-specific context has no vectors for unseen classes: the sweep runs, and the protocol records
    # those evaluations as n/a (tests/test_not_applicable.py checks the n/a rows of a finished run)
    for protocol in ("dg", "xd", "b2n"):
        assert main(["run", "--methods", "coop", "--preset", "paper_csc", "--protocol", protocol, "--dry-run"]) == 0


def test_world_build_help_prints_help_and_builds_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as done:
        main(["world", "--help"])
    assert done.value.code == 0 and "world build" in capsys.readouterr().out
    assert main(["world", "build", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: benchmark world build")
    assert not (tmp_path / "cache").exists()  # nothing generated


def test_data_commands_default_to_the_world_profile_without_a_dataset_root(world_env, monkeypatch, capsys):
    """As the README writes it, on a fresh machine: no --profile, no --data-root."""
    monkeypatch.delenv("BENCHMARK_DATA", raising=False)
    assert main(["data", "shots", "--datasets", "patternnet", "--seed", "1", "--shots", "1"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["dataset"] == "patternnet" and len(record["train"]) == 20  # one image per class of the world set


def test_names_match_in_any_case_with_the_same_run_keys(world_env, capsys):
    """`CoCoOp`, `RSICD`, `B2N` as the README spells them plan exactly the cells of their lower-case names."""
    base = ["run", "--seeds", "1", "--dry-run"]
    assert main([*base, "--methods", "CoCoOp", "--datasets", "RSICD", "--protocol", "B2N", "--profile", "World"]) == 0
    upper = [json.loads(line)["run_key"] for line in capsys.readouterr().out.splitlines()]
    assert main([*base, "--methods", "cocoop", "--datasets", "rsicd", "--protocol", "b2n"]) == 0
    lower = [json.loads(line)["run_key"] for line in capsys.readouterr().out.splitlines()]
    assert upper == lower and len(upper) == 1
    assert main(["run", "--methods", "CoCop", "--dry-run"]) == 2
    assert "did you mean 'cocoop'" in capsys.readouterr().err


def test_verbose_is_accepted_after_the_subcommand(capsys):
    assert main(["list", "protocols", "-v"]) == 0
    assert main(["-v", "list", "protocols"]) == 0
    assert main(["list", "methods", "--verbose"]) == 0
    assert "coop" in capsys.readouterr().out


def test_dry_run_validates_the_executor_and_marks_finished_cells(world_env, capsys):
    dry = ["run", "--methods", "zeroshot", "--datasets", "mlrsnet,rsicd", "--dry-run"]
    assert main([*dry, "--executor", "slurm"]) == 2
    assert "unknown executor 'slurm'" in capsys.readouterr().err
    assert main(dry) == 0
    assert [json.loads(line)["finished"] for line in capsys.readouterr().out.splitlines()] == [False, False]
    assert not (world_env / "mlflow.db").exists()  # a dry run creates no store
    assert main(["run", "--methods", "zeroshot", "--datasets", "mlrsnet", "--quiet"]) == 0
    capsys.readouterr()
    assert main(dry) == 0
    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["dataset"], c["finished"]) for c in cells] == [("mlrsnet", True), ("rsicd", False)]


@pytest.mark.slow
def test_ui_shows_a_moved_stores_artifacts_and_sigterm_leaves_no_server_process(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from test_store_move import store_with_a_run

    from benchmark.run.server import free_port, healthy

    run_id = store_with_a_run(tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / "moved")  # the UI reads the artifacts at the store's new place
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    store = f"sqlite:///{tmp_path / 'moved' / 'mlflow.db'}"
    argv = [sys.executable, "-m", "benchmark", "ui", "--port", str(port), "--tracking-uri", store]
    ui = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not healthy(f"http://127.0.0.1:{port}", timeout=1.0):
            assert ui.poll() is None and time.monotonic() < deadline, ui.communicate()[1][-2000:]
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/get-artifact?path=results.json&run_uuid={run_id}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.loads(answer.read()) == {"written_in": "old"}
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(ui.pid)], capture_output=True, text=True)
        (server,) = [int(pid) for pid in children.stdout.split()]  # the mlflow CLI, leader of its own group
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(60) == 130
    finally:
        if ui.poll() is None:
            ui.kill()
    time.sleep(1.0)
    with pytest.raises(ProcessLookupError):
        os.killpg(server, 0)  # not one process of the server's group is left
    assert not healthy(f"http://127.0.0.1:{port}", timeout=1.0)


def test_list_presets_marks_the_default_and_columns_align(capsys):
    assert main(["list", "presets", "CoOp"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert any(row.split()[:3] == ["coop", "world_ctxv1", "*"] for row in rows)
    starts = {row.index(row.split("  ")[-1].strip()) for row in rows}  # where each row's source begins
    assert len(starts) == 1
    assert main(["list", "datasets", "--profile", "paper"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len({row.index(" classes") - len(row.split()[-2]) for row in rows if "classes" in row.split()[-1]}) == 1


def _parsers(parser=None, path=()):
    """(subcommand path, parser) for every subcommand of the CLI, nested ones included."""
    import argparse

    from benchmark.cli.main import build_parser

    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join((*path, name)), child
                yield from _parsers(child, (*path, name))


def test_every_subcommand_help_ends_with_an_example():
    helps = dict(_parsers())
    assert {"run", "leaderboard", "compare", "data check", "ui", "world", "list", "tune"} <= set(helps)
    missing = [name for name, parser in helps.items() if "example" not in (parser.epilog or "")]
    assert not missing, f"no example in the help of: {missing}"


def test_every_option_and_argument_has_help_text():
    bare = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _parsers()
        for action in parser._actions
        if not action.help and action.dest != "help" and type(action).__name__ != "_SubParsersAction"
    ]
    assert not bare


def test_log_lines_go_through_the_progress_bar_writer_on_a_terminal(monkeypatch):
    import logging
    import sys

    from benchmark.cli import main as cli

    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        cli._configure_logging(verbose=False, quiet=False)
        assert [type(h).__name__ for h in root.handlers] == ["_BarSafeHandler"]
        writes = []
        monkeypatch.setattr("tqdm.tqdm.write", lambda text, file=None: writes.append(text))
        logging.getLogger("benchmark.test").warning("above the bar")
        assert writes and writes[0].endswith("WARNING benchmark.test: above the bar")
    finally:
        root.handlers = saved


def test_quiet_or_a_log_file_turns_the_hugging_face_bars_off(world_env, monkeypatch, capsys):
    """`--quiet` (or output to a file) also silences transformers' "Loading weights" bar, in workers too."""
    import os
    import subprocess
    import sys

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    assert main(["run", "--methods", "zeroshot", "--datasets", "mlrsnet", "--dry-run", "--quiet"]) == 0
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    probe = "from transformers.utils import logging; print(logging.is_progress_bar_enabled())"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ))
    assert child.stdout.strip() == "False"  # what a worker inherits
