"""Paper-profile data: recorded facts, `data check`, `data shots`, generated splits and the paper dry-run."""

import hashlib
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import SHARED
from PIL import Image

from benchmark.cli.main import main
from benchmark.data.catalog import DatasetSpec, open_dataset
from benchmark.data.facts import FACTS_FILE, load_facts
from benchmark.data.generated_split import ensure_generated_split, split_counts
from benchmark.data.rs_datasets import PAPER_DATASETS
from benchmark.data.splits import parse_split, read_split, scan_split
from benchmark.errors import UsageError

SPLITS = SHARED / "splits"
# the RS scene datasets peers report on, with their class counts
PEER_DATASETS = {"eurosat": 10, "ucmerced": 21, "aid": 30, "whurs19": 19, "rsscn7": 7, "optimal31": 31, "rsicb256": 35}
needs_splits = pytest.mark.skipif(not (SPLITS / "patternnet.json").is_file(), reason="public split files not available")


def public(name: str) -> dict:
    return json.loads((SPLITS / f"{name}.json").read_text())


def copy_split(root: Path, name: str) -> Path:
    """Lay out `<root>/<Folder>/<name>.json` from the public file (no images)."""
    spec = PAPER_DATASETS[name]
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SPLITS / spec.split_file, folder / spec.split_file)
    return folder


def reduced_root(root: Path, name: str = "patternnetv2", per_subset: int = 1) -> Path:
    """A dataset holding `per_subset` items per class and subset of the public split, with 8x8 JPEGs."""
    spec = PAPER_DATASETS[name]
    source = public(name)
    split = {}
    for subset in ("train", "val", "test"):
        kept, seen = [], defaultdict(int)
        for path, label, classname in source[subset]:
            if seen[label] < per_subset:
                seen[label] += 1
                kept.append([path, label, classname])
        split[subset] = kept
    folder = root / spec.folder
    for items in split.values():
        for path, label, _ in items:
            target = folder / "images" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (label * 15 % 255, 120, 40)).save(target, "JPEG")
    (folder / spec.split_file).write_text(json.dumps(split))
    return folder


