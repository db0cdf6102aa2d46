"""A store folder (`mlflow.db` + `mlartifacts/`) can be moved, copied or unpacked and still read its own artifacts."""

import json
import shutil
import sqlite3

from mlflow.tracking._tracking_service.utils import _artifact_repos_cache

from benchmark.run import store
from benchmark.run.store import relocate_artifacts
from benchmark.run.tracking import Tracker


def store_with_a_run(folder):
    """A store at `folder` holding one b2n run whose `results.json` artifact says where it was written."""
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = Tracker(uri)
    run = tracker.client.create_run(tracker.experiment_id("b2n"), tags={"kind": "cell"})
    tracker.client.log_text(run.info.run_id, json.dumps({"written_in": folder.name}), "results.json")
    tracker.client.set_terminated(run.info.run_id)
    return run.info.run_id


def _locations(db):
    with sqlite3.connect(db) as connection:
        experiments = [r[0] for r in connection.execute("select artifact_location from experiments where name='b2n'")]
        runs = [r[0] for r in connection.execute("select artifact_uri from runs")]
    return experiments + runs


def _read(folder, run_id):
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}")
    path = tracker.client.download_artifacts(run_id, "results.json", str(folder.parent / f"out-{folder.name}"))
    return json.loads(open(path).read())["written_in"]


def test_a_moved_store_reads_its_artifacts_from_its_new_place(tmp_path):
    run_id = store_with_a_run(tmp_path / "old")
    (tmp_path / "archive").mkdir()
    moved = tmp_path / "archive" / "new"
    shutil.move(tmp_path / "old", moved)
    assert all("/old/mlartifacts/" in location for location in _locations(moved / "mlflow.db"))
    assert _read(moved, run_id) == "old"  # opening it rewrote the locations: the artifact is found
    here = (moved / "mlartifacts").resolve().as_uri()
    assert all(location.startswith(here + "/") for location in _locations(moved / "mlflow.db"))
    assert relocate_artifacts(f"sqlite:///{moved / 'mlflow.db'}") == 0  # already in place: nothing to do


def test_a_copied_store_writes_its_own_folder_and_leaves_the_original_alone(tmp_path):
    run_id = store_with_a_run(tmp_path / "original")
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    _artifact_repos_cache.clear()  # MLflow caches each run's artifact folder per process: be a later command
    copy = Tracker(f"sqlite:///{tmp_path / 'copy' / 'mlflow.db'}")
    copy.client.log_text(run_id, "new", "later.txt")
    assert (tmp_path / "copy" / "mlartifacts" / "b2n" / run_id / "artifacts" / "later.txt").is_file()
    assert not (tmp_path / "original" / "mlartifacts" / "b2n" / run_id / "artifacts" / "later.txt").exists()
    assert all("/original/mlartifacts/" in location for location in _locations(tmp_path / "original" / "mlflow.db"))


def test_a_read_only_moved_store_is_left_as_it_is_with_a_warning(tmp_path, caplog, monkeypatch):
    store_with_a_run(tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / "new")
    db = tmp_path / "new" / "mlflow.db"
    before = _locations(db)
    connect = sqlite3.connect

    def read_only(database, *args, **kwargs):  # a read-only mount (chmod does not stop root, who runs CI)
        return connect(str(database).replace("mode=rw", "mode=ro"), *args, **kwargs)

    monkeypatch.setattr(store.sqlite3, "connect", read_only)
    assert relocate_artifacts(f"sqlite:///{db}") == 0
    monkeypatch.undo()
    assert _locations(db) == before
    assert "could not be rewritten" in caplog.text and "/old/mlartifacts" in caplog.text
