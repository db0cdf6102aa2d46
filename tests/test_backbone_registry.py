"""Named backbones and the weight-loading audit, offline, with small synthetic checkpoints in each distributed layout.

The real architectures are too big for tests, so test entries of the registry (monkeypatched in) name the
tiny architecture. Their files are written in the exact layout of each distribution format (a plain
open_clip state dict, a `state_dict`-wrapped one, an open_clip training checkpoint with `module.` keys, as a
file and inside a release zip, OpenAI's keys with its extra entries) and placed in a temporary Hugging Face
cache in the hub layout (`models--org--name/refs/main` + `snapshots/<rev>/<file>`), with `HF_HUB_CACHE`
pointing there and `HF_HUB_OFFLINE=1`: the real resolution path (`hf_hub_download`) and loader run, and
nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import open_clip
import pytest
import torch

from benchmark.backbone import sources
from benchmark.backbone.audit import audit_state, tower_of
from benchmark.backbone.hub_cache import weight_locations
from benchmark.backbone.load import (
    backbone_identity,
    build_tiny_clip,
    load_backbone,
    parse_backbone,
    validate_backbone,
)
from benchmark.backbone.prepare import prepare_backbone
from benchmark.backbone.registry import BACKBONES, NamedBackbone
from benchmark.backbone.weights import open_checkpoint
from benchmark.cli.main import main
from benchmark.errors import UsageError
from benchmark.paths import file_sha256
from benchmark.plan.models import check_models
from benchmark.plan.profiles import get_profile

REPO = "test-org/testclip"


def _entry(name: str, fmt: str, **fields) -> NamedBackbone:
    return NamedBackbone(name=name, family="TestCLIP", architecture="tiny", format=fmt, **fields)


TEST_ENTRIES = {
    "testclip-plain": _entry("testclip-plain", "open_clip", source="hf_hub", repo=REPO, filename="TestCLIP-tiny.pt"),
    "testclip-wrapped": _entry(
        "testclip-wrapped", "wrapped", source="hf_hub", repo=REPO, filename="ckpt/TestCLIP-wrapped.pt"
    ),
    "testclip-trainhub": _entry(
        "testclip-trainhub", "training", source="hf_hub", repo=REPO, filename="ckpt/epoch_20.pt"
    ),
    "testclip-openai": _entry(
        "testclip-openai", "openai", source="hf_hub", repo=REPO, filename="TestCLIP-openai.pt", quick_gelu=True
    ),
    "testclip-training": _entry(
        "testclip-training",
        "training",
        source="user_file",
        member="epoch_20.pt",
        download="https://example.invalid/TestCLIP_tiny.zip",
    ),
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty, offline Hugging Face cache, an isolated benchmark cache, and the test entries registered."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BENCHMARK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "_DIGESTS", {})
    for name, entry in TEST_ENTRIES.items():
        monkeypatch.setitem(BACKBONES, name, entry)
    return tmp_path


def place(root: Path, filename: str, obj, rev: str = "0123abcd") -> Path:
    """`torch.save(obj)` as `filename` of REPO in the hub cache layout under `root / "hub"`."""
    folder = root / "hub" / f"models--{REPO.replace('/', '--')}"
    target = folder / "snapshots" / rev / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, target)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(rev)
    return target


def training_checkpoint(model) -> dict:
    """open_clip's training save: epoch, name, `module.`-prefixed state dict and the optimizer's state."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    optimizer = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-5, "params": [0]}]}
    return {"epoch": 20, "name": "SkyCLIP_tiny", "state_dict": state, "optimizer": optimizer}


def openai_state(model) -> dict:
    return {**model.state_dict(), "input_resolution": torch.tensor(32), "context_length": torch.tensor(32),
            "vocab_size": torch.tensor(49408)}  # fmt: skip


def assert_same_weights(loaded, source) -> None:
    """Every tensor of the loaded model equals the checkpoint's (and none is left over)."""
    got, want = loaded.state_dict(), source.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        assert torch.equal(got[key], value.float()), key


def without(model, tower: str) -> dict:
    return {k: v for k, v in model.state_dict().items() if tower_of(k) != tower}