def run_cli(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# -- facts --------------------------------------------------------------------------------------
@needs_splits
def test_facts_match_the_public_files_and_their_checksums():
    sums = dict(line.split()[::-1] for line in (SPLITS / "SHA256SUMS").read_text().splitlines() if line.strip())
    facts = load_facts()
    assert set(facts) == set(PAPER_DATASETS)
    for name, fact in facts.items():
        spec = PAPER_DATASETS[name]
        if name == "mlrsnet":
            assert fact.sha256 is None and fact.classnames == () and not fact.known
            assert spec.canonical_sha256 is None and spec.classnames == ()
            continue
        if name in PEER_DATASETS:  # recorded from references, not derived from a file (tested below)
            assert not (SPLITS / fact.split_file).exists() and not fact.known
            continue
        path = SPLITS / fact.split_file
        assert fact.sha256 == sums[fact.split_file] == hashlib.sha256(path.read_bytes()).hexdigest()
        split = read_split(path)
        assert fact.classnames == split.classnames == spec.classnames
        assert fact.counts == {s: len(split.subset(s)) for s in ("train", "val", "test")}
        assert sum(fact.per_class["train"]) == fact.counts["train"]
        assert spec.canonical_sha256 == fact.sha256


def test_facts_file_holds_no_image_paths():
    text = FACTS_FILE.read_text()
    assert ".jpg" not in text and len(text) < 20_000


@needs_splits
def test_facts_file_is_what_the_builder_writes(tmp_path):
    from benchmark.data.facts.build import build_facts, write_facts

    out = write_facts(build_facts(SPLITS), tmp_path / "facts.json")
    assert out.read_bytes() == FACTS_FILE.read_bytes()


def test_published_class_orders_start_as_documented():
    facts = load_facts()
    if not facts["patternnet"].classnames:
        pytest.skip("facts not recorded")
    assert facts["patternnet"].classnames[:2] == ("oil_well", "runway")
    assert facts["rsicd"].classnames[0] == "center"
    assert len({facts[n].classnames for n in ("patternnetv2", "rsicdv2", "resisc45v2", "mlrsnetv2")}) == 1


def test_peer_datasets_are_listed_with_their_class_counts(capsys):
    code, out, _ = run_cli(capsys, ["list", "datasets", "--profile", "paper"])
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name, n in PEER_DATASETS.items():
        assert rows[name].endswith(f" {n} classes"), rows.get(name)


def test_peer_dataset_facts_are_recorded_with_their_source():
    from benchmark.data.facts.build import RECORDED, recorded_facts

    facts, data = load_facts(), json.loads(FACTS_FILE.read_text())["datasets"]
    assert set(RECORDED) == set(PEER_DATASETS)
    for name, n in PEER_DATASETS.items():
        fact, spec = facts[name], PAPER_DATASETS[name]
        assert data[name] == recorded_facts(name)  # the file is what the builder records
        assert len(fact.classnames) == len(set(fact.classnames)) == n
        assert fact.sha256 is None and not fact.known and spec.canonical_sha256 is None
        assert fact.source.startswith("recorded, not derived from a file") and fact.images > 0
        folders = fact.class_folders or fact.classnames
        assert list(folders) == sorted(folders)  # label order: the sorted class-folder order
        assert (spec.classnames, spec.class_folders) == (fact.classnames, fact.class_folders)


def test_eurosat_facts_are_coops_split():
    fact, spec = load_facts()["eurosat"], PAPER_DATASETS["eurosat"]
    assert (spec.folder, spec.image_dir, spec.split_file) == ("eurosat", "2750", "split_zhou_EuroSAT.json")
    assert fact.split_file == spec.split_file and fact.sha256 is None and not fact.known
    assert fact.counts == {"train": 13500, "val": 5400, "test": 8100}
    assert sum(fact.counts.values()) == fact.images == 27000
    assert len(fact.classnames) == len(fact.class_folders) == 10
    assert (fact.class_folders[0], fact.classnames[0]) == ("AnnualCrop", "Annual Crop Land")
    assert (fact.class_folders[9], fact.classnames[9]) == ("SeaLake", "Sea or Lake")


# -- canonical detection ------------------------------------------------------------------------
@needs_splits
def test_copied_public_split_is_canonical_and_modified_is_not(tmp_path, capsys):
    folder = copy_split(tmp_path, "patternnet")
    dataset = open_dataset(PAPER_DATASETS["patternnet"], tmp_path)
    assert dataset.canonical is True and dataset.split_status == "canonical"
    assert dataset.split_tags() == {"split_canonical": "yes", "split_generated": "no"}
    code, out, _ = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path), "--no-images"])
    assert code == 0
    assert out.splitlines()[1].split()[:6] == ["patternnet", "38", "14896", "6384", "9120", "yes"]

    data = public("patternnet")
    data["test"] = data["test"][:-1]  # one image fewer: the same format, a different split
    (folder / "patternnet.json").write_text(json.dumps(data))
    dataset = open_dataset(PAPER_DATASETS["patternnet"], tmp_path)
    assert dataset.canonical is False and dataset.split_status == "modified"
    assert dataset.split_tags()["split_canonical"] == "no"
    code, out, _ = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path), "--no-images"])
    assert code == 0
    assert out.splitlines()[1].split()[5] == "no"
    assert "  note: not the published split: the sha256 of patternnet.json differs" in out
    assert "  note: subset sizes differ from the published split\n    test: 9119 (published 9120)\n" in out


def test_unknown_digest_is_unknown(tmp_path):
    from conftest import write_dataset

    write_dataset(tmp_path)
    dataset = open_dataset(DatasetSpec("tiny", "Tiny", "tiny.json"), tmp_path)
    assert dataset.canonical is None and dataset.split_status == "unknown"
    assert dataset.split_tags() == {"split_canonical": "unknown", "split_generated": "no"}


