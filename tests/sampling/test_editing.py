"""MDM in-betweening: the kept frames come out exactly as given from every sampler (they step from
the clean-motion prediction, which is overwritten there), the rest is generated."""

from __future__ import annotations

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.editing import inpaint, keep_mask


def test_keep_mask():
    keep = keep_mask(10, 3, 2)
    assert keep.tolist() == [True] * 3 + [False] * 5 + [True] * 2
    assert keep_mask(10, 0, 0).sum() == 0
    with pytest.raises(ConfigError, match="nothing to generate"):
        keep_mask(10, 6, 4)
    with pytest.raises(ConfigError):
        keep_mask(10, -1, 0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp"])
def test_kept_frames_come_out_exactly(sampler):
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    known = torch.randn(1, 24, 5, generator=torch.Generator().manual_seed(0))
    keep = keep_mask(24, 6, 4)

    def denoise(x, t):  # a stand-in network: shrinks its input, never predicts the known frames
        return 0.5 * x

    x = sample(diffusion, inpaint(denoise, known, keep), (3, 24, 5), sampler=sampler, steps=10, seed=0)
    torch.testing.assert_close(x[:, keep], known[:, keep].expand(3, -1, -1), atol=1e-5, rtol=0)
    assert (x[:, ~keep] - known[:, ~keep]).abs().mean() > 0.1
