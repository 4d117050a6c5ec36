"""Gaussian diffusion with x0 prediction, as MDM trains it, and its samplers.

Schedules: ``cosine`` (Nichol & Dhariwal 2021; MDM's default, diffusers' ``squaredcos_cap_v2``) and
``linear`` (Ho et al. 2020, scaled to the step count). Samplers, one registry:

- ``ddpm``: ancestral sampling with the fixed small (posterior) variance. With fewer steps than
  trained it runs on an evenly spaced subset of the trained timesteps (respacing, Nichol &
  Dhariwal), which at full steps is exactly MDM's sampler;
- ``ddim``: deterministic DDIM (Song et al. 2021), eta = 0 unless given;
- ``dpmpp``: DPM-Solver++ multistep (Lu et al. 2022) through diffusers' scheduler.

A sampler calls ``denoise(x_t (B,T,F), t (B,) long) -> x0 (B,T,F)``: guidance, conditioning and
the network live in that callable (see :func:`classifier_free_guidance`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from emomotion.errors import ConfigError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DiffusionConfig:
    steps: int = 1000
    schedule: Literal["cosine", "linear"] = "cosine"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"diffusion steps must be >= 1, got {self.steps}")
        if self.schedule not in ("cosine", "linear"):
            raise ConfigError(f"schedule must be cosine or linear, not {self.schedule!r}")


def betas_for(cfg: DiffusionConfig) -> np.ndarray:
    """(steps,) float64 noise schedule."""
    n = cfg.steps
    if cfg.schedule == "linear":
        scale = 1000.0 / n
        return np.linspace(scale * 1e-4, scale * 0.02, n, dtype=np.float64)
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return np.array([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=np.float64)


class GaussianDiffusion:
    """Forward process and the quantities samplers need (float64, on the CPU; cast when used)."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        self.cfg = cfg
        self.betas = betas_for(cfg)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)

    @property
    def num_steps(self) -> int:
        return self.cfg.steps

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noise x0 (B, T, F) to timesteps t (B,)."""
        abar = torch.as_tensor(self.alphas_cumprod, device=x0.device, dtype=torch.float64)[t].to(x0.dtype)
        return abar.sqrt()[:, None, None] * x0 + (1 - abar).sqrt()[:, None, None] * noise

    def timesteps(self, steps: int | None) -> np.ndarray:
        """Evenly spaced trained timesteps, ascending, always including 0 and the last one."""
        n = self.num_steps if steps is None else steps
        if not 1 <= n <= self.num_steps:
            raise ConfigError(f"sampling steps must be in [1, {self.num_steps}] (the trained steps), got {n}")
        if n == self.num_steps:
            return np.arange(n)
        return np.unique(np.linspace(0, self.num_steps - 1, n).round().astype(np.int64))


def _noise(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    return torch.randn(
        shape, generator=generator, device=generator.device if generator else device, dtype=dtype
    ).to(device)


def _apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask[..., None].to(x.dtype)


def ddpm_step(
    x: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float, noise: torch.Tensor | None
) -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} given the predicted x0, with the fixed small (posterior) variance."""
    beta = 1.0 - abar_t / abar_prev
    coef_x0 = math.sqrt(abar_prev) * beta / (1.0 - abar_t)
    coef_xt = math.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar_t)
    out = coef_x0 * x0 + coef_xt * x
    if noise is not None:
        out = out + math.sqrt(beta * (1.0 - abar_prev) / (1.0 - abar_t)) * noise
    return out


def _reverse(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    x: torch.Tensor,
    steps: int | None,
    mask: torch.Tensor | None,
    step: Callable[[torch.Tensor, torch.Tensor, float, float, bool], torch.Tensor],
    run: int | None = None,
) -> torch.Tensor:
    """The reverse loop shared by DDPM and DDIM over the (respaced) timesteps, last to first;
    ``step(x_t, x0, abar_t, abar_prev, last)`` moves one step. ``run`` < the step count starts
    part-way (SDEdit): ``x`` is then noised to the ``run``-th lowest timestep."""
    ts = diffusion.timesteps(steps)
    abar = diffusion.alphas_cumprod[ts]
    first = len(ts) if run is None else run
    for k in range(first - 1, -1, -1):
        t = torch.full((x.shape[0],), int(ts[k]), device=x.device, dtype=torch.long)
        x0 = denoise(x, t)
        x = _apply_mask(step(x, x0, float(abar[k]), float(abar[k - 1]) if k > 0 else 1.0, k == 0), mask)
    return x


@torch.no_grad()
def sample_ddpm(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    x: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None,
    mask: torch.Tensor | None = None,
    eta: float = 1.0,
    run: int | None = None,
) -> torch.Tensor:
    del eta

    def step(x: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float, last: bool) -> torch.Tensor:
        noise = None if last else _noise(tuple(x.shape), generator, x.device, x.dtype)
        return ddpm_step(x, x0, abar_t, abar_prev, noise)

    return _reverse(diffusion, denoise, x, steps, mask, step, run)


