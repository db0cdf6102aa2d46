"""Contrastive pretraining of the world's tiny CLIP on the pretraining corpus, on CPU in minutes.

``python -m benchmark world pretrain [--minutes M] [--steps N] [--seed S] [--out PATH] ...`` (wired by the
CLI to :func:`run_pretrain`). Recipe (WORLD_NOTES's prototype): AdamW lr 1e-3, betas (0.9, 0.98), weight
decay 0.1 except on embeddings, gains, biases and the logit scale; linear warm-up then cosine decay over
``--steps`` (800 by default, the committed checkpoint's recipe; ``--steps 0`` spans the wall-clock budget
instead, as the prototype did); batch 128; dihedral (rot90/flip) augmentation, since aerial scenes have no
canonical "up"; CLIP normalisation as in the harness; bf16 autocast where the CPU has native bf16 (about
twice as fast). A step schedule makes the result independent of machine load; ``--minutes`` is then only a
safety cap. Defaults reproduce ``assets/world_clip.pt`` (up to CPU floating-point nondeterminism).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np

from benchmark.world.model import CHECKPOINT, CLIP_MEAN, CLIP_STD, MODEL_CFG, save_world_clip
from benchmark.world.version import CORPUS_MODULES, source_digest

log = logging.getLogger(__name__)

MAX_LOGIT_SCALE = math.log(100.0)
#: Number of last steps averaged for the reported final loss.
FINAL_LOSS_WINDOW = 20
#: Steps of the committed checkpoint (102k images seen, ~1.7 epochs of the 60k corpus).
DEFAULT_STEPS = 800
NO_DECAY_NAMES = ("token_embedding", "positional_embedding", "class_embedding", "logit_scale")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Argument parser of the pretraining command (self-contained, so any CLI can delegate to it)."""
    p = argparse.ArgumentParser(
        prog="benchmark world pretrain", description="Pretrain the embedded world's tiny CLIP on CPU."
    )
    p.add_argument("--minutes", type=float, default=45.0, help="wall-clock cap (training stops at it)")
    p.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="optimizer steps the cosine schedule spans; 0 = span the --minutes budget instead",
    )
    p.add_argument("--seed", type=int, default=0, help="model init, batch order and caption sampling")
    p.add_argument("--out", type=Path, default=CHECKPOINT, help="checkpoint path (.pt; JSON written beside it)")
    p.add_argument("--corpus-size", type=int, default=60000, help="pretraining images")
    p.add_argument("--corpus-seed", type=int, default=1, help="seed of the pretraining corpus")
    p.add_argument(
        "--corpus",
        choices=("generic", "rs"),
        default="generic",
        help="generic (the committed world_clip.pt) or rs: half the images through the four sensors"
        " (world_clip_rs.pt, the world's RS-pretrained CLIP; benchmark.world.corpus_rs)",
    )
    p.add_argument(
        "--cache-dir",
        type=str,  # not Path: Path("") is "." and could not mean "no cache"
        default=".cache/world-corpus",
        help="where the rendered corpus is cached ('' to disable)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="bf16 autocast (about 2x faster on CPUs with native bf16); auto picks it when the CPU has it",
    )
    p.add_argument("--log-every", type=int, default=50)
    return p.parse_args(argv)


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def _lr_factor(step: int, progress: float, warmup: int) -> float:
    """Warm-up then cosine; ``progress`` in [0, 1] is the share of the schedule done."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _batch(corpus, idx: np.ndarray, rng: np.random.Generator, context_length: int):
    """Augmented, normalised images and tokenized class-naming captions for corpus indices ``idx``."""
    import open_clip
    import torch

    from benchmark.world.corpus import corpus_caption

    imgs = corpus.images[idx]
    ks, flips = rng.integers(0, 4, len(idx)), rng.random(len(idx)) < 0.5
    imgs = np.stack([np.rot90(im[:, ::-1] if f else im, k) for im, k, f in zip(imgs, ks, flips)])
    x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    texts = [corpus_caption(int(corpus.labels[i]), corpus.facts[i], rng) for i in idx]
    return (x - mean) / std, open_clip.tokenize(texts, context_length=context_length)


def encode_text_trimmed(model, tokens):
    """``model.encode_text`` on sequences cut after the batch's last EOT (exact: the mask is causal).

    Captions are far shorter than the context length, so this saves a third of the text tower's work.
    """
    import torch

    n = int(tokens.argmax(-1).max()) + 1
    tokens = tokens[:, :n]
    x = model.token_embedding(tokens) + model.positional_embedding[:n]
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = x[torch.arange(len(tokens)), tokens.argmax(-1)]  # [B, width], EOT has the largest token id
    proj = model.text_projection
    return proj(x) if isinstance(proj, torch.nn.Module) else x @ proj


def pretrain(args: argparse.Namespace) -> dict:
    """Run the pretraining described by ``args`` and write the checkpoint; returns its JSON."""
    import torch
    import torch.nn.functional as F

    from benchmark.world.corpus import load_or_build_corpus
    from benchmark.world.corpus_rs import RS_CORPUS_MODULES, load_or_build_rs_corpus
    from benchmark.world.model import build_world_clip_untrained

    torch.set_num_threads(args.threads)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and cpu_has_bf16())
    log.info("pretraining in %s", "bf16 autocast" if bf16 else "fp32")
    cache = Path(args.cache_dir) if args.cache_dir else None
    rs = getattr(args, "corpus", "generic") == "rs"
    corpus = (load_or_build_rs_corpus if rs else load_or_build_corpus)(cache, args.corpus_size, args.corpus_seed)
    model = build_world_clip_untrained(args.seed, MODEL_CFG).train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or any(k in name for k in NO_DECAY_NAMES) else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    rng = np.random.default_rng([args.seed, 17])
    ctx = MODEL_CFG["text_cfg"]["context_length"]
    budget = args.minutes * 60
    order, pos, losses, step = rng.permutation(len(corpus.labels)), 0, [], 0
    t0 = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - t0
        if args.steps and step >= args.steps:
            break
        if elapsed >= budget:
            if args.steps:
                log.warning("time cap of %.1f min hit at step %d of %d", args.minutes, step, args.steps)
            break
        progress = step / args.steps if args.steps else elapsed / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * _lr_factor(step, progress, args.warmup)
        if pos + args.batch_size > len(order):
            order, pos = rng.permutation(len(corpus.labels)), 0
        images, tokens = _batch(corpus, order[pos : pos + args.batch_size], rng, ctx)
        pos += args.batch_size
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            img_f = F.normalize(model.encode_image(images).float(), dim=-1)
            txt_f = F.normalize(encode_text_trimmed(model, tokens).float(), dim=-1)
        scale = model.logit_scale.exp()
        logits = scale * img_f @ txt_f.T  # [B, B]
        target = torch.arange(len(logits))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        losses.append(loss.item())
        step += 1
        if step % args.log_every == 0:
            log.info(
                "step %d loss %.3f lr %.2e scale %.1f %.0f img/s",
                step,
                np.mean(losses[-args.log_every :]),
                opt.param_groups[0]["lr"],
                model.logit_scale.exp().item(),
                step * args.batch_size / (time.perf_counter() - t0),
            )
    wall = time.perf_counter() - t0
    recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out",)}
    recipe["precision"] = "bf16" if bf16 else "fp32"
    meta = {
        "model_cfg": MODEL_CFG,
        "corpus_digest": source_digest(RS_CORPUS_MODULES if rs else CORPUS_MODULES),
        "seed": args.seed,
        "recipe": recipe,
        "train_log": {
            "steps": step,
            "images_seen": step * args.batch_size,
            "final_loss": round(float(np.mean(losses[-FINAL_LOSS_WINDOW:])), 4) if losses else None,
            "wall_s": round(wall, 1),
            "logit_scale": round(model.logit_scale.exp().item(), 3),
        },
    }
    out = save_world_clip(model.eval(), args.out, meta)
    log.info("saved %s (%d steps, %.0f s, %.1f MB)", args.out, step, wall, out["bytes"] / 1e6)
    return out


def run_pretrain(argv: list[str] | None = None) -> int:
    """CLI entry point: parse ``argv``, pretrain, write the checkpoint. Returns the exit code."""
    pretrain(parse_args(argv))
    return 0
