"""`FrozenClip`: the one place where CLIP plumbing lives.

Methods never copy CLIP's text or image encoder (the reference repositories hold five copies of
`TextEncoder`). The wrapper runs open_clip's own residual blocks in its own loop so that it can:

* encode prompt *embeddings* (learned context spliced into token embeddings) and pool at the EOT
  position of the template tokens (CoOp `TextEncoder`);
* call a per-layer hook before every block of either tower, for deep prompts (MaPLe), and append
  extra tokens to the vision sequence before `ln_pre`;
* return the last block's tokens before `ln_post` (BiMoRS conditions on them);
* truncate prompt sequences at the longest EOT of the batch. CLIP's text mask is causal, so the EOT
  feature never depends on later positions and the truncation is exact (methods/REFERENCES.md §5);
* compute only the pooled row (EOT, or CLS) in the last block: every other row of the last block's
  output is discarded by the pooling, so skipping its query, output projection and MLP is exact too;
* add a method's term to every block's packed q|k|v input projection (`qkv_delta`: CLIP-LoRA's
  low-rank updates), which enter through the forward path, so the frozen weights are never touched.

Dimensions are read from the model; nothing here knows a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerHook = Callable[[int, Tensor], Tensor]  # (block index, tokens [N, L, W]) -> tokens
# (block index, ln_1 output h [N, L, W]) -> a term [N, L, 3W] added to the block's q|k|v projection of h, or None
QkvDelta = Callable[[int, Tensor], Tensor | None]


@dataclass
class ImageFeatures:
    """Frozen image-path outputs of a batch."""

    pooled: Tensor  # [B, D] projected CLS feature, not normalised
    tokens: Tensor | None = None  # [B, N, W_v] last block output before ln_post (CLS first)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ImageFeatures:
        """Move both tensors to `device` (and `dtype`, e.g. the half precision of an fp16 backbone)."""
        tokens = None if self.tokens is None else self.tokens.to(device, dtype)
        return ImageFeatures(self.pooled.to(device, dtype), tokens)


@dataclass
class ClassPrompts:
    """Tokenised `"{prefix} {classname}."` templates and their frozen token embeddings."""

    classnames: tuple[str, ...]  # as given
    texts: tuple[str, ...]  # the template strings
    tokens: Tensor  # [C, L] token ids
    embeddings: Tensor  # [C, L, W] token embeddings of `tokens`
    eot: Tensor  # [C] EOT position = argmax of the ids (EOT has the largest id)
    name_lens: tuple[int, ...]  # BPE length of each bare class name (CoOp middle/front)

    def length(self, truncate: bool) -> int:
        """Sequence length to feed the text encoder: up to the last EOT when truncating."""
        return int(self.eot.max()) + 1 if truncate else self.tokens.shape[1]


def _check_supported(model: nn.Module) -> None:
    visual = getattr(model, "visual", None)
    required = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
    if visual is None or not all(hasattr(model, name) for name in required):
        raise ValueError(
            "backbone must be an open_clip CLIP with a built-in text tower (CustomTextCLIP is not supported)"
        )
    if not hasattr(visual, "conv1") or getattr(visual, "attn_pool", None) is not None:
        raise ValueError("backbone must be a ViT with CLS-token pooling (no attentional pooler)")
    if getattr(visual, "final_ln_after_pool", False) or getattr(visual, "pool_type", "tok") != "tok":
        raise ValueError("backbone must pool the CLS token after ln_post, as OpenAI CLIP does")


class FrozenClip(nn.Module):
    """A frozen open_clip CLIP with prompt-embedding text encoding and per-layer hooks.

    Args:
        model: an `open_clip.model.CLIP` with a ViT image tower.
        identity: a string that identifies the weights (used in run keys and cache keys).
        tags: run tags describing the loaded weights (`backbone_sha256`, `partial_weights`; see
            `benchmark.backbone.load.load_backbone`), added to every run that uses this backbone.
    """

    def __init__(self, model: nn.Module, *, identity: str, tags: dict[str, str] | None = None) -> None:
        super().__init__()
        _check_supported(model)
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.identity = identity
        self.tags = dict(tags or {})
        self._tokenizer = None

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def text_width(self) -> int:
        """Width of text tokens (ctx vectors live in this space)."""
        return self.model.ln_final.weight.shape[0]

    @property
    def vision_width(self) -> int:
        """Width of vision tokens (MaPLe's visual prompts, BiMoRS's meta-net input)."""
        return self.model.visual.conv1.out_channels

    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text embedding."""
        proj = self.model.text_projection
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    @property
    def image_size(self) -> int:
        """Input resolution of the image tower."""
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def context_length(self) -> int:
        """Maximum text sequence length."""
        return self.model.positional_embedding.shape[0]

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.model.positional_embedding.device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype (float16 for an fp16 run's copy, else float32)."""
        return self.model.positional_embedding.dtype

    def half_copy(self) -> FrozenClip:
        """A float16 copy of this backbone, as the references run it with `PREC: fp16`.

        The copy has its own identity, so features it computes never mix with this one's in the cache.
        """
        import copy

        return FrozenClip(copy.deepcopy(self.model).half(), identity=f"{self.identity}|fp16", tags=self.tags)

    @property
    def logit_scale(self) -> Tensor:
        """exp(logit_scale): the multiplier of cosine similarities."""
        return self.model.logit_scale.exp()

    def train(self, mode: bool = True) -> FrozenClip:
        """The backbone stays in eval mode whatever its owner asks (it has no trainable state)."""
        return super().train(False)

    # -- tokens -----------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """CLIP BPE ids [N, context_length]: SOT, tokens, EOT, zero padding."""
        import open_clip

        return open_clip.tokenize(list(texts), context_length=self.context_length).to(self.device)

    def bpe_length(self, text: str) -> int:
        """Number of BPE tokens of `text` without SOT/EOT."""
        if self._tokenizer is None:
            from open_clip.tokenizer import SimpleTokenizer

            self._tokenizer = SimpleTokenizer()
        return len(self._tokenizer.encode(text))

    def embed_tokens(self, ids: Tensor) -> Tensor:
        """Token embeddings [N, L, W] of ids [N, L]."""
        with torch.no_grad():
            return self.model.token_embedding(ids)

    def class_prompts(self, prefix: str, classnames: Sequence[str]) -> ClassPrompts:
        """Templates `prefix + " " + name + "."` with `_` in names read as spaces (CoOp)."""
        names = [name.replace("_", " ") for name in classnames]
        texts = tuple(f"{prefix} {name}." if prefix else f"{name}." for name in names)
        tokens = self.tokenize(texts)
        return ClassPrompts(
            classnames=tuple(classnames),
            texts=texts,
            tokens=tokens,
            embeddings=self.embed_tokens(tokens),
            eot=tokens.argmax(dim=-1),
            name_lens=tuple(self.bpe_length(name) for name in names),
        )

    def context_init(self, text: str, n_tokens: int | None = None) -> Tensor:
        """Embeddings at positions 1..n of `text`'s tokens: CoOp's `CTX_INIT` initialisation.

        n defaults to the word count (CoOp); MaPLe takes its first `n_tokens` instead.
        """
        n = len(text.split(" ")) if n_tokens is None else n_tokens
        return self.embed_tokens(self.tokenize([text]))[0, 1 : 1 + n].clone()

    # -- text tower -------------------------------------------------------------------------------
    def _run_blocks(
        self,
        blocks: nn.Module,
        x: Tensor,
        mask: Tensor | None,
        hook: LayerHook | None,
        pooled_rows: Tensor | None = None,
        fused: bool = False,
        qkv_delta: QkvDelta | None = None,
    ) -> Tensor:
        """Run the residual blocks on x [N, L, W].

        With `pooled_rows` [N] the last block computes only those rows and [N, W] is returned.
        With `fused`, standard blocks run as one packed QKV projection and one SDPA call.
        With `qkv_delta`, every block runs fused with `qkv_delta(index, ln_1(x))` added to its q|k|v
        projection (the last block then computes every row; the pooled rows are taken after it).
        """
        batch_first = getattr(blocks, "batch_first", True)
        resblocks = list(blocks.resblocks)
        for index, block in enumerate(resblocks):
            if hook is not None:
                x = hook(index, x)
            if qkv_delta is not None:
                if not _prunable(block):
                    raise ValueError("qkv_delta needs open_clip's standard pre-LN residual blocks")
                x = _fused_block(block, x, mask, lambda h, index=index: qkv_delta(index, h))
                continue
            if pooled_rows is not None and index == len(resblocks) - 1 and _prunable(block):
                return _block_rows(block, x, pooled_rows, causal=mask is not None, batch_first=batch_first)
            if fused and _prunable(block):
                x = _fused_block(block, x, mask)
            elif batch_first:
                x = block(x, attn_mask=mask)
            else:
                x = block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)
        if pooled_rows is not None:
            return x[torch.arange(x.shape[0], device=x.device), pooled_rows]
        return x

    def encode_prompts(
        self,
        prompts: Tensor,
        eot: Tensor,
        *,
        layer_hook: LayerHook | None = None,
        pooled_only: bool = False,
        fused: bool = False,
        qkv_delta: QkvDelta | None = None,
    ) -> Tensor:
        """Text features [N, D] of prompt embeddings [N, L, W], pooled at `eot` [N].

        `L` may be shorter than the context length (causal truncation); it must exceed every EOT.
        `pooled_only` computes only the EOT rows in the last block and `fused` runs the blocks as
        packed QKV + SDPA; both are exact. `qkv_delta`: see `_run_blocks`.
        """
        length = prompts.shape[1]
        x = prompts + self.model.positional_embedding[:length].to(prompts.dtype)
        mask = self.model.attn_mask
        mask = None if mask is None else mask[:length, :length]
        blocks = self.model.transformer
        if pooled_only:
            x = self._run_blocks(blocks, x, mask, layer_hook, pooled_rows=eot, fused=fused, qkv_delta=qkv_delta)
        else:
            x = self._run_blocks(blocks, x, mask, layer_hook, fused=fused, qkv_delta=qkv_delta)
            x = x[torch.arange(x.shape[0], device=x.device), eot]
        x = self.model.ln_final(x)
        proj = self.model.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def encode_text(
        self, texts: Sequence[str], *, truncate: bool = True, pooled_only: bool = False, fused: bool = False
    ) -> Tensor:
        """Text features [N, D] of plain strings (zero-shot prompts)."""
        tokens = self.tokenize(texts)
        eot = tokens.argmax(dim=-1)
        length = int(eot.max()) + 1 if truncate else tokens.shape[1]
        embeddings = self.embed_tokens(tokens[:, :length])
        return self.encode_prompts(embeddings, eot, pooled_only=pooled_only, fused=fused)

    # -- image tower ------------------------------------------------------------------------------
    def encode_image(
        self,
        images: Tensor,
        *,
        extra_tokens: Tensor | None = None,
        layer_hook: LayerHook | None = None,
        return_tokens: bool = False,
        pooled_only: bool = False,
        fused: bool = False,
        qkv_delta: QkvDelta | None = None,
    ) -> ImageFeatures:
        """Image features of normalised pixels [B, 3, H, W].

        Args:
            images: the batch.
            extra_tokens: [B, n, W_v] appended after the patch tokens, after the positional
                embedding and before `ln_pre` (MaPLe's first-layer visual prompts).
            layer_hook: called before every block with (index, tokens [B, N, W_v]).
            return_tokens: also return the last block's output before `ln_post`.
            pooled_only: compute only the CLS row in the last block (exact; ignored with
                `return_tokens`, which needs every row).
            fused: run standard blocks as packed QKV + SDPA (exact).
            qkv_delta: a term added to every block's q|k|v projection (see `_run_blocks`).
        """
        visual = self.model.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))  # [B, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, W]
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        if extra_tokens is not None:
            x = torch.cat([x, extra_tokens], dim=1)
        x = visual.ln_pre(x)
        if pooled_only and not return_tokens:
            cls_rows = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            cls_out = self._run_blocks(
                visual.transformer, x, None, layer_hook, pooled_rows=cls_rows, fused=fused, qkv_delta=qkv_delta
            )
            return ImageFeatures(visual.ln_post(cls_out) @ visual.proj)
        x = self._run_blocks(visual.transformer, x, None, layer_hook, fused=fused, qkv_delta=qkv_delta)
        pooled = visual.ln_post(x[:, 0]) @ visual.proj
        return ImageFeatures(pooled, x if return_tokens else None)


