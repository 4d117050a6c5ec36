"""The MDM network: official layout, masking, conditioning, guidance, and that it can learn."""

from __future__ import annotations

import pytest
import torch

from emomotion.errors import ConfigError
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, PRESETS, preset
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.guidance import classifier_free_guidance
from emomotion.text.base import TextEmbedding

OFFICIAL_SHAPES = {
    "input_process.poseEmbedding.weight": (512, 263),
    "seqTransEncoder.layers.0.self_attn.in_proj_weight": (1536, 512),
    "seqTransEncoder.layers.7.linear1.weight": (1024, 512),
    "seqTransEncoder.layers.7.linear2.weight": (512, 1024),
    "seqTransEncoder.layers.3.norm2.weight": (512,),
    "embed_timestep.time_embed.0.weight": (512, 512),
    "embed_timestep.time_embed.2.weight": (512, 512),
    "embed_text.weight": (512, 512),
    "output_process.poseFinal.weight": (263, 512),
    "sequence_pos_encoder.pe": (5000, 1, 512),
    "embed_timestep.sequence_pos_encoder.pe": (5000, 1, 512),
}


def text(b: int, dim: int, length: int = 5, seed: int = 0) -> TextEmbedding:
    g = torch.Generator().manual_seed(seed)
    return TextEmbedding(
        torch.randn(b, dim, generator=g),
        torch.randn(b, length, dim, generator=g),
        torch.ones(b, length, dtype=torch.bool),
    )


def test_official_layout_and_size():
    model = MDM(preset("mdm", text_dim=512))
    sd = model.state_dict()
    for key, shape in OFFICIAL_SHAPES.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("clip") for k in sd)
    assert 17.8e6 < model.num_parameters() < 18.0e6


def test_every_preset_builds_and_runs():
    for name in PRESETS:
        if name == "mdm":
            continue
        model = MDM(preset(name)).eval()
        out = model(torch.randn(2, 30, 263), torch.tensor([0, 999]), MotionCondition(text(2, 384)))
        assert out.shape == (2, 30, 263) and torch.isfinite(out).all()
    with pytest.raises(ConfigError):
        preset("huge")
    with pytest.raises(ConfigError):
        preset("tiny", latent_dim=63)


def test_padding_is_masked():
    model = MDM(preset("tiny")).eval()
    cond = MotionCondition(text(2, 384))
    x = torch.randn(2, 20, 263)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 12:] = False
    t = torch.tensor([10, 10])
    a = model(x, t, cond, mask)
    y = x.clone()
    y[1, 12:] = 100.0  # garbage in the padding
    b = model(y, t, cond, mask)
    torch.testing.assert_close(a[1, :12], b[1, :12])
    torch.testing.assert_close(a[0], b[0])


def test_dropped_text_equals_zero_text_and_emotion_null_row():
    model = MDM(preset("tiny", num_emotions=8)).eval()
    x, t = torch.randn(1, 10, 263), torch.tensor([5])
    emb = text(1, 384)
    dropped = model(x, t, MotionCondition(emb, drop_text=torch.tensor([True])))
    zero = model(x, t, MotionCondition(TextEmbedding(emb.sentence * 0, emb.tokens, emb.mask)))
    torch.testing.assert_close(dropped, zero)
    none = model(x, t, MotionCondition(emb, emotion=torch.tensor([-1])))
    plain = model(x, t, MotionCondition(emb))
    torch.testing.assert_close(none, plain)
    joy = model(x, t, MotionCondition(emb, emotion=torch.tensor([2])))
    half = model(x, t, MotionCondition(emb, emotion=torch.tensor([2]), intensity=torch.tensor([0.5])))
    assert not torch.allclose(joy, plain) and not torch.allclose(half, joy)


def test_trans_dec_cross_attends_to_tokens():
    model = MDM(preset("tiny", arch="trans_dec", text_dim=768)).eval()
    a = model(torch.randn(2, 8, 263), torch.tensor([1, 2]), MotionCondition(text(2, 768, seed=1)))
    b = model(torch.randn(2, 8, 263), torch.tensor([1, 2]), MotionCondition(text(2, 768, seed=2)))
    assert a.shape == (2, 8, 263) and not torch.allclose(a, b)