# -- data check ---------------------------------------------------------------------------------
@needs_splits
def test_check_passes_on_a_complete_reduced_dataset(tmp_path, capsys):
    reduced_root(tmp_path)
    code, out, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path)])
    assert code == 0, err
    row = out.splitlines()[1].split()
    assert row == ["patternnetv2", "16", "16", "16", "16", "no", "48", "ok", "2"]
    assert "note: not the published split: the sha256 of patternnetv2.json differs" in out
    assert "train: 16 (published " in out  # the counts note


def _fail(capsys, root, *extra, dataset="patternnetv2"):
    """Run `data check` expecting exit 2: (stdout, the single stderr line)."""
    code, out, err = run_cli(capsys, ["data", "check", "--data-root", str(root), "--datasets", dataset, *extra])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    return out, lines[0]


@needs_splits
def test_check_reports_missing_images(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    first, last = public("patternnetv2")["train"][0][0], public("patternnetv2")["test"][0][0]
    (folder / "images" / first).unlink()
    (folder / "images" / last).unlink()
    out, line = _fail(capsys, tmp_path)
    assert line == "error: patternnetv2: missing: 2"
    assert "  error: 2 listed images are missing\n" in out
    assert f"    {folder / 'images' / first}: does not exist\n    {folder / 'images' / last}: does not exist" in out


@needs_splits
def test_check_reports_corrupt_images(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    bad = public("patternnetv2")["val"][0][0]
    (folder / "images" / bad).write_bytes(b"not a jpeg at all")
    out, line = _fail(capsys, tmp_path)
    assert line == "error: patternnetv2: unreadable: 1"
    assert f"    {folder / 'images' / bad}: cannot identify image file\n" in out


@needs_splits
def test_check_reports_truncated_images_unless_quick(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    bad = folder / "images" / json.loads((folder / "patternnetv2.json").read_text())["test"][2][0]
    Image.effect_noise((64, 64), 40).convert("RGB").save(bad, "JPEG")
    bad.write_bytes(bad.read_bytes()[:-200])  # an interrupted copy: the header is intact
    out, line = _fail(capsys, tmp_path)
    assert line == "error: patternnetv2: truncated: 1"
    assert "  error: 1 listed image is truncated\n" in out and f"    {bad}: image file is truncated" in out
    argv = ["data", "check", "--data-root", str(tmp_path), "--quick"]
    assert run_cli(capsys, argv)[0] == 0  # header-only verification does not see it


@needs_splits
def test_check_reports_paths_escaping_the_root(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    data = json.loads((folder / "patternnetv2.json").read_text())
    data["test"][0][0] = "../../etc/passwd"
    (folder / "patternnetv2.json").write_text(json.dumps(data))
    out, line = _fail(capsys, tmp_path)
    assert line == "error: patternnetv2: escaping: 1"
    assert "    test[0]: path '../../etc/passwd' escapes the dataset root\n" in out
    assert out.splitlines()[1].split()[5:7] == ["?", "47"]  # the other listed images are still checked


@needs_splits
def test_class_name_mismatch_is_a_note_and_an_error_when_strict(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    data = json.loads((folder / "patternnetv2.json").read_text())
    for subset in data.values():
        for item in subset:
            if item[1] == 3:
                item[2] = "crossroads"  # published: intersection
    (folder / "patternnetv2.json").write_text(json.dumps(data))
    code, out, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path)])
    assert code == 0 and "error:" not in err  # `run` proceeds on it (tagged split_canonical=no)
    assert "  note: class names differ from the published split at 1 label(s)\n" in out
    assert "    label 3: 'crossroads', published 'intersection'\n" in out
    out, line = _fail(capsys, tmp_path, "--strict")
    assert line.startswith("error: patternnetv2: not published: 1; classes: 1")
    assert "  error: class names differ from the published split at 1 label(s)\n" in out


@needs_splits
def test_subsets_sharing_images_are_a_note(tmp_path, capsys):
    folder = reduced_root(tmp_path)
    data = json.loads((folder / "patternnetv2.json").read_text())
    data["test"] = [list(item) for item in data["val"]]  # the reference's PatternNet bug: test = val
    (folder / "patternnetv2.json").write_text(json.dumps(data))
    code, out, _ = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path)])
    assert code == 0 and "  note: 16 listed images are in two subsets\n" in out
    assert f"    {folder / 'images' / data['val'][0][0]}: in val and test\n" in out
    assert "    ... and 6 more\n" in out
    assert "overlap: 16" in _fail(capsys, tmp_path, "--strict")[1]


