"""Every model a sweep loads is checked before any cell (`benchmark.plan.models`), never over the network here.

The Hugging Face cache is a temporary folder (HF_HOME), models in it are fake snapshots in the hub
cache layout (`models--org--name/refs/main` + `snapshots/<rev>/...`), and the hub probe is replaced by
a recorder: the tests count probes and forbid model loads instead of timing anything.
"""

import json
import logging
import os
from dataclasses import replace

import pytest

from benchmark.backbone.load import parse_backbone
from benchmark.captions.encoders import MeanPoolEncoder
from benchmark.errors import UsageError
from benchmark.plan import models
from benchmark.plan.models import check_models, needed_models
from benchmark.plan.profiles import get_profile

BLIP2 = "Salesforce/blip2-flan-t5-xl"
BERT = "bert-base-uncased"
VIT = "timm/vit_base_patch16_clip_224.openai"
BLIP2_FILES = ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json")
BERT_FILES = ("config.json", "model.safetensors", "vocab.txt")
REAL_ENCODER_LOAD = MeanPoolEncoder._load


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache; open_clip's ~/.cache/clip empty too."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "hf" / "hub"


@pytest.fixture
def online(monkeypatch):
    """No offline variable set (monkeypatch restores them, also after `check_models` sets one)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


class Probe:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def __call__(self, url):
        self.calls.append(url)
        return self.answer


@pytest.fixture
def probe(monkeypatch):
    """A recorded hub probe (unreachable by default) with a fresh per-process memo."""
    recorder = Probe(False)
    monkeypatch.setattr(models, "_probe", recorder)
    monkeypatch.setattr(models, "_REACHABLE", {})
    monkeypatch.setattr(models, "_SET_HERE", {})
    return recorder


@pytest.fixture(autouse=True)
def no_loads(monkeypatch):
    """The check must not load (or download) any model."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a model load was attempted")

    monkeypatch.setattr("benchmark.captions.captioners.Blip2Captioner._load", forbidden)
    monkeypatch.setattr("benchmark.captions.encoders.MeanPoolEncoder._load", forbidden)
    monkeypatch.setattr("benchmark.backbone.weights.load_tagged", forbidden)


