"""The example plugin (`examples/logit_temperature`), installed as a user would, reaches every part of the harness.

It is installed with pip into a folder of its own (put on PYTHONPATH; the environment under test is not
changed), then: its own tests run the harness's contract checks from `benchmark.testing`; `list` shows it;
`run` trains it, records its package and version in the run's tags and run_key; `--methods all` stays the
built-in methods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "logit_temperature"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory, world_cache):
    target = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-src")
    source = build / "logit_temperature"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)  # pip builds in place: keep the repo clean
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target)]
    subprocess.run([*pip, str(source)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}
    env.update(BENCHMARK_CACHE=str(world_cache), HF_HUB_OFFLINE="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    return env, source


def _benchmark(env, cwd, *argv):
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_plugins_own_tests_pass_with_the_harness_test_kit(plugin_env):
    env, source = plugin_env
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
        cwd=source, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "7 passed" in done.stdout  # the entry point, then the six contract checks


def test_the_plugin_is_listed_run_and_recorded_by_version(plugin_env, tmp_path):
    env, _ = plugin_env
    listed = _benchmark(env, tmp_path, "list", "methods")
    assert "logit_temperature" in listed.stdout and "the temperature of its logits" in listed.stdout
    both = _benchmark(env, tmp_path, "run", "--methods", "zeroshot,plugins", "--datasets", "mlrsnet", "--dry-run")
    assert list(dict.fromkeys(json.loads(line)["method"] for line in both.stdout.splitlines())) == [
        "zeroshot",
        "logit_temperature",
    ]

    argv = ["run", "--methods", "logit_temperature", "--datasets", "mlrsnet", "--seeds", "1", "--set", "epochs=1"]
    done = _benchmark(env, tmp_path, *argv, "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logit_temperature" in done.stdout  # its average row on screen
    from sweep_support import cells

    (cell,) = cells(tmp_path / "mlflow.db", "FINISHED")
    assert cell["method"] == "logit_temperature"
    assert cell["numerics"].endswith(";plugin=rs-bench-logit-temperature==0.1.0")  # a new release: new run_keys