def two_class_patternnet(root: Path, per_class: int = 4) -> Path:
    """`<root>/PatternNet`: a sound split of 2 of PatternNet's 38 classes (half train, a quarter val and test)."""
    folder = root / "PatternNet"
    split = {"train": [], "val": [], "test": []}
    subsets = ["train"] * (per_class // 2) + ["val", "test"] * (per_class // 4)
    for label, name in enumerate(("airplane", "forest")):
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        for k, subset in enumerate(subsets):
            rel = f"{name}/{name}_{k:03d}.jpg"
            Image.new("RGB", (8, 8), (label * 90, 40, 20)).save(folder / "images" / rel, "JPEG")
            split[subset].append([rel, label, name])
    (folder / "patternnet.json").write_text(json.dumps(split))
    return folder


def test_sound_non_canonical_root_passes_with_notes(tmp_path, capsys):
    two_class_patternnet(tmp_path)
    argv = ["data", "check", "--data-root", str(tmp_path)]
    code, out, err = run_cli(capsys, argv)
    assert code == 0 and "error" not in err  # as `run`, which proceeds and tags the runs non-canonical
    assert out.splitlines()[1].split() == ["patternnet", "2", "4", "2", "2", "no", "8", "ok", "3"]
    assert "  note: not the published split: the sha256 of patternnet.json differs" in out
    assert "  note: 2 classes in the split file, the published split has 38\n" in out
    assert "    runway: not in the split file\n" in out and "    ... and 26 more\n" in out
    assert "    train: 4 (published 14896)\n" in out
    out, line = _fail(capsys, tmp_path, "--strict", dataset="patternnet")
    assert line == "error: patternnet: not published: 1; classes: 36; counts: 3"
    assert "  error: 2 classes in the split file, the published split has 38\n" in out


def test_check_names_every_problem_in_one_pass(tmp_path, capsys):
    folder = two_class_patternnet(tmp_path)
    corrupt = folder / "images" / "forest" / "forest_002.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    missing = folder / "images" / "airplane" / "airplane_003.jpg"
    missing.unlink()
    out, line = _fail(capsys, tmp_path, dataset="patternnet")
    assert line == "error: patternnet: missing: 1; unreadable: 1"
    assert f"  error: 1 listed image does not decode\n    {corrupt}: " in out
    assert f"  error: 1 listed image is missing\n    {missing}: does not exist\n" in out
    assert "  note: 2 classes in the split file, the published split has 38\n" in out


def test_check_lists_every_problem_of_a_split_file(tmp_path, capsys):
    folder = two_class_patternnet(tmp_path, per_class=8)
    data = json.loads((folder / "patternnet.json").read_text())
    data["train"].append(["../outside.jpg", 0, "airplane"])
    data["train"].append(["/etc/passwd", 1, "forest"])
    data["val"].append(["forest/forest_000.jpg", 1, "woods"])  # label 1 named twice
    data["test"].append(["beach/x.jpg", 2, "beach"])  # a class with no training image
    data["test"].append(["x.jpg", "3", "river"])  # malformed
    (folder / "patternnet.json").write_text(json.dumps(data))
    (folder / "images" / "forest" / "forest_001.jpg").write_bytes(b"broken")  # a listed image, still checked
    out, line = _fail(capsys, tmp_path, dataset="patternnet")
    assert (
        line == "error: patternnet: malformed: 1; escaping: 2; conflict: 1; empty class: 1; missing: 1; unreadable: 1"
    )
    assert "    test[5]: is not [path, label, classname]: ['x.jpg', '3', 'river']\n" in out
    assert "    train[8]: path '../outside.jpg' escapes the dataset root\n" in out
    assert "    train[9]: path '/etc/passwd' escapes the dataset root\n" in out
    assert "    label 1: has two class names, 'forest' and 'woods' (at val[4])\n" in out
    assert "    beach: has no training image\n" in out
    assert f"    {folder / 'images' / 'beach' / 'x.jpg'}: does not exist\n" in out
    assert f"    {folder / 'images' / 'forest' / 'forest_001.jpg'}: cannot identify image file\n" in out


def test_check_keeps_ten_items_per_kind_and_counts_the_rest(tmp_path, capsys):
    folder = two_class_patternnet(tmp_path, per_class=8)
    listed = json.loads((folder / "patternnet.json").read_text())
    paths = [folder / "images" / rel for subset in ("train", "val", "test") for rel, _, _ in listed[subset]]
    for path in paths[:12]:
        path.write_bytes(b"garbage")
    out, line = _fail(capsys, tmp_path, dataset="patternnet")
    assert line == "error: patternnet: unreadable: 12"
    block = out.split("  error: 12 listed images do not decode\n")[1].split("  note:")[0].splitlines()
    assert block == [f"    {path}: cannot identify image file" for path in paths[:10]] + ["    ... and 2 more"]
    code, out, _ = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path), "--json"])
    assert code == 2
    (report,) = json.loads(out)["datasets"]
    (problem,) = report["problems"]
    assert (problem["kind"], problem["count"], problem["more"]) == ("unreadable", 12, 2)
    assert [i["item"] for i in problem["items"]] == [str(path) for path in paths[:10]]