def _prunable(block: nn.Module) -> bool:
    """Whether `block` is open_clip's standard pre-LN residual block (its parts are known)."""
    return (
        isinstance(getattr(block, "attn", None), nn.MultiheadAttention)
        and all(hasattr(block, name) for name in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2"))
        and not hasattr(block, "ln_1_kv")
    )


def _fused_block(
    block: nn.Module, x: Tensor, mask: Tensor | None, qkv_delta: Callable[[Tensor], Tensor | None] | None = None
) -> Tensor:
    """A standard block on batch-first x [N, L, W]: one packed QKV projection, one SDPA call.

    The same arithmetic `nn.MultiheadAttention(need_weights=False)` dispatches to, without its
    generic argument handling and layout round trips, which dominate at the world backbone's sizes.
    `qkv_delta(h)`, when given and not None, is added to the q|k|v projection of h = ln_1(x).
    """
    attn = block.attn
    n, length, width = x.shape
    heads = attn.num_heads
    h = block.ln_1(x)
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)  # [N, L, 3W]
    if qkv_delta is not None:
        delta = qkv_delta(h)
        if delta is not None:
            qkv = qkv + delta
    q, k, v = qkv.view(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)  # [N, H, L, d] each
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask.to(q.dtype))
    out = F.linear(out.transpose(1, 2).reshape(n, length, width), attn.out_proj.weight, attn.out_proj.bias)
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _block_rows(block: nn.Module, x: Tensor, rows: Tensor, *, causal: bool, batch_first: bool) -> Tensor:
    """The output [N, W] of one pre-LN residual block at one query row per sequence.

    Keys and values still come from every position; under the causal mask a query at row r sees the
    positions <= r, which for a single query row is exactly a key-padding mask of the later positions.
    """
    index = torch.arange(x.shape[0], device=x.device)
    h = block.ln_1(x)  # [N, L, W]
    query = h[index, rows].unsqueeze(1)  # [N, 1, W]
    padding = None
    if causal:
        padding = torch.arange(x.shape[1], device=x.device).unsqueeze(0) > rows.unsqueeze(1)  # [N, L]
    if batch_first:
        attended = block.attn(query, h, h, need_weights=False, key_padding_mask=padding)[0]
    else:
        q, kv = query.transpose(0, 1), h.transpose(0, 1)
        attended = block.attn(q, kv, kv, need_weights=False, key_padding_mask=padding)[0].transpose(0, 1)
    out = x[index, rows].unsqueeze(1) + block.ls_1(attended)
    out = out + block.ls_2(block.mlp(block.ln_2(out)))
    return out[:, 0]
