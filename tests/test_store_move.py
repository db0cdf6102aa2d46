"""A store folder (`mlflow.db` + `mlartifacts/`) can be moved, copied or unpacked and still read its own artifacts."""

import atexit
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from mlflow.tracking._tracking_service.utils import _artifact_repos_cache

from benchmark.run import store
from benchmark.run.store import relocate_artifacts
from benchmark.run.tracking import Tracker


def store_with_a_run(folder):
    """A store at `folder` holding one b2n run whose `results.json` artifact says where it was written."""
    folder.mkdir()
    return store_with_a_run_at(folder)


_EMPTY: list = []  # one freshly migrated store, copied for each test (migrating one takes seconds)


def store_with_a_run_at(folder):
    folder.mkdir(parents=True, exist_ok=True)
    if not _EMPTY:
        scratch = tempfile.mkdtemp()
        atexit.register(shutil.rmtree, scratch, True)
        template = Path(scratch) / "empty.db"
        Tracker(f"sqlite:///{template}")
        _EMPTY.append(template)
    shutil.copy(_EMPTY[0], folder / "mlflow.db")
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


def test_a_store_kept_under_a_folder_named_mlartifacts_is_not_taken_for_moved(tmp_path):
    folder = tmp_path / "mlartifacts" / "stores" / "s1"
    run_id = store_with_a_run_at(folder)
    before = _locations(folder / "mlflow.db")
    assert relocate_artifacts(f"sqlite:///{folder / 'mlflow.db'}") == 0
    assert _locations(folder / "mlflow.db") == before and _read(folder, run_id) == "s1"


def test_a_path_with_a_hash_is_relocated_in_place(tmp_path):
    run_id = store_with_a_run(tmp_path / "old")
    moved = tmp_path / "run #1"  # a SQLite URI built by hand would end the file name at `#`
    (tmp_path / "old").rename(moved)
    assert relocate_artifacts(f"sqlite:///{moved / 'mlflow.db'}") == 2  # the experiment and its run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run #1"]  # no stray database from a cut-off name
    assert _read(moved, run_id) == "old"


def test_a_database_copied_without_its_artifacts_keeps_reading_the_originals(tmp_path, caplog):
    run_id = store_with_a_run(tmp_path / "original")
    (tmp_path / "lone").mkdir()
    shutil.copy(tmp_path / "original" / "mlflow.db", tmp_path / "lone" / "mlflow.db")
    _artifact_repos_cache.clear()
    assert _read(tmp_path / "lone", run_id) == "original"
    assert "has no mlartifacts/ beside it and keeps reading" in caplog.text


def test_server_artifact_locations_are_left_alone(tmp_path):
    folder = tmp_path / "old"
    store_with_a_run(folder)
    with sqlite3.connect(folder / "mlflow.db") as connection:
        connection.execute("update experiments set artifact_location = 'mlflow-artifacts:/1'")
        connection.execute("update runs set artifact_uri = 'mlflow-artifacts:/1/r/artifacts'")
    (tmp_path / "old").rename(tmp_path / "new")
    assert relocate_artifacts(f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}") == 0
    assert set(_locations(tmp_path / "new" / "mlflow.db")) == {"mlflow-artifacts:/1", "mlflow-artifacts:/1/r/artifacts"}
