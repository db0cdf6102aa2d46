"""Every registered method, through the same checks, on a random tiny CLIP (no downloads).

The checks are `benchmark.testing.CONTRACT`, the same a plugin author runs on a plugin method.
"""

import pytest
import torch

from benchmark.registry import METHODS
from benchmark.testing import CONTRACT


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", METHODS.names())
def test_method_keeps_the_contract(name, check, tiny_clip):
    check(name, tiny_clip)


def test_coop_middle_and_front_place_class_tokens(tiny_clip):
    from methods.coop import CoOp, CoOpConfig

    for position in ("middle", "front"):
        method = CoOp(tiny_clip, CoOpConfig(n_ctx=4, class_token_position=position), ["dense residential"])
        prompts = method.build_prompts()[0]
        emb = method.prompts.embeddings[0]
        name_len = method.prompts.name_lens[0]
        names = emb[5 : 5 + name_len]
        start = 3 if position == "middle" else 1
        assert torch.equal(prompts[start : start + name_len], names)
        assert torch.equal(prompts[5 + name_len :], emb[5 + name_len : prompts.shape[0]])


def test_coop_class_specific_context_is_rejected_for_unseen_classes():
    from methods.coop import CoOp, CoOpConfig

    assert CoOp.config_transfer_error(CoOpConfig(csc=True))
    assert CoOp.config_transfer_error(CoOpConfig(csc=True, ctx_init="a photo of a")) is None
