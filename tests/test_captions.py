from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.captions import CaptionCache, CaptionProvider, caption_dim, caption_provider
from benchmark.captions.captioners import Blip2Captioner, DatasetCaptioner, make_captioner, reference_image
from benchmark.captions.encoders import MINILM, MeanPoolEncoder, minilm_folder
from benchmark.data.catalog import DatasetSpec, open_dataset
from benchmark.errors import UsageError

WORDS = ["an", "aerial", "view", "of", "the", "river", "forest", "roads", "and", "trees", "green", "dark", "."]


@pytest.fixture
def dataset(tiny_root):
    spec = DatasetSpec(name="tiny", folder="Tiny", split_file="tiny.json", captions_file="captions.json")
    return open_dataset(spec, tiny_root)


def _vocab(folder):
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return folder / "vocab.txt"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny BERT and its tokenizer saved with save_pretrained (loaded back by our encoder)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = BertTokenizer(str(_vocab(folder / "vocab")))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _manual_mean(folder, text, *, inner_only=False):
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state[0]
    return (hidden[1:-1] if inner_only else hidden).mean(dim=0).numpy()


class CountingCaptioner:
    def __init__(self, stored):
        self.id, self.stored, self.calls, self.images = "counting", stored, 0, 0

    def caption(self, dataset, items):
        self.calls += 1
        self.images += len(items)
        return [f"caption of {item.classname}" for item in items]


class CountingEncoder:
    id, dim = "counting-encoder", 3

    def __init__(self):
        self.calls, self.texts = 0, 0

    def encode(self, texts):
        self.calls += 1
        self.texts += len(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


# -- captioners ------------------------------------------------------------------------------------
def test_dataset_captioner_reads_the_shipped_captions(dataset):
    items = dataset.split.train[:3]
    assert DatasetCaptioner().caption(dataset, items) == [dataset.captions[i.path] for i in items]


def test_dataset_captioner_names_the_image_without_caption(dataset):
    item = dataset.split.test[0]
    del dataset.captions[item.path]
    with pytest.raises(UsageError, match=item.path):
        DatasetCaptioner().caption(dataset, [item])


def test_captioner_names():
    assert isinstance(make_captioner("dataset", device="cpu"), DatasetCaptioner)
    blip = make_captioner("blip2", device="cpu")
    assert blip.source == "Salesforce/blip2-flan-t5-xl" and blip.id.startswith("blip2:Salesforce/blip2-flan-t5-xl|")
    with pytest.raises(UsageError, match="unknown captioner"):
        make_captioner("llava", device="cpu")


def test_reference_image_is_224_and_min_max_rescaled(tmp_path):
    pixels = np.full((40, 30, 3), 100, dtype=np.uint8)
    pixels[0, 0] = (60, 70, 80)
    pixels[-1, -1] = (140, 150, 160)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = np.asarray(reference_image(tmp_path / "a.png"))
    assert out.shape == (224, 224, 3)
    assert out.min() == 0 and out.max() >= 254  # ToPILImage truncates 255 * 1.0 - eps
    Image.fromarray(np.full((8, 8, 3), 7, dtype=np.uint8)).save(tmp_path / "flat.png")
    assert np.asarray(reference_image(tmp_path / "flat.png")).max() == 0


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory):
    """A tiny BLIP-2 (tiny ViT, Q-Former and T5) with its processor, saved with save_pretrained."""
    from transformers import (
        BertTokenizer,
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipImageProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-blip2")
    tokenizer = BertTokenizer(str(_vocab(folder / "vocab")))
    processor = Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer, num_query_tokens=4
    )
    vocab = len(processor.tokenizer)  # includes the <image> token the processor adds
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = Blip2Config(
        vision_config={**small, "image_size": 32, "patch_size": 8},
        qformer_config={**small, "encoder_hidden_size": 32, "vocab_size": vocab},
        text_config={
            "model_type": "t5", "vocab_size": vocab, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1,
            "num_decoder_layers": 1, "num_heads": 2, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3,
            "decoder_start_token_id": 0,
        },
        num_query_tokens=4,
        image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"),
    )  # fmt: skip
    torch.manual_seed(0)
    Blip2ForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_blip2_captioner_from_a_local_folder_is_deterministic(tiny_blip2, dataset):
    items = dataset.split.train[:3]
    first = Blip2Captioner(str(tiny_blip2), batch_size=2).caption(dataset, items)
    again = Blip2Captioner(str(tiny_blip2), batch_size=1).caption(dataset, items)
    assert len(first) == 3 and all(isinstance(t, str) for t in first)
    assert first == again  # batched generation gives the per-image captions
    assert make_captioner(f"blip2:{tiny_blip2}", device="cpu").id.startswith("blip2:local:")


