"""Backbone loading for the paper profile: local checkpoint files (open_clip and OpenAI formats) and tags offline."""

import pickle
import time
import warnings

import pytest
import torch

from benchmark.backbone.hub_cache import cached_weights
from benchmark.backbone.load import (
    TINY_CONFIG,
    backbone_identity,
    build_tiny_clip,
    load_backbone,
    parse_backbone,
    validate_backbone,
)
from benchmark.backbone.weights import load_checkpoint_file
from benchmark.errors import UsageError

# OpenAI's convention (heads = width // 64, QuickGELU) at the tiny scale, so the architecture inferred
# from the weights is the one they were made with.


@pytest.fixture(scope="module")
def inputs():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 32, 32, generator=generator)
    text = torch.randint(1, 49000, (2, 32), generator=generator)
    text[:, -1] = 49407
    return images, text


def same_outputs(a, b, inputs) -> bool:
    images, text = inputs
    with torch.no_grad():
        return torch.allclose(a.encode_image(images), b.encode_image(images), atol=1e-5) and torch.allclose(
            a.encode_text(text), b.encode_text(text), atol=1e-5
        )


def test_open_clip_state_dict_file(tiny, inputs, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(tiny.state_dict(), path)
    spec = parse_backbone(f"tiny:{path}")
    validate_backbone(spec)
    clip = load_backbone(spec)
    assert same_outputs(clip.model, tiny, inputs)
    assert backbone_identity(spec).startswith("tiny:file@") and clip.identity == backbone_identity(spec)
    assert spec.label == f"tiny:{path}"


def test_wrapped_and_prefixed_state_dict(tiny, inputs, tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tiny.state_dict().items()}, "epoch": 3}, path)
    assert same_outputs(load_checkpoint_file("tiny", path), tiny, inputs)


