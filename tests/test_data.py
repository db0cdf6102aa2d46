import json
import random
import re
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from conftest import SHARED, TINY_CLASSES, write_dataset
from PIL import Image

from benchmark.data.catalog import DatasetSpec, open_dataset
from benchmark.data.fewshot import dassl_few_shot, split_base_new
from benchmark.data.splits import parse_split, read_split
from benchmark.data.transforms import (
    TEST_VIEW,
    VIEWS_PER_SEED,
    TransformSpec,
    apply_view,
    crop_params,
    training_view,
)
from benchmark.errors import UsageError


def dassl_reference(split, shots, seed):
    """A plain re-statement of Dassl's generate_fewshot_dataset as the reference runs it."""
    random.seed(seed)

    def generate(source, k):
        tracker = defaultdict(list)
        for item in source:
            tracker[item.label].append(item)
        out = []
        for _, items in tracker.items():
            out.extend(random.sample(items, k) if len(items) >= k else items)
        return out

    return generate(split.train, shots), generate(split.val, min(shots, 4))


def test_split_reading_keeps_label_order_not_alphabetical(tmp_path):
    order = [3, 0, 4, 1, 2]
    write_dataset(tmp_path, order=order)
    split = read_split(tmp_path / "Tiny" / "tiny.json")
    assert split.classnames == tuple(TINY_CLASSES[i] for i in order)
    assert split.classnames != tuple(sorted(split.classnames))
    assert len(split.train) == 30 and len(split.val) == 15 and len(split.test) == 20


@pytest.mark.parametrize("name", ["rsicd.json", "patternnetv2.json"])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shots", [1, 4, 16])
def test_few_shot_equals_dassl_on_public_split(name, seed, shots):
    path = SHARED / "splits" / name
    if not path.is_file():
        pytest.skip("public split files not available")
    split = read_split(path)
    train, val = dassl_reference(split, shots, seed)
    ours = dassl_few_shot(split, shots, seed)
    assert list(ours.train) == train
    assert list(ours.val) == val


def test_few_shot_keeps_every_image_of_short_classes(tiny_root):
    split = read_split(tiny_root / "Tiny" / "tiny.json")
    shots = dassl_few_shot(split, 16, 1)
    assert len(shots.train) == len(split.train)
    assert set(shots.short_classes) == set(split.classnames)


def test_base_new_split_takes_first_ceil_half_of_labels():
    base, new = split_base_new(["a", "b", "c", "d", "e"])
    assert base.classnames == ("a", "b", "c") and new.classnames == ("d", "e")
    assert base.labels == (0, 1, 2) and new.labels == (3, 4)


def test_base_new_relabels_each_half_from_zero(tiny_root):
    split = read_split(tiny_root / "Tiny" / "tiny.json")
    base, new = split_base_new(split.classnames)
    new_items = new.select(split.test)
    assert {i.label for i in new_items} == {0, 1}
    assert {i.classname for i in new_items} == set(new.classnames)
    assert all(new.classnames[i.label] == i.classname for i in new_items)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.pop("val"), "keys train, val, test"),
        (lambda s: s["train"].append(["../../etc/passwd", 0, "forest"]), "escapes the dataset root"),
        (lambda s: s["train"].append(["/abs/x.png", 0, "forest"]), "escapes the dataset root"),
        (lambda s: s["test"].append(["forest/x.png", 0, "woods"]), "two class names"),
        (lambda s: s["train"].append(["x.png", "0", "forest"]), "not [path, label, classname]"),
        (lambda s: s.__setitem__("train", [i for i in s["train"] if i[1] != 2]), "no training image"),
        (lambda s: [i.__setitem__(1, i[1] + 1) for k in s for i in s[k] if i[1] >= 2], "not contiguous"),
    ],
)
def test_split_validation_names_the_problem(tiny_root, mutate, message):
    path = tiny_root / "Tiny" / "tiny.json"
    data = json.loads(path.read_text())
    mutate(data)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_split(data, source=str(path))


def test_malformed_json_is_a_usage_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match="malformed JSON"):
        read_split(path)


def test_open_dataset_reports_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="folder not found"):
        open_dataset(DatasetSpec("x", "Missing", "x.json"), tmp_path)


def test_training_views_are_deterministic_and_distinct():
    spec = TransformSpec(size=32)
    a = crop_params("abc", 0, 64, 64, spec)
    assert a == crop_params("abc", 0, 64, 64, spec)
    views = {crop_params("abc", v, 64, 64, spec) for v in range(20)}
    assert len(views) > 15
    for p in views:
        assert 0 <= p.top <= 64 - p.height and 0 <= p.left <= 64 - p.width
    # the same view number of two run seeds is a different crop: a seed varies the augmentation
    seed_1 = [crop_params("abc", training_view(1, v), 64, 64, spec) for v in range(10)]
    seed_2 = [crop_params("abc", training_view(2, v), 64, 64, spec) for v in range(10)]
    assert sum(a != b for a, b in zip(seed_1, seed_2)) >= 9
    with pytest.raises(ValueError):
        training_view(1, VIEWS_PER_SEED)


def test_views_apply_torchvision_resized_crop_and_test_transform():
    import torchvision.transforms as T
    import torchvision.transforms.functional as F

    spec = TransformSpec(size=32)
    image = Image.fromarray((torch.rand(48, 56, 3) * 255).byte().numpy())
    p = crop_params("d", 3, image.height, image.width, spec)
    expected = F.resized_crop(image, p.top, p.left, p.height, p.width, [32, 32], T.InterpolationMode.BICUBIC)
    expected = F.hflip(expected) if p.flip else expected
    expected = F.normalize(F.to_tensor(expected), spec.mean, spec.std)
    assert torch.equal(apply_view(image, "d", 3, spec), expected)
    test = T.Compose(
        [
            T.Resize(32, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(32),
            T.ToTensor(),
            T.Normalize(spec.mean, spec.std),
        ]
    )
    assert torch.equal(apply_view(image, "d", TEST_VIEW, spec), test(image))


def test_public_split_class_order_decides_base_and_new():
    path = SHARED / "splits" / "patternnet.json"
    if not path.is_file():
        pytest.skip("public split files not available")
    split = read_split(Path(path))
    base, new = split_base_new(split.classnames)
    assert len(base.classnames) == 19 and base.classnames[0] == "oil_well" and new.classnames[0] == "runway_marking"