# -- encoders --------------------------------------------------------------------------------------
def test_encoder_mean_includes_cls_and_sep(tiny_bert):
    texts = ["an aerial view of the river .", "dark green trees", "an aerial view of the forest ."]
    encoder = MeanPoolEncoder(str(tiny_bert))
    out = encoder.encode(texts)
    assert out.shape == (3, 16) and out.dtype == np.float32
    for row, text in zip(out, texts):
        np.testing.assert_allclose(row, _manual_mean(tiny_bert, text), rtol=0, atol=1e-6)
        assert np.abs(row - _manual_mean(tiny_bert, text, inner_only=True)).max() > 1e-4
    assert caption_dim(str(tiny_bert)) == 16 == encoder.dim


def test_minilm_encoder_is_384_d_and_matches_a_manual_mean():
    texts = ["an aerial view of a river, in greenish tones", "a satellite image with roads"]
    out = MeanPoolEncoder(MINILM).encode(texts)
    assert out.shape == (2, 384)
    for row, text in zip(out, texts):
        np.testing.assert_allclose(row, _manual_mean(minilm_folder(), text), rtol=0, atol=1e-5)
    assert caption_dim(MINILM) == 384 and caption_dim("bert-base-uncased") == 768


def test_unknown_encoder_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown caption encoder"):
        caption_dim("glove-300")


# -- provider and cache ----------------------------------------------------------------------------
@pytest.mark.parametrize("stored", [False, True])
def test_second_provider_neither_captions_nor_encodes(dataset, tmp_path, stored):
    items = list(dataset.split.train) + list(dataset.split.test)
    captioner, encoder = CountingCaptioner(stored), CountingEncoder()
    first = CaptionProvider(captioner, encoder, CaptionCache(tmp_path / "c.sqlite"))(dataset, items)
    assert first.shape == (len(items), 3) and first.dtype == torch.float32
    assert encoder.texts == len(dataset.classnames)  # identical captions are encoded once
    if stored:
        assert captioner.images == len(items)  # every image once (all distinct here)

    again_captioner, again_encoder = CountingCaptioner(stored), CountingEncoder()
    second = CaptionProvider(again_captioner, again_encoder, CaptionCache(tmp_path / "c.sqlite"))(dataset, items)
    assert again_encoder.calls == 0
    if stored:
        assert again_captioner.calls == 0
    assert torch.equal(first, second)


def test_provider_rows_follow_items(dataset, tmp_path):
    provider = CaptionProvider(DatasetCaptioner(), CountingEncoder(), CaptionCache(tmp_path / "c.sqlite"))
    items = list(reversed(dataset.split.test))
    out = provider(dataset, items)
    expected = CountingEncoder().encode([dataset.captions[i.path] for i in items])
    assert torch.equal(out, torch.from_numpy(expected))
    assert provider(dataset, []).shape == (0, 3)


def test_a_changed_dataset_caption_is_re_encoded(dataset, tmp_path):
    items = dataset.split.test[:2]
    CaptionProvider(DatasetCaptioner(), CountingEncoder(), CaptionCache(tmp_path / "c.sqlite"))(dataset, items)
    dataset.captions[items[0].path] = "a brand new caption"
    encoder = CountingEncoder()
    CaptionProvider(DatasetCaptioner(), encoder, CaptionCache(tmp_path / "c.sqlite"))(dataset, items)
    assert encoder.texts == 1


def test_caption_provider_for_a_profile(dataset, tmp_path, tiny_bert):
    profile = SimpleNamespace(captioner="dataset", caption_encoder=str(tiny_bert))
    provider = caption_provider(profile, cache_root=tmp_path, device="cpu")
    out = provider(dataset, dataset.split.train[:4])
    assert out.shape == (4, 16)
    assert (tmp_path / "captions" / "captions.sqlite").is_file()
    text = dataset.captions[dataset.split.train[0].path]
    np.testing.assert_allclose(out[0].numpy(), _manual_mean(tiny_bert, text), rtol=0, atol=1e-6)