def snapshot(cache, repo, files, rev="abc123"):
    """A fake cached model: `refs/main` naming `rev`, and `files` in its snapshot folder."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(rev)
    (folder / "snapshots" / rev).mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / "snapshots" / rev / name).write_text("{}" if name.endswith(".json") else "x")
    return folder / "snapshots" / rev


def paper(backbone="random-tiny"):
    return get_profile("paper"), parse_backbone(backbone)


def test_missing_captioner_is_one_line_after_one_probe(hub_cache, online, probe):
    profile, backbone = paper()
    with pytest.raises(UsageError) as info:
        check_models(profile, backbone, captions=True)
    message = str(info.value)
    assert "\n" not in message
    assert f"captioner blip2 needs {BLIP2}" in message and f"caption encoder {BERT}" in message
    assert f"`hf download {BLIP2}`" in message and str(hub_cache) in message and "unreachable" in message
    with pytest.raises(UsageError):
        check_models(profile, backbone, captions=True)  # a second plan (tune, reproduce) does not probe again
    assert probe.calls == [models.hub_endpoint()]


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_mode_fails_without_a_probe(hub_cache, online, probe, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    with pytest.raises(UsageError, match=f"needs {BLIP2}.*{variable} is set"):
        check_models(*paper(), captions=True)
    assert probe.calls == []


def test_cached_models_pass_offline(hub_cache, probe, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot(hub_cache, BLIP2, BLIP2_FILES)
    snapshot(hub_cache, BERT, BERT_FILES)
    check_models(*paper(), captions=True)
    assert probe.calls == []


def test_unreachable_hub_with_every_model_cached_turns_offline_mode_on(hub_cache, online, probe, caplog):
    snapshot(hub_cache, BLIP2, BLIP2_FILES)
    snapshot(hub_cache, BERT, BERT_FILES)
    with caplog.at_level(logging.INFO, logger="benchmark.plan.models"):
        check_models(*paper(), captions=True)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # later loads, and the workers, do not retry the hub
    assert probe.calls == [models.hub_endpoint()]
    assert "HF_HUB_OFFLINE=1" in caplog.text


def test_reachable_hub_leaves_missing_models_to_download(hub_cache, online, probe):
    probe.answer = True
    check_models(*paper(), captions=True)
    assert "HF_HUB_OFFLINE" not in os.environ and len(probe.calls) == 1


def test_captions_not_needed_means_no_caption_models(hub_cache, online, probe):
    assert needed_models(*paper(), captions=False) == []
    check_models(*paper(), captions=False)
    assert probe.calls == []


def test_world_profile_probes_nothing(online, monkeypatch):
    def no_probe(url):
        raise AssertionError("the world profile probed the network")

    monkeypatch.setattr(models, "_probe", no_probe)
    monkeypatch.setattr(models, "_REACHABLE", {})
    profile = get_profile("world")
    assert needed_models(profile, parse_backbone("world"), captions=True) == []  # all local, folder checked
    check_models(profile, parse_backbone("world"), captions=True)
    assert "HF_HUB_OFFLINE" not in os.environ


def test_incomplete_snapshot_names_what_it_lacks(hub_cache, probe, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot(hub_cache, BLIP2, BLIP2_FILES)
    folder = snapshot(hub_cache, BERT, ("config.json", "vocab.txt"))
    with pytest.raises(UsageError, match=f"caption encoder {BERT} \\(incomplete: none of model.safetensors"):
        check_models(*paper(), captions=True)
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model-00001-of-00002.safetensors").write_text("x")
    with pytest.raises(UsageError, match="no model-00002-of-00002.safetensors \\(weights shard 2 of 2\\)"):
        check_models(*paper(), captions=True)
    (folder / "model-00002-of-00002.safetensors").write_text("x")
    check_models(*paper(), captions=True)


def test_local_captioner_folder_is_checked_first(tmp_path, hub_cache, online, probe):
    snapshot(hub_cache, BERT, BERT_FILES)
    probe.answer = True  # the hub is reachable: only the hub-named encoder asks it
    folder = tmp_path / "blip2"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "processor_config.json"):
        (folder / name).write_text("{}")
    profile = get_profile("paper")
    for captioner, fragment in [
        (f"blip2:{folder}", f"blip2:{folder}: model folder {folder} is incomplete: none of model.safetensors"),
        (f"blip2:{tmp_path}/nowhere", f"model folder {tmp_path}/nowhere not found"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            check_models(replace(profile, captioner=captioner), parse_backbone("random-tiny"), captions=True)
    assert probe.calls == []  # a bad folder is reported before any probe
    (folder / "model.safetensors").write_text("x")
    check_models(replace(profile, captioner=f"blip2:{folder}"), parse_backbone("random-tiny"), captions=True)


def test_backbone_tag_weights_are_checked_too(hub_cache, probe, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as info:
        check_models(*paper("ViT-B-16:openai"), captions=False)
    message = str(info.value)
    assert f"backbone ViT-B-16:openai needs {VIT}" in message and "HF_HUB_OFFLINE is set" in message
    assert "--backbone ViT-B-16:/path/to/weights.pt" in message and "\n" not in message
    snapshot(hub_cache, VIT, ("open_clip_pytorch_model.bin",))
    check_models(*paper("ViT-B-16:openai"), captions=False)
    assert probe.calls == []


def test_cached_backbone_alone_needs_no_probe(hub_cache, online, probe):
    snapshot(hub_cache, VIT, ("open_clip_pytorch_model.bin",))
    check_models(*paper("ViT-B-16:openai"), captions=False)  # open_clip reads the cached file: no hub question
    assert probe.calls == [] and "HF_HUB_OFFLINE" not in os.environ


def test_a_dry_run_only_warns(hub_cache, online, probe, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.plan.models"):
        check_models(*paper(), captions=True, require=False)
    assert f"a run would stop here: captioner blip2 needs {BLIP2}" in caplog.text
    assert "HF_HUB_OFFLINE" not in os.environ


def test_probe_of_a_closed_port_is_unreachable():
    assert models._probe("http://127.0.0.1:9") is False


def test_runtime_encoder_load_is_local_only_in_offline_mode(monkeypatch):
    import transformers

    calls = []

    def from_pretrained(source, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        raise OSError(f"{source} not found")

    monkeypatch.setattr(MeanPoolEncoder, "_load", REAL_ENCODER_LOAD)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set after transformers' import, as `check_models` sets it
    with pytest.raises(UsageError, match="cannot load"):
        MeanPoolEncoder(BERT).encode(["a caption"])
    assert calls == [True]


def test_a_later_check_does_not_blame_the_user_for_offline_mode_the_check_turned_on(
    hub_cache, online, probe, monkeypatch
):
    """Two backbones: the first's models are cached (the hub is unreachable: HF_HUB_OFFLINE goes on), the second's
    weights are not; its message says the hub is unreachable, not that the user set HF_HUB_OFFLINE."""
    snapshot(hub_cache, BLIP2, BLIP2_FILES)
    snapshot(hub_cache, BERT, BERT_FILES)
    check_models(*paper(), captions=True)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(UsageError) as refused:
        check_models(get_profile("paper"), parse_backbone("ViT-B-16:openai"), captions=False)
    assert "HF_HUB_OFFLINE is set" not in str(refused.value) and "unreachable" in str(refused.value)