def test_guidance_is_the_cfg_formula_in_one_batched_call():
    model = MDM(preset("tiny", num_emotions=8)).eval()
    calls = []

    def spy(x, t, c, m):
        calls.append(x.shape[0])
        return model(x, t, c, m)

    cond = MotionCondition(text(2, 384), emotion=torch.tensor([0, 6]))
    x, t = torch.randn(2, 10, 263), torch.tensor([3, 3])
    out = classifier_free_guidance(spy, cond, text_scale=2.5, emotion_scale=1.5)(x, t)
    assert calls == [6]
    u = model(x, t, cond.dropped(text=True, emotion=True))
    c_text = model(x, t, cond.dropped(text=False, emotion=True))
    full = model(x, t, cond)
    torch.testing.assert_close(out, u + 2.5 * (c_text - u) + 1.5 * (full - c_text), atol=1e-5, rtol=1e-5)
    plain = classifier_free_guidance(model, MotionCondition(text(2, 384)), text_scale=1.0)(x, t)
    torch.testing.assert_close(plain, model(x, t, MotionCondition(text(2, 384))))
    calls.clear()  # text scale 1 with the label's scale: the unconditional pass cancels and is skipped
    out = classifier_free_guidance(spy, cond, text_scale=1.0, emotion_scale=1.5)(x, t)
    assert calls == [4]
    torch.testing.assert_close(out, c_text + 1.5 * (full - c_text), atol=1e-5, rtol=1e-5)


def test_tiny_model_overfits_one_clip_and_samples_deterministically():
    torch.manual_seed(0)
    model = MDM(preset("tiny", cond_mask_prob=0.0))
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    target = torch.sin(torch.linspace(0, 6, 24))[None, :, None] * torch.linspace(-1, 1, 263)[None, None, :]
    cond = MotionCondition(text(1, 384))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        t = torch.randint(0, 50, (8,))
        x0 = target.expand(8, -1, -1)
        xt = diffusion.q_sample(x0, t, torch.randn_like(x0))
        big = MotionCondition(
            TextEmbedding(
                cond.text.sentence.expand(8, -1),
                cond.text.tokens.expand(8, -1, -1),
                cond.text.mask.expand(8, -1),
            )
        )
        loss = (model(xt, t, big) - x0).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.1 * sum(losses[:20]) / 20
    model.eval()
    den = classifier_free_guidance(model, cond, text_scale=1.0)
    a = sample(diffusion, den, (1, 24, 263), sampler="ddim", steps=10, seed=3)
    assert torch.equal(a, sample(diffusion, den, (1, 24, 263), sampler="ddim", steps=10, seed=3))
    assert (a - target).square().mean() < 0.1 * target.square().mean()


def test_tiny_model_overfits_a_real_clip_within_a_joint_error_bound():
    """The tiny preset memorises one real HumanML3D clip (40 frames of 012314, normalised with the
    shared Mean/Std): sampling with DDPM over its 50 trained steps reconstructs the joints with a mean
    per-joint position error under 5 cm (the untrained model is off by metres)."""
    import numpy as np

    from emomotion.features import recover_joints
    from tests.conftest import shared_path

    sample_dir = shared_path("humanml3d-sample")
    mean, std = np.load(sample_dir / "Mean.npy"), np.load(sample_dir / "Std.npy")
    feats = np.load(sample_dir / "new_joint_vecs_012314.npy")[:40]
    target = torch.from_numpy((feats - mean) / std).float()[None]  # (1, 40, 263)
    torch.manual_seed(0)
    model = MDM(preset("tiny", cond_mask_prob=0.0))
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    emb = text(1, 384)
    batch = MotionCondition(
        TextEmbedding(emb.sentence.expand(16, -1), emb.tokens.expand(16, -1, -1), emb.mask.expand(16, -1))
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x0 = target.expand(16, -1, -1)
    for _ in range(400):
        t = torch.randint(0, 50, (16,))
        loss = (model(diffusion.q_sample(x0, t, torch.randn_like(x0)), t, batch) - x0).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    den = classifier_free_guidance(model, MotionCondition(emb), text_scale=1.0)
    out = sample(diffusion, den, (1, 40, 263), sampler="ddpm", seed=0)[0].numpy() * std + mean
    truth = recover_joints(feats)
    error = np.linalg.norm(recover_joints(out) - truth, axis=-1).mean()
    assert error < 0.05, f"mean per-joint error {error:.3f} m"
