"""Iterative masked decoding: layout of the result, determinism per seed, diversity across seeds,
greedy and top-1 agree, the cosine schedule's number of passes, batched guidance, lengths."""

from __future__ import annotations

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.models.masked import MMM, mmm_config
from emomotion.models.vqvae import preset as vq_preset
from emomotion.sampling.masked import MaskedDecodingConfig, decode_tokens, frames_to_tokens, generate_motion
from emomotion.text.base import TextEmbedding

TEXT_DIM = 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> MMM:
    torch.manual_seed(0)
    m = MMM(mmm_config(vq_preset("tiny"), "tiny", text_dim=TEXT_DIM))
    m.vq.quantizer.codebook.normal_()
    m.vq.quantizer.initted.fill_(True)
    return m.eval()


def text(b: int) -> TextEmbedding:
    g = torch.Generator().manual_seed(0)
    return TextEmbedding(
        torch.randn(b, TEXT_DIM, generator=g),
        torch.randn(b, 4, TEXT_DIM, generator=g),
        torch.ones(b, 4, dtype=torch.bool),
    )


def test_layout_codes_then_end_then_pad(model):
    ids = decode_tokens(model, text(3), [5, 12, 1], MaskedDecodingConfig(steps=4), seed=0)
    t = model.cfg.trans
    assert ids.shape == (3, 13)
    for row, n in zip(ids, [5, 12, 1], strict=True):
        assert bool((row[:n] < t.num_codes).all()) and int(row[n]) == t.end_id
        assert bool((row[n + 1 :] == t.pad_id).all())


def test_deterministic_for_a_seed_and_diverse_across_seeds(model):
    cfg = MaskedDecodingConfig(steps=5, temperature=1.0)
    a = decode_tokens(model, text(2), [20, 20], cfg, seed=1)
    assert torch.equal(a, decode_tokens(model, text(2), [20, 20], cfg, seed=1))
    assert not torch.equal(a, decode_tokens(model, text(2), [20, 20], cfg, seed=2))


def test_greedy_ignores_the_seed_and_equals_top_1(model):
    greedy = MaskedDecodingConfig(steps=5, temperature=0.0)
    a = decode_tokens(model, text(2), [20, 20], greedy, seed=1)
    assert torch.equal(a, decode_tokens(model, text(2), [20, 20], greedy, seed=2))
    top1 = decode_tokens(model, text(2), [20, 20], MaskedDecodingConfig(steps=5, top_k=1), seed=3)
    assert torch.equal(a, top1)


def calls(model: MMM) -> list[int]:
    """Batch size of every transformer call (recorded by a hook)."""
    seen: list[int] = []
    model.trans.register_forward_hook(lambda _m, args, _o: seen.append(int(args[0].shape[0])))
    return seen


def test_schedule_and_batched_guidance():
    torch.manual_seed(0)
    m = MMM(mmm_config(vq_preset("tiny"), "tiny", text_dim=TEXT_DIM)).eval()
    seen = calls(m)
    decode_tokens(m, text(2), [40, 40], MaskedDecodingConfig(steps=10), seed=0)
    assert seen == [2] * 10  # one pass per step, every token fixed at the last
    seen.clear()
    decode_tokens(m, text(2), [40, 40], MaskedDecodingConfig(steps=1, guidance=3.0), seed=0)
    assert seen == [4]  # conditional and unconditional passes in one call
    seen.clear()
    decode_tokens(m, text(1), [3], MaskedDecodingConfig(steps=10), seed=0)
    assert len(seen) <= 3  # at least one token fixed per step: a short clip needs few passes


def test_guidance_changes_the_result(model):
    plain = decode_tokens(model, text(2), [20, 20], MaskedDecodingConfig(temperature=0.0), seed=0)
    guided = decode_tokens(
        model, text(2), [20, 20], MaskedDecodingConfig(temperature=0.0, guidance=4.0), seed=0
    )
    assert not torch.equal(plain, guided)


def test_motion_length_in_frames(model):
    motion, ids = generate_motion(model, text(2), 62, MaskedDecodingConfig(steps=3), seed=0)
    assert motion.shape == (2, 60, 263) and ids.shape == (2, 16)
    with pytest.raises(ConfigError, match="frames"):
        frames_to_tokens(model, 3)
    with pytest.raises(ConfigError, match="frames"):
        frames_to_tokens(model, 4 * 50)
    with pytest.raises(ConfigError, match="steps"):
        MaskedDecodingConfig(steps=0)