def test_check_json_is_one_document_with_problems_and_notes(tmp_path, capsys):
    folder = two_class_patternnet(tmp_path)
    (folder / "images" / "forest" / "forest_000.jpg").unlink()
    code, out, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path), "--json"])
    assert code == 2 and err.strip().splitlines()[-1] == "error: patternnet: missing: 1"
    document = json.loads(out)
    assert (document["profile"], document["strict"], document["ok"]) == ("paper", False, False)
    (report,) = document["datasets"]
    assert report["name"] == "patternnet" and report["canonical"] == "no" and report["classes"] == 2
    assert report["counts"] == {"train": 4, "val": 2, "test": 2} and report["images_checked"] == 8
    assert report["problems"] == [
        {
            "kind": "missing",
            "count": 1,
            "message": "1 listed image is missing",
            "items": [{"item": str(folder / "images" / "forest" / "forest_000.jpg"), "reason": "does not exist"}],
            "more": 0,
        }
    ]
    assert [n["kind"] for n in report["notes"]] == ["not published", "classes", "counts"]
    assert {"item": "train", "reason": "4 (published 14896)"} in report["notes"][2]["items"]
    code, out, _ = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path), "--json", "--strict"])
    report = json.loads(out)["datasets"][0]
    assert code == 2 and report["notes"] == []
    assert [p["kind"] for p in report["problems"]] == ["missing", "not published", "classes", "counts"]


def test_scan_split_collects_what_parse_split_stops_at():
    data = {
        "train": [["a/1.jpg", 0, "a"], ["../x.jpg", 0, "a"], ["b/1.jpg", -1, "b"]],
        "val": [["a/2.jpg", 0, "aa"], ["a/3.jpg", 0, "aa"], "junk"],
        "test": [["c/1.jpg", 2, "c"]],
    }
    issues = scan_split(data).issues
    assert [(i.kind, i.where) for i in issues] == [
        ("escaping", "train[1]"),
        ("labels", "train[2]"),
        ("conflict", "label 0"),  # once per extra name, not per entry
        ("malformed", "val[2]"),
        ("labels", "labels"),
        ("empty class", "c"),
    ]
    with pytest.raises(
        UsageError, match=r"^split file s\.json: train\[1\] path '\.\./x\.jpg' escapes the dataset root$"
    ):
        parse_split(data, source="s.json")


def test_check_without_data_root_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BENCHMARK_DATA", raising=False)
    code, _, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path / "nope")])
    assert code == 2 and err == f"error: data root not found: {tmp_path / 'nope'}\n"
    code, _, err = run_cli(capsys, ["data", "check", "--profile", "paper"])  # without --profile: the world
    assert code == 2 and err.count("\n") == 1 and "needs a data root" in err
    code, _, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path)])
    assert code == 2 and "no dataset of the paper profile under" in err