def test_identity_follows_the_file_content(tiny, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(tiny.state_dict(), a)
    torch.save(build_tiny_clip(4).state_dict(), b)
    assert backbone_identity(parse_backbone(f"tiny:{a}")) != backbone_identity(parse_backbone(f"tiny:{b}"))


def test_openai_format_state_dict(openai_tiny, inputs, tmp_path):
    state = dict(openai_tiny.state_dict())
    state.update(input_resolution=torch.tensor(32), context_length=torch.tensor(32), vocab_size=torch.tensor(49408))
    path = tmp_path / "openai.pt"
    torch.save(state, path)
    assert same_outputs(load_checkpoint_file("tiny", path), openai_tiny, inputs)


def test_openai_torchscript_archive(openai_tiny, inputs, tmp_path):
    images, text = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(openai_tiny, {"encode_image": (images,)})
        path = tmp_path / "jit.pt"
        torch.jit.save(traced, str(path))
        loaded = load_checkpoint_file("tiny", path)
    assert same_outputs(loaded, openai_tiny, inputs)


def test_openai_file_for_another_architecture_is_one_line(openai_tiny, tmp_path):
    state = {**openai_tiny.state_dict(), "input_resolution": torch.tensor(32)}
    path = tmp_path / "openai.pt"
    torch.save(state, path)
    with pytest.raises(UsageError, match="OpenAI-format model with embed_dim 64, but ViT-B-16 has 512"):
        load_checkpoint_file("ViT-B-16", path)


def test_file_that_does_not_fit_the_architecture(tiny, tmp_path):
    state = dict(tiny.state_dict())
    state["text_projection"] = torch.zeros(64, 32)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(UsageError, match=r"does not fit tiny: text_projection has shape \(64, 32\), tiny expects"):
        load_checkpoint_file("tiny", path)
    del state["text_projection"]
    torch.save(state, path)
    with pytest.raises(UsageError, match="1 missing keys \\(first 'text_projection'\\)"):
        load_checkpoint_file("tiny", path)


def test_tiny_file_into_a_registered_architecture(tiny, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(tiny.state_dict(), path)
    start = time.monotonic()
    with pytest.raises(UsageError, match="does not fit ViT-B-32"):
        load_backbone(parse_backbone(f"ViT-B-32:{path}"))
    assert time.monotonic() - start < 30


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_are_not_executed(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"x": _Payload()}, fh, protocol=2)
    with pytest.raises(UsageError, match="not a weights-only torch file"):
        load_checkpoint_file("tiny", path)


def test_validation_needs_no_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    validate_backbone(parse_backbone("ViT-B-16:openai"))
    with pytest.raises(UsageError, match="'opena'; did you mean 'openai'"):
        validate_backbone(parse_backbone("ViT-B-16:opena"))
    with pytest.raises(UsageError, match="checkpoint not found"):
        validate_backbone(parse_backbone(f"ViT-B-16:{tmp_path}/RemoteCLIP-ViT-B-32.pt"))
    with pytest.raises(UsageError, match="needs a checkpoint file"):
        validate_backbone(parse_backbone("tiny"))


def test_missing_weights_fail_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # open_clip's URL cache is ~/.cache/clip
    start = time.monotonic()
    with pytest.raises(UsageError) as info:
        load_backbone(parse_backbone("ViT-B-16:openai"))
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "ViT-B-16:openai" in message and "HF_HUB_OFFLINE is set" in message and "\n" not in message


def test_cached_tag_weights_are_found_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cached_weights("ViT-B-16", "openai") is None
    repo = tmp_path / "hf" / "hub" / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    weights = repo / "snapshots" / "abc123" / "open_clip_pytorch_model.bin"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert cached_weights("ViT-B-16", "openai") == weights


def test_tiny_config_is_the_tests_architecture(tiny):
    assert tiny.visual.conv1.out_channels == TINY_CONFIG["vision_cfg"]["width"]


def test_the_world_backbones_are_named_and_keep_the_generic_ones_identity():
    """`world` keeps its label and identity (so its runs keep their run_keys); `world-rs` is its RS-pretrained
    counterpart, a different committed checkpoint with its own sha256-checked identity."""
    from benchmark.backbone.load import backbone_identity, load_backbone, parse_backbone
    from benchmark.world.model import META, WORLD_CHECKPOINTS, read_meta

    generic, rs = parse_backbone("world"), parse_backbone("World-RS")
    assert (generic.label, rs.label) == ("world", "world-rs")
    assert backbone_identity(generic) == f"world@{read_meta(META)['sha256'][:12]}"
    rs_meta = read_meta(WORLD_CHECKPOINTS["world-rs"].with_suffix(".json"))
    assert backbone_identity(rs) == f"world-rs@{rs_meta['sha256'][:12]}"
    assert rs_meta["recipe"]["corpus"] == "rs" and rs_meta["model_cfg"] == read_meta(META)["model_cfg"]
    a, b = load_backbone(generic), load_backbone(rs)
    weights = dict(b.model.named_parameters())
    assert all(p.shape == weights[n].shape for n, p in a.model.named_parameters())
    assert not torch.equal(a.model.visual.conv1.weight, b.model.visual.conv1.weight)


def test_a_safetensors_file_is_audited_from_its_header_and_loaded_whole(tiny, inputs, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from benchmark.backbone import weights

    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path))
    import safetensors.torch

    def no_data(*_args, **_kwargs):
        raise AssertionError("the audit read the weights")

    monkeypatch.setattr(safetensors.torch, "load_file", no_data)
    assert weights.audit_file("tiny", path).complete  # names and shapes from the header alone
    bad = dict(tiny.state_dict())
    bad["text_projection"] = torch.zeros(64, 32)
    save_file({k: v.contiguous() for k, v in bad.items()}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UsageError, match=r"text_projection has shape \(64, 32\)"):
        weights.audit_file("tiny", tmp_path / "bad.safetensors")
    monkeypatch.undo()
    assert same_outputs(load_checkpoint_file("tiny", path), tiny, inputs)