# -- the registry ------------------------------------------------------------------------------------
def test_registry_entries_are_consistent():
    models = set(open_clip.list_models())
    for name, entry in BACKBONES.items():
        assert name == entry.name == name.lower() and name.startswith(entry.family.split()[0].lower())
        assert entry.architecture in models, name
        assert entry.format in ("open_clip", "wrapped", "training", "openai")
        if entry.source == "hf_hub":
            assert entry.repo.count("/") == 1 and entry.filename.endswith(".pt")
        elif entry.source == "user_file":
            assert entry.member == "epoch_20.pt" and entry.download.startswith("https://")
        else:  # where `list backbones` looks for a tag's weights is where open_clip keeps them
            cfg = open_clip.get_pretrained_cfg(entry.architecture, entry.tag)
            actual = [(k, "/".join(w) if k == "hf" else str(w)) for k, w in weight_locations(cfg)]
            listed = [(k if k == "hf" else "url", str(Path(w).expanduser()) if k == "file" else w)
                      for k, w in entry.locations]  # fmt: skip
            assert listed == actual, name
    assert {"remoteclip-vit-b-32", "remoteclip-vit-l-14", "georsclip-vit-b-32", "georsclip-vit-l-14"} <= set(BACKBONES)
    assert BACKBONES["remoteclip-vit-l-14"].filename == "RemoteCLIP-ViT-L-14.pt"
    assert BACKBONES["georsclip-vit-l-14"].filename == "ckpt/RS5M_ViT-L-14.pt"
    assert BACKBONES["georsclip-vit-b-32"].repo == "Zilun/GeoRSCLIP" and BACKBONES["georsclip-vit-b-32"].quick_gelu
    assert not BACKBONES["remoteclip-vit-b-32"].quick_gelu  # as the authors load it
    assert BACKBONES["skyclip-vit-b-32"].format == "training" and BACKBONES["skyclip-vit-l-14"].quick_gelu


def test_names_parse_case_insensitively_and_existing_backbones_keep_their_labels():
    spec = parse_backbone("RemoteCLIP-ViT-B-32")
    assert (spec.kind, spec.name, spec.model, spec.label) == ("named", "remoteclip-vit-b-32", "ViT-B-32", spec.name)
    assert parse_backbone("openai-vit-b-16") == parse_backbone("ViT-B-16:openai")
    assert parse_backbone("OpenAI-ViT-B-32").label == "ViT-B-32:openai"
    assert backbone_identity(parse_backbone("ViT-B-16:openai")) == "ViT-B-16:openai"
    assert parse_backbone("world").label == "world" and parse_backbone("random-tiny:2").label == "random-tiny:2"
    assert parse_backbone("skyclip-vit-b-32:/data/epoch_20.pt").label == "skyclip-vit-b-32:/data/epoch_20.pt"
    assert parse_backbone("openai-vit-b-16:/w/ViT-B-16.pt").label == "ViT-B-16-quickgelu:/w/ViT-B-16.pt"


def test_unknown_and_unusable_names_are_one_line(tmp_path):
    with pytest.raises(
        UsageError, match="unknown named backbone 'remoteclip-vit-b-16'; did you mean .*'remoteclip-vit-b-32'"
    ):
        parse_backbone("RemoteCLIP-ViT-B-16")
    with pytest.raises(UsageError, match="did you mean 'georsclip-vit-b-32'"):
        parse_backbone("geoRSclip-vit-b32")
    with pytest.raises(
        UsageError, match="unknown named backbone 'remotclip-vit-b-32'; did you mean 'remoteclip-vit-b-32'"
    ):
        validate_backbone(parse_backbone("remotclip-vit-b-32"))
    with pytest.raises(UsageError, match="only a local file may follow"):
        parse_backbone("remoteclip-vit-b-32:laion2b")
    with pytest.raises(UsageError, match="not a ViT.*remoteclip-vit-b-32 or remoteclip-vit-l-14"):
        validate_backbone(parse_backbone("remoteclip-rn50"))
    with pytest.raises(UsageError) as info:
        validate_backbone(parse_backbone("skyclip-vit-b-32"))
    message = str(info.value)
    assert "SkyCLIP_ViT_B32_top50pct.zip" in message and "--backbone skyclip-vit-b-32:/path/to/epoch_20.pt" in message
    with pytest.raises(UsageError, match="checkpoint not found"):
        validate_backbone(parse_backbone(f"skyclip-vit-b-32:{tmp_path}/epoch_20.pt"))


