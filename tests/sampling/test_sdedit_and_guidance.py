"""SDEdit (``sample(init=..., strength=...)``) and classifier guidance toward an emotion, with stand-in
networks whose answers are known."""

from __future__ import annotations

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.emotion_guidance import classifier_guidance, emotion_gradient, smooth_in_time

SAMPLERS = ["ddpm", "ddim", "dpmpp"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_strength_zero_gives_the_clip_back_and_one_is_free_generation(sampler):
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    init = torch.randn(1, 16, 4, generator=torch.Generator().manual_seed(1))

    def denoise(x, t):
        return 0.5 * x

    same = sample(diffusion, denoise, (2, 16, 4), sampler=sampler, steps=10, seed=3, init=init, strength=0.0)
    torch.testing.assert_close(same, init.expand(2, -1, -1))
    free = sample(diffusion, denoise, (2, 16, 4), sampler=sampler, steps=10, seed=3)
    full = sample(diffusion, denoise, (2, 16, 4), sampler=sampler, steps=10, seed=3, init=init, strength=1.0)
    torch.testing.assert_close(full, free)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_partial_strength_keeps_the_clip_in_proportion(sampler):
    """A denoiser that knows the data is ``target``: from the clip, low strength lands near the clip and
    full strength on the target; a perfect denoiser makes every strength > 0 end exactly on it."""
    diffusion = GaussianDiffusion(DiffusionConfig(100))
    init = torch.zeros(1, 20, 3)
    target = torch.ones(1, 20, 3)

    def blend(x, t):  # the prediction leans on x_t where noise is low: it keeps what the clip was
        abar = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float32)[t][:, None, None]
        return abar.sqrt() * x / abar.sqrt().clamp(min=1e-3) * abar + (1 - abar) * target

    dist = []
    for strength in (0.2, 0.5, 0.9):
        out = sample(diffusion, blend, (4, 20, 3), sampler=sampler, steps=20, seed=0, init=init,
                     strength=strength)  # fmt: skip
        assert out.shape == (4, 20, 3) and torch.isfinite(out).all()
        dist.append(float((out - init).abs().mean()))
    assert dist[0] < dist[1] < dist[2]
    exact = sample(diffusion, lambda x, t: target.expand_as(x), (2, 20, 3), sampler=sampler, steps=20, seed=0,
                   init=init, strength=0.5)  # fmt: skip
    torch.testing.assert_close(exact, target.expand(2, -1, -1), atol=1e-4, rtol=0)


def test_strength_out_of_range_is_refused():
    diffusion = GaussianDiffusion(DiffusionConfig(10))
    with pytest.raises(ConfigError, match="strength"):
        sample(diffusion, lambda x, t: x, (1, 8, 2), init=torch.zeros(1, 8, 2), strength=1.5)


class Linear(torch.nn.Module):
    """Logits = per-class weights . mean over real frames: the log-probability gradient is known."""

    def __init__(self, classes: int, dim: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(classes, dim, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1)
        return pooled @ self.w.T


def test_emotion_gradient_raises_the_target_and_respects_padding():
    net = Linear(4, 6)
    x0 = torch.randn(3, 12, 6, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([12, 8, 5])
    target = torch.tensor([1, 3, -1])
    affine = (torch.ones(6), torch.zeros(6))
    g = emotion_gradient(net, x0, target, lengths, affine, smooth_frames=3)
    assert g.shape == x0.shape
    assert torch.all(g[1, 8:] == 0) and torch.all(g[2] == 0)  # padded frames and unwanted rows
    rms = g[0].pow(2).mean().sqrt()
    torch.testing.assert_close(rms, torch.tensor(1.0), atol=1e-4, rtol=0)
    before = torch.log_softmax(net(x0, lengths), -1)
    after = torch.log_softmax(net(x0 + 0.1 * g, lengths), -1)
    assert after[0, 1] > before[0, 1] and after[1, 3] > before[1, 3]
    torch.testing.assert_close(after[2], before[2])


def test_smoothing_is_a_moving_average():
    g = torch.zeros(1, 9, 1)
    g[0, 4, 0] = 3.0
    out = smooth_in_time(g, 3)
    assert out[0, 3:6, 0].tolist() == pytest.approx([1.0, 1.0, 1.0]) and out.sum() == pytest.approx(3.0)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_guidance_steers_every_sampler(sampler):
    net = Linear(3, 4)
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    lengths = torch.tensor([16, 16])
    target = torch.tensor([0, 2])
    affine = (torch.ones(4), torch.zeros(4))

    def denoise(x, t):
        return 0.3 * x

    plain = sample(diffusion, denoise, (2, 16, 4), sampler=sampler, steps=10, seed=0)
    guided = sample(diffusion, classifier_guidance(denoise, net, target, lengths, affine, 0.5), (2, 16, 4),
                    sampler=sampler, steps=10, seed=0)  # fmt: skip
    p_plain = torch.softmax(net(plain, lengths), -1)[[0, 1], target]
    p_guided = torch.softmax(net(guided, lengths), -1)[[0, 1], target]
    assert torch.all(p_guided > p_plain)