@torch.no_grad()
def sample_ddim(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    x: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None,
    mask: torch.Tensor | None = None,
    eta: float = 0.0,
    run: int | None = None,
) -> torch.Tensor:
    def step(x: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float, last: bool) -> torch.Tensor:
        eps = (x - math.sqrt(abar_t) * x0) / math.sqrt(1.0 - abar_t)
        sigma = 0.0 if last else eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
        out = math.sqrt(abar_prev) * x0 + math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            out = out + sigma * _noise(tuple(x.shape), generator, x.device, x.dtype)
        return out

    return _reverse(diffusion, denoise, x, steps, mask, step, run)


@torch.no_grad()
def sample_dpmpp(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    x: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None,
    mask: torch.Tensor | None = None,
    eta: float = 0.0,
    run: int | None = None,
) -> torch.Tensor:
    del eta
    scheduler = _dpmpp_scheduler(diffusion, steps, x.device)
    timesteps = scheduler.timesteps
    if run is not None and run < len(timesteps):  # SDEdit: the last ``run`` steps only
        scheduler.set_begin_index(len(timesteps) - run)
        timesteps = timesteps[len(timesteps) - run :]
    for t in timesteps:
        tt = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        x0 = denoise(x, tt)
        x = scheduler.step(x0, t, x).prev_sample
        x = _apply_mask(x, mask)
    return x


MAX_NOISE_SCALE = 2.0  # the starting noise's sd, at most
Sampler = Callable[..., torch.Tensor]
SAMPLERS: dict[str, Sampler] = {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp": sample_dpmpp}


def _dpmpp_scheduler(
    diffusion: GaussianDiffusion, steps: int | None, device: torch.device | str = "cpu"
) -> Any:
    """diffusers' DPM-Solver++ (2nd order, x0 prediction) on ``diffusion``'s betas, set to ``steps``
    (default: at most 20). At every trained step (``steps`` = the trained count) the timesteps are all
    of them, last to first: diffusers' default spacing would visit one twice (a zero-length step,
    whose update divides by zero)."""
    from diffusers import DPMSolverMultistepScheduler

    n = steps or min(diffusion.num_steps, 20)
    diffusion.timesteps(n)  # validates the range
    every = n >= diffusion.num_steps
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=diffusion.num_steps,
        trained_betas=diffusion.betas.astype(np.float32),
        prediction_type="sample",
        algorithm_type="dpmsolver++",
        solver_order=2,
        lower_order_final=True,
        timestep_spacing="trailing" if every else "linspace",
    )
    scheduler.set_timesteps(n, device=device)
    return scheduler


def sampling_timesteps(diffusion: GaussianDiffusion, sampler: str, steps: int | None) -> np.ndarray:
    """The trained timesteps a sampler visits, first (noisiest) to last."""
    if sampler == "dpmpp":
        return np.asarray(_dpmpp_scheduler(diffusion, steps).timesteps, dtype=np.int64)
    return diffusion.timesteps(steps)[::-1]


def sample(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    shape: tuple[int, int, int],
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    seed: int | None = 0,
    device: torch.device | str = "cpu",
    mask: torch.Tensor | None = None,
    eta: float | None = None,
    init: torch.Tensor | None = None,
    strength: float = 1.0,
    noise_scale: float = 1.0,
) -> torch.Tensor:
    """Draw x0 samples (B, T, F) from noise; deterministic for a seed.

    ``noise_scale`` < 1 starts free generation from narrower noise (the truncation trick): with a
    deterministic sampler (DDIM, DPM++) the samples gather toward the model's typical motion, trading
    diversity for fidelity. It does not touch the noise of a restyle (``init``) or of stochastic steps.

    With ``init`` (B or 1, T, F), SDEdit (Meng et al. 2022): ``init`` is noised to the level that leaves
    ``strength`` of the sampler's steps (0 returns it unchanged, 1 is free generation) and denoised
    from there, so the result keeps ``init``'s coarse structure in proportion to ``1 - strength``.
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be in [0, 1], got {strength:g}")
    device = torch.device(device)
    generator = torch.Generator("cpu").manual_seed(seed) if seed is not None else None
    if not 0.0 < noise_scale <= MAX_NOISE_SCALE:
        raise ConfigError(f"noise scale must be in (0, {MAX_NOISE_SCALE:g}], got {noise_scale:g}")
    x = _noise(shape, generator, device, torch.float32)
    kwargs: dict[str, object] = {} if eta is None else {"eta": eta}
    if init is not None:
        timesteps = sampling_timesteps(diffusion, sampler, steps)
        total = len(timesteps)
        run = round(strength * total)
        init = init.to(device=device, dtype=torch.float32).expand(shape)
        if run == 0:
            return _apply_mask(init.clone(), mask)
        if run < total:
            t0 = int(timesteps[total - run])  # the last ``run`` steps start here
            x = diffusion.q_sample(init, torch.full((shape[0],), t0, device=device, dtype=torch.long), x)
            kwargs["run"] = run
    elif noise_scale != 1.0:
        x = x * noise_scale
    x = _apply_mask(x, mask)
    return SAMPLERS[sampler](diffusion, denoise, x, steps, generator, mask, **kwargs)