# -- every distribution format loads, and loads exactly the file's tensors --------------------------
@pytest.mark.parametrize(
    "name, filename, wrap",
    [
        ("testclip-plain", "TestCLIP-tiny.pt", lambda m: m.state_dict()),
        ("testclip-wrapped", "ckpt/TestCLIP-wrapped.pt", lambda m: {"state_dict": m.state_dict(), "epoch": 3}),
        ("testclip-trainhub", "ckpt/epoch_20.pt", lambda m: training_checkpoint(m)),
    ],
)
def test_hub_checkpoints_load_every_tensor(env, tiny, name, filename, wrap):
    path = place(env, filename, wrap(tiny))
    spec = parse_backbone(name)
    clip = load_backbone(spec)
    assert_same_weights(clip.model, tiny)
    digest = file_sha256(path)
    assert clip.identity == f"{name}@{digest[:12]}" == backbone_identity(spec)
    assert clip.tags == {"backbone_sha256": digest}
    assert open_checkpoint(path).layout == BACKBONES[name].format


def test_openai_format_hub_checkpoint(env, openai_tiny):
    path = place(env, "TestCLIP-openai.pt", openai_state(openai_tiny))
    clip = load_backbone(parse_backbone("testclip-openai"))
    assert_same_weights(clip.model, openai_tiny)
    assert open_checkpoint(path).layout == "openai"
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # heads and QuickGELU as OpenAI built it, not the tiny config's
        assert torch.allclose(clip.model.encode_image(images), openai_tiny.encode_image(images), atol=1e-5)


def test_training_checkpoint_as_a_file_and_inside_its_release_zip(env, tiny):
    direct = env / "SkyCLIP_tiny" / "epoch_20.pt"
    direct.parent.mkdir()
    torch.save(training_checkpoint(tiny), direct)
    assert open_checkpoint(direct).layout == "training"
    clip = load_backbone(parse_backbone(f"TestCLIP-training:{direct}"))
    assert_same_weights(clip.model, tiny)
    digest = file_sha256(direct)
    assert clip.tags["backbone_sha256"] == digest and clip.identity == f"testclip-training@{digest[:12]}"

    archive = env / "TestCLIP_tiny.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(direct, "SkyCLIP_tiny/epoch_20.pt")
        zf.writestr("SkyCLIP_tiny/out.log", "epoch 20 done")
        zf.writestr("SkyCLIP_tiny/epoch_19.pt", b"not read")
    spec = parse_backbone(f"testclip-training:{archive}")
    validate_backbone(spec)
    zipped = load_backbone(spec)
    assert_same_weights(zipped.model, tiny)
    # the digest is the member's (the weights actually loaded), extracted once into the cache
    assert zipped.tags["backbone_sha256"] == digest and zipped.identity == clip.identity
    assert list((env / "cache" / "backbones" / "unpacked").glob("*/epoch_20.pt"))


def test_model_file_keeps_its_identity_and_gets_the_digest_tag(env, tiny):
    path = env / "tiny.pt"
    torch.save(tiny.state_dict(), path)
    clip = load_backbone(parse_backbone(f"tiny:{path}"))
    assert clip.identity == f"tiny:file@{file_sha256(path)[:12]}"  # as before: run keys do not change
    assert clip.tags == {"backbone_sha256": file_sha256(path)}
    assert clip.half_copy().tags == clip.tags
    assert not (env / "cache" / "backbones" / "trusted.json").exists()  # trust on first use: named backbones only


