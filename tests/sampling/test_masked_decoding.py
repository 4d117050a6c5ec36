"""Iterative masked decoding: layout of the result, determinism per seed, diversity across seeds,
greedy and top-1 agree, the cosine schedule's number of passes, batched guidance, lengths."""

from __future__ import annotations

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.models.masked import MMM, mmm_config
from emomotion.models.vqvae import preset as vq_preset
from emomotion.sampling.masked import (
    MaskedDecodingConfig,
    decode_tokens,
    frames_to_tokens,
    generate_motion,
    inbetween_motion,
)
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


def test_fixed_tokens_stay_and_the_rest_is_decoded(model):
    t = model.cfg.trans
    fixed = torch.full((2, 12), -1, dtype=torch.long)
    fixed[:, :3] = torch.tensor([7, 8, 9])
    fixed[:, -2:] = torch.tensor([1, 2])
    ids = decode_tokens(model, text(2), [12, 12], MaskedDecodingConfig(steps=4), seed=0, fixed=fixed)
    assert torch.equal(ids[:, :3], fixed[:, :3]) and torch.equal(ids[:, 10:12], fixed[:, -2:])
    assert bool((ids[:, 3:10] < t.num_codes).all()) and bool((ids[:, 12] == t.end_id).all())
    free = torch.full((2, 12), -1, dtype=torch.long)  # nothing fixed: the plain decoding exactly
    cfg = MaskedDecodingConfig(steps=4)
    assert torch.equal(decode_tokens(model, text(2), [12, 12], cfg, seed=0, fixed=free),
                       decode_tokens(model, text(2), [12, 12], cfg, seed=0))  # fmt: skip
    with pytest.raises(ConfigError, match="beyond"):
        decode_tokens(model, text(2), [12, 5], cfg, fixed=fixed)
    with pytest.raises(ConfigError, match="codes"):
        decode_tokens(model, text(2), [12, 12], cfg, fixed=fixed * 100)


def test_inbetween_keeps_the_given_frames_exactly(model):
    source = torch.randn(50, 263, generator=torch.Generator().manual_seed(1))
    motion, ids = inbetween_motion(model, text(2), source, 10, 8, MaskedDecodingConfig(steps=3), seed=0)
    assert motion.shape == (2, 48, 263) and ids.shape == (2, 13)
    assert torch.equal(motion[:, :10], source[None, :10].expand(2, -1, -1))
    assert torch.equal(motion[:, 40:], source[None, 40:48].expand(2, -1, -1))
    codes = model.vq.encode(source[None, :48])[0]
    assert torch.equal(ids[:, :3], codes[:3].expand(2, -1)) and torch.equal(
        ids[:, 10:12], codes[10:].expand(2, -1)
    )
    assert not torch.equal(motion[:, 12:40], model.vq.decode(codes[None])[0, 12:40].expand(2, -1, -1))
    with pytest.raises(ConfigError, match="nothing to generate"):
        inbetween_motion(model, text(1), source, 24, 24)
