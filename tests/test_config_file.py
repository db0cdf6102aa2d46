"""`run --config FILE.yaml`: typed keys, both spellings, flags override the file."""

import json

import pytest

from benchmark.cli.config_file import load_run_config, merge
from benchmark.cli.main import build_parser, main
from benchmark.cli.run import _RUN_OPTIONS
from benchmark.errors import UsageError

build_parser()  # fills the run option table


def _load(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_run_config(path, _RUN_OPTIONS)


def test_values_come_back_in_command_line_form(tmp_path):
    config = _load(
        tmp_path,
        "methods: [coop, zeroshot]\nseeds: [1, 2]\nshots: 4\nworkers: 2\ndata-root: /data\nforce: true\n"
        "set: {coop.n_ctx: 4, lr: .nan, csc: false, ctx_init: null}\npreset: {coop: paper}\n",
    )
    assert config == {
        "methods": "coop,zeroshot",
        "seeds": "1,2",
        "shots": "4",
        "workers": "2",
        "data_root": "/data",
        "force": True,
        "overrides": ["coop.n_ctx=4", "lr=nan", "csc=false", "ctx_init=none"],
        "preset": ["coop=paper"],
    }


def test_both_spellings_and_an_empty_file(tmp_path):
    assert _load(tmp_path, "tracking_uri: sqlite:///x.db\n") == {"tracking_uri": "sqlite:///x.db"}
    assert _load(tmp_path, "tracking-uri: sqlite:///x.db\n") == {"tracking_uri": "sqlite:///x.db"}
    assert _load(tmp_path, "") == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("data_root: a\ndata-root: b\n", "given twice"),
        ("shots: 1.5\n", "'shots' expects an integer"),
        ("force: yes please\n", "'force' expects true or false"),
        ("methods: {coop: 1}\n", "'methods' expects a name"),
        ("set: {a: {b: 1}}\n", "'set' expects a mapping"),
        ("config: other.yaml\n", "unknown run option 'config'"),
        ("!!python/object:os.system {}\n", "invalid YAML"),  # safe_load refuses Python objects
    ],
)
def test_bad_files_name_the_key(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        _load(tmp_path, text)


def test_merge_flags_win_and_lists_concatenate():
    defaults = {"seeds": "1,2,3", "overrides": [], "force": False}
    merged = merge({"seeds": "1", "overrides": ["n_ctx=4"]}, {"seeds": "5", "overrides": ["n_ctx=8"]}, defaults)
    assert merged == {"seeds": "5", "overrides": ["n_ctx=4", "n_ctx=8"], "force": False}
    assert merge({}, {"seeds": None, "overrides": None, "force": None}, defaults) == defaults


def test_config_drives_a_dry_run_and_flags_override_it(world_env, capsys):
    (world_env / "sweep.yaml").write_text(
        "methods: [coop, zeroshot]\ndatasets: rsicd\nseeds: [1, 2]\nset:\n  coop.n_ctx: 4\n  train.epochs: 3\n"
    )
    assert main(["run", "--config", "sweep.yaml", "--seeds", "3", "--set", "coop.n_ctx=8", "--dry-run"]) == 0
    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(c["method"], c["seed"]) for c in cells} == {("coop", 3), ("zeroshot", 0)}  # zero-shot: one run
    coop = next(c for c in cells if c["method"] == "coop")
    assert coop["method_config"]["n_ctx"] == 8 and coop["train_config"]["epochs"] == 3