# -- the audit ---------------------------------------------------------------------------------------
def test_checkpoint_without_its_text_tower_is_refused_before_work(env, tiny):
    place(env, "TestCLIP-tiny.pt", without(tiny, "text"))
    spec = parse_backbone("testclip-plain")
    text_keys = [k for k in tiny.state_dict() if tower_of(k) == "text"]
    for attempt in (lambda: prepare_backbone(spec), lambda: load_backbone(spec)):
        with pytest.raises(UsageError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message
        assert f"{len(text_keys)} missing keys (first '{text_keys[0]}')" in message
        assert f"text {len(text_keys)} of {len(text_keys)} missing, the whole tower ({text_keys[0]}" in message
        assert "random initialisation" in message and "--allow-partial-weights" in message


def test_checkpoint_without_its_visual_tower_is_refused(env, tiny):
    direct = env / "epoch_20.pt"
    torch.save(training_checkpoint_without(tiny, "visual"), direct)
    with pytest.raises(UsageError, match=r"visual 32 of 32 missing, the whole tower \(visual\.class_embedding"):
        load_backbone(parse_backbone(f"testclip-training:{direct}"))


def training_checkpoint_without(model, tower: str) -> dict:
    checkpoint = training_checkpoint(model)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if tower_of(k[7:]) != tower}
    return checkpoint


def test_unexpected_keys_and_openai_files_lacking_a_tower_are_refused(env, tiny, openai_tiny):
    place(env, "TestCLIP-tiny.pt", {**tiny.state_dict(), "visual.head.weight": torch.zeros(2)})
    with pytest.raises(UsageError, match=r"1 unexpected keys \(first 'visual.head.weight'\): visual 1 unexpected"):
        load_backbone(parse_backbone("testclip-plain"))
    state = {k: v for k, v in openai_state(openai_tiny).items() if tower_of(k) != "text"}
    place(env, "TestCLIP-openai.pt", state)
    with pytest.raises(UsageError, match="text 29 of 29 missing, the whole tower"):
        load_backbone(parse_backbone("testclip-openai"))


def test_allowed_partial_load_is_reported_and_tagged(env, tiny, caplog):
    place(env, "TestCLIP-tiny.pt", without(tiny, "text"))
    spec = parse_backbone("testclip-plain")
    prepared = prepare_backbone(spec, allow_partial=True)
    n_text = sum(tower_of(k) == "text" for k in tiny.state_dict())
    assert prepared.tags["partial_weights"] == str(n_text) and prepared.report.missing["text"]
    with caplog.at_level(logging.WARNING):
        clip = load_backbone(spec, allow_partial=True)
    assert "--allow-partial-weights" in caplog.text and "text 29 of 29 missing" in caplog.text
    assert clip.tags["partial_weights"] == str(n_text) and clip.identity == prepared.identity
    got = clip.model.state_dict()
    for key, value in tiny.state_dict().items():
        if tower_of(key) != "text":
            assert torch.equal(got[key], value), key
    again = load_backbone(spec, allow_partial=True).model.state_dict()  # the missing weights: a seeded init
    assert all(torch.equal(got[k], again[k]) for k in got)
    assert not torch.equal(got["text_projection"], tiny.state_dict()["text_projection"])


def test_report_groups_keys_by_tower():
    expected = {"visual.proj": (2, 2), "transformer.resblocks.0.attn.in_proj_weight": (6, 2), "logit_scale": ()}
    state = {"visual.proj": torch.zeros(2, 2), "logit_scale": torch.zeros(()), "extra.bias": torch.zeros(1)}
    report = audit_state(expected, state)
    assert report.missing == {"text": ("transformer.resblocks.0.attn.in_proj_weight",)}
    assert report.unexpected == {"other": ("extra.bias",)} and not report.complete
    assert report.describe().startswith("text 1 of 1 missing, the whole tower (transformer")
    assert report.tags() == {}  # only an allowed partial load is tagged
    assert audit_state(expected, {**state, "visual.proj": torch.zeros(3)}).mismatched == (
        ("visual.proj", (3,), (2, 2)),
    )