# -- data shots ---------------------------------------------------------------------------------
def dassl_reference(split_json: dict, shots: int, seed: int) -> tuple[list[str], list[str]]:
    """Dassl's generate_fewshot_dataset as the reference runs it (global random, defaultdict grouping)."""
    random.seed(seed)

    def generate(items, k):
        tracker = defaultdict(list)
        for item in items:
            tracker[item[1]].append(item)
        out = []
        for _, group in tracker.items():
            out.extend(random.sample(group, k) if len(group) >= k else group)
        return [item[0] for item in out]

    train = generate(split_json["train"], shots)
    val = generate(split_json["val"], min(shots, 4))
    return train, val


@needs_splits
@pytest.mark.parametrize("name", ["patternnet", "rsicd", "mlrsnetv2"])
def test_data_shots_is_dassls_draw(name, tmp_path, capsys):
    copy_split(tmp_path, name)
    argv = ["data", "shots", "--data-root", str(tmp_path), "--datasets", name, "--seed", "1,2,3", "--shots", "1,4,16"]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["seed"], r["shots"]) for r in records] == [(s, k) for s in (1, 2, 3) for k in (1, 4, 16)]
    split_json = public(name)
    for record in records:
        train, val = dassl_reference(split_json, record["shots"], record["seed"])
        assert record["dataset"] == name
        assert record["train"] == train and record["val"] == val


def test_data_shots_bad_input(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["data", "shots", "--datasets", "patternet", "--seed", "1", "--shots", "16"])
    assert code == 2 and "did you mean 'patternnet'" in err
    argv = ["data", "shots", "--datasets", "patternnet", "--seed", "x", "--shots", "16", "--data-root", str(tmp_path)]
    code, _, err = run_cli(capsys, argv)
    assert code == 2 and "--seed expects comma-separated integers" in err


# -- generated splits ---------------------------------------------------------------------------
def image_folder(root: Path, classes: dict[str, int], folder: str = "MLRSNet") -> Path:
    base = root / folder / "images"
    for name, count in classes.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", (8, 8)).save(base / name / f"{name}_{i:03d}.jpg")
    return root / folder


def test_generated_split_is_deterministic_disjoint_and_cached_outside_the_root(tmp_path, caplog):
    root = tmp_path / "data"
    image_folder(root, {"zeta": 10, "alpha": 7, "mid": 1})
    spec = PAPER_DATASETS["mlrsnet"]
    first = open_dataset(spec, root, split_cache=tmp_path / "c1")
    again = open_dataset(spec, root, split_cache=tmp_path / "c2")
    assert "GENERATED split" in caplog.text
    assert first.generated_split and first.canonical is False and first.split_status == "generated"
    assert first.split_tags() == {"split_canonical": "no", "split_generated": "yes"}
    assert first.split_path.read_bytes() == again.split_path.read_bytes()
    assert first.split.sha256 == again.split.sha256
    assert first.split_path.parent == tmp_path / "c1" / "mlrsnet"
    assert sorted(p.name for p in (root / "MLRSNet").iterdir()) == ["images"]  # nothing written into the data root
    assert first.classnames == ("alpha", "mid", "zeta")  # no known order for MLRSNet: alphabetical
    subsets = [{i.path for i in first.split.subset(s)} for s in ("train", "val", "test")]
    assert not (subsets[0] & subsets[1] or subsets[0] & subsets[2] or subsets[1] & subsets[2])
    assert sum(map(len, subsets)) == 18
    per_class = {s: defaultdict(int) for s in ("train", "val", "test")}
    for s in per_class:
        for item in first.split.subset(s):
            per_class[s][item.classname] += 1
    assert [per_class[s]["zeta"] for s in ("train", "val", "test")] == [5, 2, 3]
    assert [per_class[s]["alpha"] for s in ("train", "val", "test")] == list(split_counts(7)) == [3, 1, 3]
    assert [per_class[s]["mid"] for s in ("train", "val", "test")] == [1, 0, 0]


