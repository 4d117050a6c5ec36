"""The collapse diagnosis: known values of its statistics, and that it flags a deliberately collapsed
model (one code, a still pose) and not generations that are the data's own tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.configs import dataclass_from
from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.evaluation.diagnose import (
    diagnose_mmm,
    diagnose_tokens,
    js_divergence,
    longest_run,
    reconstruction_stats,
    token_stats,
)
from emomotion.features import joints_to_features, recover_joints
from emomotion.models.evaluator import Evaluator
from emomotion.models.evaluator import preset as evaluator_preset
from emomotion.models.masked import MMM, mmm_config
from emomotion.models.vqvae import VQVAEConfig
from emomotion.sampling.masked import MaskedDecodingConfig
from emomotion.text.base import TextEncoder, TextEncoderSpec
from emomotion.training.config import TrainConfig
from emomotion.training.vq import VQRun, run_vq


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class HashTextEncoder(TextEncoder):
    """A deterministic stand-in text encoder (8-d), so the test needs no language model."""

    dim = 8

    def _encode(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for text in texts:
            g = torch.Generator().manual_seed(sum(map(ord, text)))
            out.append((torch.randn(self.dim, generator=g), torch.randn(3, self.dim, generator=g)))
        return out


def test_statistics_known_values():
    assert longest_run(np.array([1, 1, 2, 2, 2, 3])) == 3 and longest_run(np.array([5])) == 1
    stats = token_stats([np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0])], num_codes=8)
    assert (
        stats.used_codes == 4
        and stats.usage == 0.5
        and stats.longest_run == 2.5
        and stats.longest_run_max == 4
    )
    assert stats.unique_per_clip == 2.5
    p = np.array([5, 1, 1, 1]) / 8
    assert stats.perplexity == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < js_divergence([1, 1], [3, 1]) < 1


@pytest.fixture(scope="module")
def setup(synthetic_train_set, tmp_path_factory) -> tuple[MMM, MotionDataset]:
    data = synthetic_train_set
    train = TrainConfig(steps=150, batch_size=8, lr=2e-3, ema_decay=0.0, save_every=150)
    ckpt = load_checkpoint(run_vq(VQRun(data, tmp_path_factory.mktemp("vq"), train=train)))
    model = MMM(mmm_config(dataclass_from(VQVAEConfig, ckpt.config), "tiny", text_dim=HashTextEncoder.dim))
    model.vq.load_state_dict(ckpt.model_state)
    dataset = MotionDataset(DatasetConfig(data, random_crop=False))
    dataset.mean, dataset.std = ckpt.mean.numpy(), ckpt.std.numpy()
    return model.eval(), dataset


def test_real_tokens_are_healthy(setup, tmp_path):
    model, dataset = setup
    real = [
        model.vq.encode(torch.from_numpy((np.load(p) - dataset.mean) / dataset.std).float()[None])[0]
        for p in [dataset.root / "new_joint_vecs" / f"{i}.npy" for i in dataset.ids]
    ]
    report = diagnose_tokens(model.vq, dataset, real, num_codes=64, out=tmp_path)
    assert report.js_divergence == pytest.approx(0.0, abs=1e-9)
    assert report.generated.perplexity == pytest.approx(report.data.perplexity)
    assert report.static_rate <= 0.2 and not report.collapsed
    assert 0 < report.recon_l1 < 1.0 and report.recon_mpjpe < 0.5 and 0 < report.recon_mpjpe_aligned < 0.5
    assert "no collapse" in report.describe()
    for plot in report.plots:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_collapsed_model_is_flagged(setup, tmp_path):
    model, dataset = setup
    collapsed = MMM(model.cfg)
    collapsed.load_state_dict(model.state_dict())
    code = 7
    first = recover_joints(np.load(dataset.root / "new_joint_vecs" / f"{dataset.ids[0]}.npy"))[:1]
    still = (joints_to_features(np.repeat(first, 10, axis=0))[0] - dataset.mean) / dataset.std  # (263,)
    with torch.no_grad():
        head = collapsed.trans.trans_head
        head.ln_f.weight.zero_()
        head.ln_f.bias.fill_(1.0)
        head.head.weight.zero_()
        head.head.weight[code] = 1.0  # every position predicts `code`, whatever the text
        last = collapsed.vq.decoder.model[-1]
        last.weight.zero_()  # ... which decodes to a still pose
        last.bias.copy_(torch.from_numpy(still.astype(np.float32)))
    report = diagnose_mmm(
        collapsed.eval(),
        dataset,
        HashTextEncoder(TextEncoderSpec("hash")),
        decoding=MaskedDecodingConfig(steps=4),
        num_generations=8,
        out=tmp_path,
        cache_dir=tmp_path / "cache",
    )
    assert report.generated.used_codes == 1 and report.generated.perplexity == pytest.approx(1.0)
    assert report.generated.unique_per_clip == 1.0 and report.data.perplexity > 4
    assert report.generated.longest_run == pytest.approx(np.mean(np.minimum(dataset.lengths[:8] // 4, 49)))
    assert report.static_rate == 1.0 and report.js_divergence > 0.5 and report.collapsed
    assert "COLLAPSED" in report.describe()
    saved = report.save(tmp_path)
    assert saved.is_file() and (tmp_path / "diagnose.txt").read_text().startswith("codebook")


class IdentityVQ(torch.nn.Module):
    """A stand-in tokenizer whose "tokens" are the motion itself, plus ``noise`` when decoding."""

    def __init__(self, noise: float) -> None:
        super().__init__()
        self.noise = noise
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a device to read

    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        return motion

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return tokens + self.noise * torch.randn(tokens.shape, generator=g)


def test_reconstruction_stats_and_fid(setup):
    _, dataset = setup
    torch.manual_seed(0)
    evaluator = Evaluator(evaluator_preset("tiny")).eval()
    evaluator.set_stats(dataset.mean, dataset.std)
    perfect = reconstruction_stats(IdentityVQ(0.0), dataset, evaluator=evaluator)
    assert perfect.clips == len(dataset.ids) and perfect.l1 == 0.0
    assert perfect.mpjpe == pytest.approx(0.0, abs=1e-6)
    assert perfect.mpjpe_aligned == pytest.approx(0.0, abs=1e-6)
    assert perfect.fid == pytest.approx(0.0, abs=1e-3)
    noisy = reconstruction_stats(IdentityVQ(0.5), dataset, evaluator=evaluator)
    assert noisy.mpjpe > noisy.mpjpe_aligned > 0 and noisy.fid > perfect.fid + 1e-3
    assert reconstruction_stats(IdentityVQ(0.5), dataset).fid is None  # no evaluator, no FID