# -- hub files: offline absence, pre-flight, download, trust on first use ----------------------------
def test_absent_hub_file_offline_is_one_line_naming_repo_and_file(env, caplog):
    spec = parse_backbone("testclip-wrapped")
    for attempt in (lambda: load_backbone(spec), lambda: check_models(get_profile("paper"), spec, captions=False)):
        with pytest.raises(UsageError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and "HF_HUB_OFFLINE is set" in message
        assert f"`hf download {REPO} ckpt/TestCLIP-wrapped.pt`" in message and str(env / "hub") in message
        assert "ckpt/TestCLIP-wrapped.pt of test-org/testclip" in message
        assert "--backbone testclip-wrapped:/path/to/TestCLIP-wrapped.pt" in message
    assert prepare_backbone(spec, require=False).identity == "testclip-wrapped@not-cached"  # a dry run: no raise
    assert "run_keys are provisional (identity testclip-wrapped@not-cached)" in caplog.text  # and it says so
    real = parse_backbone("GeoRSCLIP-ViT-L-14")
    validate_backbone(real)
    with pytest.raises(
        UsageError,
        match=r"needs ckpt/RS5M_ViT-L-14.pt of Zilun/GeoRSCLIP.*`hf download Zilun/GeoRSCLIP ckpt/RS5M_ViT-L-14.pt`",
    ):
        check_models(get_profile("paper"), real, captions=False)


def test_cached_hub_file_passes_the_preflight_and_shows_in_the_list(env, tiny, capsys):
    spec = parse_backbone("testclip-plain")
    assert main(["list", "backbones"]) == 0
    before = capsys.readouterr().out
    place(env, "TestCLIP-tiny.pt", tiny.state_dict())
    check_models(get_profile("paper"), spec, captions=False)
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "testclip-plain" in line)
    assert "hf test-org/testclip/TestCLIP-tiny.pt" in row and row.rstrip().endswith("cached")
    assert "not cached" in next(line for line in before.splitlines() if "testclip-plain" in line)
    for name, arch, source, fmt in [
        ("remoteclip-vit-b-32", "ViT-B-32", "hf chendelong/RemoteCLIP/RemoteCLIP-ViT-B-32.pt", "open_clip state_dict"),
        ("georsclip-vit-l-14", "ViT-L-14", "hf Zilun/GeoRSCLIP/ckpt/RS5M_ViT-L-14.pt", "open_clip state_dict"),
        ("skyclip-vit-b-32", "ViT-B-32", "SkyCLIP_ViT_B32_top50pct.zip", "open_clip training checkpoint"),
        ("openai-vit-b-16", "ViT-B-16", "open_clip tag ViT-B-16:openai", "OpenAI"),
    ]:
        row = next(line for line in out.splitlines() if line.split()[0] == name)
        assert arch in row and source in row and fmt in row, row


def test_online_download_goes_through_the_hub_client_into_its_cache(env, tiny, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def fake_download(repo, filename, *, cache_dir, local_files_only):
        calls.append((repo, filename, cache_dir, local_files_only))
        return str(place(env, filename, tiny.state_dict()))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    clip = load_backbone(parse_backbone("testclip-plain"))
    assert_same_weights(clip.model, tiny)
    assert calls == [(REPO, "TestCLIP-tiny.pt", str(env / "hub"), False)]
    load_backbone(parse_backbone("testclip-plain"))  # now cached: the hub is not asked again
    assert len(calls) == 1


def test_trust_on_first_use(env, tiny, caplog):
    path = place(env, "TestCLIP-tiny.pt", tiny.state_dict())
    digest = file_sha256(path)
    with caplog.at_level(logging.WARNING):
        prepare_backbone(parse_backbone("testclip-plain"))
    assert f"trusting sha256 {digest}" in caplog.text
    record = json.loads((env / "cache" / "backbones" / "trusted.json").read_text())
    assert record["trusted"][f"testclip-plain {REPO}/TestCLIP-tiny.pt"]["sha256"] == digest
    load_backbone(parse_backbone("testclip-plain"))  # the same file: trusted

    torch.save(build_tiny_clip(4).state_dict(), path)  # the weights change under the same name
    os.utime(path, ns=(1, 1))
    with pytest.raises(UsageError) as info:
        load_backbone(parse_backbone("testclip-plain"))
    message = str(info.value)
    assert digest in message and file_sha256(path) in message and "trusted on first use" in message
    assert "delete the entry" in message and "\n" not in message
