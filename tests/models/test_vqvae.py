"""The motion VQ-VAE: official layout, shapes for every quantizer, the official loss, saved EMA state,
and that the tiny preset overfits one clip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from emomotion.errors import ConfigError
from emomotion.models.quantizers import EMAResetQuantizer
from emomotion.models.vqvae import VQVAE, VQVAEConfig, build_from_config, preset, vq_loss


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_clip(frames: int = 64, seed: int = 0) -> torch.Tensor:
    """(1, T, 263) smooth unit-scale signals, like normalised motion features."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)[:, None] / 20.0
    freq = torch.rand(1, 263, generator=g) * 2.0 + 0.2
    phase = torch.rand(1, 263, generator=g) * 2 * math.pi
    return torch.sin(2 * math.pi * freq * t + phase)[None]


@pytest.mark.parametrize("quantizer", ["ema_reset", "kmeans", "residual", "fsq"])
def test_shapes_for_every_quantizer(quantizer):
    cfg = preset("tiny", quantizer=quantizer, num_quantizers=3 if quantizer == "residual" else 1)
    model = VQVAE(cfg)
    x = torch.randn(2, 66, 263)  # 66 frames: the last 2 do not fill a token
    recon, commit, perplexity = model(x)
    assert recon.shape == (2, 64, 263) and commit.ndim == 0 and perplexity.ndim == 0
    model.eval()
    tokens = model.encode(x)
    assert tokens.dtype == torch.long
    assert tokens.shape == ((2, 16, 3) if quantizer == "residual" else (2, 16))
    assert int(tokens.max()) < cfg.codebook_size
    assert model.decode(tokens).shape == (2, 64, 263)


def test_official_key_layout_and_dilations():
    cfg = VQVAEConfig(num_codes=32, code_dim=8, width=16, depth=3, down_t=2)
    model = VQVAE(cfg)
    state = model.state_dict()
    assert state["quantizer.codebook"].shape == (32, 8)
    assert state["encoder.model.0.weight"].shape == (16, 263, 3)
    assert state["encoder.model.2.0.weight"].shape == (16, 16, 4)  # stride-2 downsampling
    assert state["encoder.model.4.weight"].shape == (8, 16, 3)
    assert state["decoder.model.0.weight"].shape == (16, 8, 3)
    assert state["decoder.model.2.2.weight"].shape == (16, 16, 3)
    assert state["decoder.model.6.weight"].shape == (263, 16, 3)
    for prefix in ("encoder.model.2.1", "decoder.model.3.0"):
        dil = [model.get_submodule(f"{prefix}.model.{i}.conv1").dilation[0] for i in range(3)]
        assert dil == [9, 3, 1]
    for name in ("code_sum", "code_count", "initted"):
        assert f"quantizer.{name}" in state
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_loss_is_the_official_objective():
    torch.manual_seed(0)
    model = VQVAE(preset("tiny"))
    x = smooth_clip()
    model.train()
    model(x)  # initialises the codebook
    model.eval()  # no codebook update: the loss can be recomputed by hand
    loss, parts = vq_loss(model, x)
    recon, commit, _ = model(x)
    expected = (
        F.smooth_l1_loss(recon, x) + 0.02 * commit + 0.5 * F.smooth_l1_loss(recon[..., 4:67], x[..., 4:67])
    )
    assert torch.allclose(loss, expected, atol=1e-6)
    assert parts["commit"] == pytest.approx(float(commit.detach()), rel=1e-5)


def test_padded_frames_do_not_count():
    torch.manual_seed(0)
    model = VQVAE(preset("tiny")).train()
    x = smooth_clip(64)
    mask = torch.zeros(1, 64, dtype=torch.bool)
    mask[:, :32] = True  # 8 real tokens of 16
    model.quantize_motion(x, mask)  # initialises the codebook: code_count = 1 everywhere
    before = float(model.quantizer.code_count.sum())
    model.quantize_motion(x, mask)
    mu = model.cfg.mu
    assert float(model.quantizer.code_count.sum()) == pytest.approx(mu * before + (1 - mu) * 8, rel=1e-5)
    model.eval()
    y = x.clone()
    y[:, 32:] *= 5.0  # padding unlike the clip
    _, parts = vq_loss(model, y, mask)
    recon, _, _ = model(y)
    assert parts["recon"] == pytest.approx(float(F.smooth_l1_loss(recon[:, :32], y[:, :32])), rel=1e-5)
    assert parts["recon"] < 0.5 * float(F.smooth_l1_loss(recon, y))


def test_ema_state_is_saved_and_not_reinitialised(monkeypatch):
    torch.manual_seed(0)
    model = VQVAE(preset("tiny")).train()
    for _ in range(3):
        model(smooth_clip(seed=1))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert bool(state["quantizer.initted"]) and float(state["quantizer.code_count"].sum()) > 0
    fresh = build_from_config(preset("tiny").__dict__).train()
    fresh.load_state_dict(state)

    def no_init(*_: object) -> None:
        raise AssertionError("a trained codebook was re-initialised")

    monkeypatch.setattr(EMAResetQuantizer, "_init_codebook", no_init)
    fresh(smooth_clip(seed=2))  # a fine-tuning step: EMA update from the saved state
    moved = (fresh.quantizer.codebook - state["quantizer.codebook"]).abs().max()
    assert 0 < moved < 10 and fresh.quantizer.reset_count == state["quantizer.reset_count"] + 1


def test_library_quantizer_state_is_saved():
    torch.manual_seed(0)
    model = VQVAE(preset("tiny", quantizer="kmeans")).train()
    model(torch.randn(4, 64, 263))
    state = model.state_dict()
    assert bool(state["quantizer.vq._codebook.initted"])
    fresh = VQVAE(preset("tiny", quantizer="kmeans"))
    fresh.load_state_dict(state)
    x = torch.randn(1, 32, 263)
    assert torch.equal(fresh.eval().encode(x), model.eval().encode(x))


def test_tiny_overfits_one_clip():
    """200 Adam steps on one 64-frame clip: reconstruction mean |error| below 0.08 (features of
    unit scale; an untrained model is at ~0.64, this one reaches ~0.04)."""
    torch.manual_seed(0)
    model = VQVAE(preset("tiny")).train()
    x = smooth_clip()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(200):
        loss, _ = vq_loss(model, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    err = (model.decode(model.encode(x)) - x).abs().mean()
    assert err < 0.08, float(err)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="quantizer"):
        VQVAEConfig(quantizer="lfq-ish")
    with pytest.raises(ConfigError, match="residual"):
        VQVAEConfig(quantizer="residual", num_quantizers=1)
    with pytest.raises(ConfigError, match="preset"):
        preset("huge")
    assert VQVAEConfig(quantizer="fsq", fsq_levels=[8, 5, 5, 5]).codebook_size == 1000  # type: ignore[arg-type]