def test_generated_split_changes_with_the_listing_only(tmp_path):
    root = tmp_path / "data"
    folder = image_folder(root, {"a": 10, "b": 10})
    p1, _ = ensure_generated_split("x", folder / "images", tmp_path / "cache")
    p2, _ = ensure_generated_split("x", folder / "images", tmp_path / "cache")
    assert p1 == p2
    Image.new("RGB", (8, 8)).save(folder / "images" / "a" / "extra.jpg")
    p3, _ = ensure_generated_split("x", folder / "images", tmp_path / "cache")
    assert p3 != p1
    b1 = [e for e in json.loads(p1.read_text())["train"] if e[2] == "b"]
    b3 = [e for e in json.loads(p3.read_text())["train"] if e[2] == "b"]
    assert b1 == b3  # per-class streams: another class's change leaves this one alone


def test_generated_split_uses_the_known_order_when_folders_match(tmp_path):
    known = ("runway", "beach", "forest")
    folder = image_folder(tmp_path, {name: 4 for name in known}, folder="X")
    spec = DatasetSpec("x", "X", "x.json", classnames=known)
    dataset = open_dataset(spec, tmp_path, split_cache=tmp_path / "cache")
    assert dataset.generated_split and dataset.classnames == known
    assert folder.joinpath("x.json").exists() is False


def test_missing_split_without_images_is_one_line(tmp_path):
    (tmp_path / "MLRSNet").mkdir()
    with pytest.raises(UsageError, match="split file not found: .*mlrsnet.json, and no images folder"):
        open_dataset(PAPER_DATASETS["mlrsnet"], tmp_path, split_cache=tmp_path / "cache")


