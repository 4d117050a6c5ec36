"""Diffusion schedules and samplers, checked on a Gaussian data distribution whose optimal x0
denoiser is known in closed form: every sampler must reproduce the data mean and spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, betas_for, ddpm_step, sample

MU, SIGMA = 1.5, 0.4


def gaussian_denoiser(diffusion: GaussianDiffusion):
    abar = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float32)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = abar[t][:, None, None]
        # E[x0 | x_t] for x0 ~ N(mu, sigma^2): posterior of a linear Gaussian observation
        gain = SIGMA**2 * a.sqrt() / (a * SIGMA**2 + 1 - a)
        return MU + gain * (x - a.sqrt() * MU)

    return denoise


def test_schedules_match_diffusers():
    from diffusers import DDPMScheduler

    cos = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").betas.numpy()
    np.testing.assert_allclose(betas_for(DiffusionConfig(1000, "cosine")), cos, atol=1e-7)
    lin = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").betas.numpy()
    np.testing.assert_allclose(betas_for(DiffusionConfig(1000, "linear")), lin, atol=1e-7)


def test_q_sample_moments():
    d = GaussianDiffusion(DiffusionConfig(100))
    x0 = torch.full((4000, 1, 1), 2.0)
    t = torch.full((4000,), 60, dtype=torch.long)
    xt = d.q_sample(x0, t, torch.randn(4000, 1, 1, generator=torch.Generator().manual_seed(0)))
    abar = d.alphas_cumprod[60]
    assert xt.mean().item() == pytest.approx(2 * math.sqrt(abar), abs=0.05)
    assert xt.std().item() == pytest.approx(math.sqrt(1 - abar), abs=0.05)


# Few-step ancestral sampling with the fixed small variance, fed the posterior *mean* of x0, leaves
# out Var[x0 | x_t] and under-disperses (a property of the method, not of the code; 10-step DDIM
# likewise), so those rows get a looser spread bound.
@pytest.mark.parametrize(
    ("sampler", "train_steps", "steps", "spread"),
    [
        ("ddpm", 1000, None, 0.06),
        ("ddpm", 1000, 50, 0.12),
        ("ddpm", 50, None, 0.12),
        ("ddim", 1000, 50, 0.06),
        ("ddim", 1000, 10, 0.25),
        ("dpmpp", 1000, 20, 0.06),
        ("dpmpp", 50, 50, 0.12),  # every trained step: the default spacing visited one twice (NaN)
    ],
)
def test_samplers_reproduce_the_data_distribution(sampler, train_steps, steps, spread):
    d = GaussianDiffusion(DiffusionConfig(train_steps))
    x = sample(d, gaussian_denoiser(d), (2000, 2, 1), sampler=sampler, steps=steps, seed=0)
    assert x.mean().item() == pytest.approx(MU, abs=0.03)
    assert x.std().item() == pytest.approx(SIGMA, rel=spread)


def test_ddpm_step_equals_diffusers_at_full_steps():
    from diffusers import DDPMScheduler

    d = GaussianDiffusion(DiffusionConfig(1000))
    ref = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        variance_type="fixed_small",
        clip_sample=False,
    )
    ref.set_timesteps(1000)
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    x0 = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(2))
    for t in (999, 500, 50):  # near t = 0 diffusers loses digits to float32 cancellation in 1 - abar
        theirs = ref.step(x0, t, x, generator=torch.Generator().manual_seed(3)).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
        abar = d.alphas_cumprod
        ours = ddpm_step(x, x0, abar[t], abar[t - 1], noise)
        torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)


def test_samplers_are_deterministic_and_validate():
    d = GaussianDiffusion(DiffusionConfig(50))
    den = gaussian_denoiser(d)
    for name in ("ddpm", "ddim", "dpmpp"):
        a = sample(d, den, (3, 5, 2), sampler=name, steps=10, seed=7)
        assert torch.equal(a, sample(d, den, (3, 5, 2), sampler=name, steps=10, seed=7))
    with pytest.raises(ConfigError, match="trained steps"):
        sample(d, den, (1, 2, 2), steps=51)
    with pytest.raises(ConfigError, match="unknown sampler"):
        sample(d, den, (1, 2, 2), sampler="euler")


def test_mask_zeroes_padding():
    d = GaussianDiffusion(DiffusionConfig(20))
    mask = torch.tensor([[True, True, False]])
    x = sample(d, gaussian_denoiser(d), (1, 3, 2), mask=mask, seed=0)
    assert (x[0, 2] == 0).all() and (x[0, :2] != 0).all()


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp"])
def test_noise_scale_narrows_a_deterministic_sampler_in_proportion(sampler):
    # the Gaussian denoiser's probability-flow ODE is affine in x_T, so scaled starting noise scales the
    # spread around the mean and leaves the mean alone
    d = GaussianDiffusion(DiffusionConfig(1000))
    full = sample(d, gaussian_denoiser(d), (2000, 2, 1), sampler=sampler, steps=50, seed=0)
    narrow = sample(d, gaussian_denoiser(d), (2000, 2, 1), sampler=sampler, steps=50, seed=0, noise_scale=0.6)
    assert narrow.mean().item() == pytest.approx(MU, abs=0.03)
    assert narrow.std().item() / full.std().item() == pytest.approx(0.6, rel=0.03)


def test_noise_scale_is_validated_and_leaves_a_restyle_alone():
    d = GaussianDiffusion(DiffusionConfig(50))
    den = gaussian_denoiser(d)
    for bad in (0.0, -1.0, 2.5):
        with pytest.raises(ConfigError, match="noise scale"):
            sample(d, den, (1, 2, 2), noise_scale=bad)
    init = torch.full((1, 4, 2), 0.5)
    kw = {"sampler": "ddim", "steps": 20, "seed": 3, "init": init, "strength": 0.5}
    assert torch.equal(sample(d, den, (1, 4, 2), **kw), sample(d, den, (1, 4, 2), noise_scale=0.5, **kw))