def test_check_marks_generated_splits(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    image_folder(tmp_path / "data", {"a": 5, "b": 5})
    code, out, err = run_cli(capsys, ["data", "check", "--data-root", str(tmp_path / "data")])
    assert code == 0, err
    assert out.splitlines()[1].split() == ["mlrsnet", "2", "4", "2", "4", "generated", "10", "ok", "1"]
    assert "  note: split file mlrsnet.json is absent, so not the published split: runs use the generated split" in out
    assert (tmp_path / "cache" / "splits" / "mlrsnet").is_dir()
    argv = ["data", "check", "--data-root", str(tmp_path / "data"), "--strict"]
    assert run_cli(capsys, argv)[2] == "error: mlrsnet: generated: 1\n"


# -- the paper profile's dry run ----------------------------------------------------------------
def test_paper_dry_run_without_data_root_is_one_line(isolated, capsys):
    code, out, err = run_cli(capsys, ["run", "--profile", "paper", "--data-root", "/nonexistent", "--dry-run"])
    assert code == 2 and out == ""
    assert err == "error: data root not found: /nonexistent\n"


@needs_splits
def test_paper_dry_run_uses_the_published_class_order(isolated, capsys):
    root = isolated / "data"
    for name in ("patternnet", "rsicd", "patternnetv2", "rsicdv2"):
        copy_split(root, name)
    base = ["run", "--profile", "paper", "--data-root", str(root), "--dry-run", "--methods", "coop", "--seeds", "1"]
    code, out, err = run_cli(capsys, [*base, "--protocol", "b2n", "--datasets", "patternnet"])
    assert code == 0, err
    cell = json.loads(out.splitlines()[0])
    labels = public("patternnet")
    names = {label: classname for _, label, classname in labels["train"]}
    assert cell["backbone"] == "ViT-B-16:openai"
    assert cell["base_classes"] == [names[i] for i in range(19)]
    assert cell["new_classes"] == [names[i] for i in range(19, 38)]

    code, out, err = run_cli(capsys, [*base, "--protocol", "xd", "--datasets", "patternnet,rsicd"])
    assert code == 0, err
    cell = json.loads(out.splitlines()[0])
    assert cell["source"] == "patternnet" and cell["targets"] == ["rsicd"]
    assert cell["source_classes"] == list(load_facts()["patternnet"].classnames)
    assert cell["target_classes"] == {"rsicd": list(load_facts()["rsicd"].classnames)}

    code, out, err = run_cli(capsys, [*base, "--protocol", "dg", "--datasets", "patternnetv2,rsicdv2"])
    assert code == 0, err
    cell = json.loads(out.splitlines()[0])
    assert cell["source_classes"] == cell["target_classes"]["rsicdv2"] == list(load_facts()["rsicdv2"].classnames)


# -- the peers' RS scene datasets on placeholder roots ------------------------------------------------------
def placeholder(root: Path, name: str, per_class: int = 5, drop: tuple[str, ...] = ()) -> Path:
    """`<root>/<Folder>/<image_dir>/<class folder>/*.jpg`: `per_class` 8x8 JPEGs for every known class."""
    spec = PAPER_DATASETS[name]
    for folder in spec.class_folders or spec.classnames:
        if folder not in drop:
            (root / spec.folder / spec.image_dir / folder).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new("RGB", (8, 8), (40 * i, 90, 140)).save(
                    root / spec.folder / spec.image_dir / folder / f"{i}.jpg"
                )
    return root / spec.folder


@pytest.mark.parametrize("name", sorted(PEER_DATASETS))
def test_peer_dataset_placeholder_opens_with_a_tagged_generated_split(name, tmp_path):
    placeholder(tmp_path / "data", name)
    dataset = open_dataset(PAPER_DATASETS[name], tmp_path / "data", split_cache=tmp_path / "cache")
    assert dataset.generated_split and dataset.split_status == "generated"
    assert dataset.split_tags() == {"split_canonical": "no", "split_generated": "yes"}
    assert dataset.classnames == load_facts()[name].classnames  # the recorded order, not the folders'
    n = PEER_DATASETS[name]
    assert [len(dataset.split.subset(s)) for s in ("train", "val", "test")] == [2 * n, n, 2 * n]
    assert all(dataset.image_path(item).is_file() for item in dataset.split.test)


def test_eurosat_generated_split_has_coops_folders_and_names(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    placeholder(root, "eurosat")
    argv = ["data", "check", "--profile", "paper", "--datasets", "eurosat", "--data-root", str(root)]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    assert out.splitlines()[1].split() == ["eurosat", "10", "20", "10", "20", "generated", "50", "ok", "1"]
    first = open_dataset(PAPER_DATASETS["eurosat"], root).split.train[0]
    assert first.path.startswith("AnnualCrop/") and (first.label, first.classname) == (0, "Annual Crop Land")

    shutil.rmtree(root / "eurosat" / "2750" / "Forest")  # a partial copy keeps the recorded order
    dataset = open_dataset(PAPER_DATASETS["eurosat"], root)
    assert dataset.classnames[:2] == ("Annual Crop Land", "Herbaceous Vegetation Land")
    code, out, err = run_cli(capsys, argv)  # `run` proceeds on it: a note, an error only with --strict
    assert code == 0, err
    assert "  note: 9 classes in the split file, the published split has 10\n    Forest: not in the split file\n" in out
    assert _fail(capsys, root, "--strict", dataset="eurosat")[1].startswith("error: eurosat: generated: 1; classes: 1")


def test_generated_split_keeps_the_known_order_for_a_partial_folder_set(tmp_path):
    image_folder(tmp_path, {"runway": 4, "forest": 4, "extra": 4}, folder="X")
    spec = DatasetSpec("x", "X", "x.json", classnames=("runway", "beach", "forest"))
    dataset = open_dataset(spec, tmp_path, split_cache=tmp_path / "cache")
    assert dataset.classnames == ("runway", "forest", "extra")  # known order first, unknown folders after


def test_a_users_own_split_for_a_peer_dataset_is_unknown(tmp_path):
    folder = placeholder(tmp_path, "rsscn7")
    generated = open_dataset(PAPER_DATASETS["rsscn7"], tmp_path, split_cache=tmp_path / "cache")
    shutil.copyfile(generated.split_path, folder / "rsscn7.json")
    dataset = open_dataset(PAPER_DATASETS["rsscn7"], tmp_path)
    assert not dataset.generated_split and dataset.split_status == "unknown"
    assert dataset.split_tags() == {"split_canonical": "unknown", "split_generated": "no"}
