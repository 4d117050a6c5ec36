"""VQ-VAE and MMM training on the shared loop: loss falls, checkpoints reload identically, resume is
exact, fine-tuning keeps the trained codebook (never re-initialised) and the frozen VQ; the token
cache is keyed by weights and data."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion import token_cache
from emomotion.checkpoint import load_checkpoint, load_train_state
from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.errors import ConfigError
from emomotion.models.quantizers import EMAResetQuantizer
from emomotion.models.vqvae import VQVAE
from emomotion.text import build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.finetune import FinetuneConfig
from emomotion.training.mmm import MaskingConfig, MMMRun, run_mmm
from emomotion.training.vq import VQRun, run_vq


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(synthetic_train_set) -> Path:
    return synthetic_train_set


def train(steps: int, **kw) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=8,
        lr=kw.pop("lr", 2e-3),
        save_every=kw.pop("save_every", steps),
        log_every=1,
        **kw,
    )


def losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def vq(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vq")
    return run_vq(VQRun(data, out, train=train(120, ema_decay=0.0)))


def test_vq_loss_falls_and_reloads(vq):
    curve = losses(vq.parent)
    assert len(curve) == 120 and sum(curve[-10:]) / 10 < 0.7 * sum(curve[:10]) / 10
    ckpt = load_checkpoint(vq)
    assert ckpt.kind == "vqvae" and ckpt.config["quantizer"] == "ema_reset" and ckpt.ema_state is None
    assert bool(ckpt.model_state["quantizer.initted"]) and "quantizer.code_sum" in ckpt.model_state
    a, b = ckpt.build_model(), load_checkpoint(vq.parent).build_model()
    x = torch.randn(2, 48, 263)
    assert torch.equal(a.encode(x), b.encode(x)) and torch.equal(a.decode(a.encode(x)), b.decode(b.encode(x)))


def test_vq_resume_equals_uninterrupted(data, tmp_path):
    straight = run_vq(VQRun(data, tmp_path / "a", train=train(12, ema_decay=0.0)))
    first = run_vq(VQRun(data, tmp_path / "b", train=train(12, ema_decay=0.0)), stop_after=5)
    assert load_train_state(first)["step"] == 5
    resumed = run_vq(VQRun(data, tmp_path / "b", train=train(12, ema_decay=0.0)), resume=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key, value in a.model_state.items():  # weights and the codebook's EMA buffers
        assert torch.equal(value, b.model_state[key]), key
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_vq_fine_tune_keeps_the_trained_codebook(data, vq, tmp_path, monkeypatch):
    def no_init(*_: object) -> None:
        raise AssertionError("fine-tuning re-initialised the codebook")

    monkeypatch.setattr(EMAResetQuantizer, "_init_codebook", no_init)
    tuned = run_vq(VQRun(data, tmp_path / "ft", init_from=vq, train=train(2, lr=1e-5, ema_decay=0.0)))
    base, t = load_checkpoint(vq), load_checkpoint(tuned)
    assert torch.equal(base.mean, t.mean) and base.config == t.config
    used = base.model_state["quantizer.code_count"] >= 1.0  # codes in use move a little, by the EMA
    drift = (t.model_state["quantizer.codebook"] - base.model_state["quantizer.codebook"])[used].abs().max()
    assert drift < 0.5 * base.model_state["quantizer.codebook"][used].abs().max()


def test_vq_reinit_codebook_reproduces_the_official_fine_tune(data, vq, tmp_path):
    """The study's failing recipe: the official code re-initialises the codebook from the first batch
    of the new data; ``reinit_codebook`` does exactly that, and the trained codebook is lost."""
    tuned = run_vq(
        VQRun(
            data, tmp_path / "re", init_from=vq, reinit_codebook=True, train=train(1, lr=1e-5, ema_decay=0.0)
        )
    )
    before = load_checkpoint(vq).model_state["quantizer.codebook"]
    after = load_checkpoint(tuned).model_state["quantizer.codebook"]
    assert (after - before).abs().amax(dim=1).min() > 1e-3  # every code was replaced
    with pytest.raises(ConfigError, match="only applies when fine-tuning"):
        VQRun(data, tmp_path / "x", reinit_codebook=True)


def mmm_run(data: Path, vq: Path, out: Path, steps: int, **kw) -> MMMRun:
    return MMMRun(data, out, vq=vq, preset="tiny", train=train(steps, ema_decay=0.9, **kw), max_frames=96)


def test_mmm_loss_falls_reloads_and_keeps_the_vq(data, vq, tmp_path):
    last = run_mmm(mmm_run(data, vq, tmp_path / "m", 60))
    curve = losses(tmp_path / "m")
    assert len(curve) == 60 and sum(curve[-10:]) / 10 < 0.7 * sum(curve[:10]) / 10
    ckpt, base = load_checkpoint(last), load_checkpoint(vq)
    assert ckpt.kind == "mmm" and set(ckpt.config) == {"vq", "trans"} and ckpt.config["vq"] == base.config
    assert torch.equal(ckpt.mean, base.mean)  # tokens mean what the VQ was trained on
    for key, value in base.model_state.items():
        assert torch.equal(ckpt.model_state[f"vq.{key}"], value), key
    a, b = ckpt.build_model(use_ema=False), load_checkpoint(tmp_path / "m").build_model(use_ema=False)
    emb = build_text_encoder(ckpt.text_encoder).encode(["a person walks"])
    ids = torch.tensor([[3, 66, 5, 64, 65]])
    token_mask = torch.tensor([[True, True, True, True, False]])
    assert torch.equal(a(ids, emb, token_mask), b(ids, emb, token_mask))
    assert not torch.equal(ckpt.build_model(use_ema=True)(ids, emb, token_mask), a(ids, emb, token_mask))


def test_mmm_resume_equals_uninterrupted(data, vq, tmp_path):
    straight = run_mmm(mmm_run(data, vq, tmp_path / "a", 16))
    run_mmm(mmm_run(data, vq, tmp_path / "b", 16), stop_after=7)
    resumed = run_mmm(mmm_run(data, vq, tmp_path / "b", 16), resume=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    for key, value in a.ema_state.items():
        assert torch.equal(value, b.ema_state[key]), key
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_mmm_fine_tune_keeps_base_vq_stats_and_text(data, vq, tmp_path, strategy):
    base_path = run_mmm(mmm_run(data, vq, tmp_path / "base", 4))
    run = MMMRun(
        data,
        tmp_path / "ft",
        init_from=base_path,
        train=train(3, lr=1e-3, ema_decay=0.0),
        finetune=FinetuneConfig(strategy=strategy, lora_rank=2),
        masking=MaskingConfig(schedule="uniform", replace_prob=0.5, loss_on="all"),
        max_frames=96,
        replay=data if strategy == "full" else None,
        replay_ratio=0.3 if strategy == "full" else 0.0,
    )
    tuned = run_mmm(run)
    b, t = load_checkpoint(base_path), load_checkpoint(tuned)
    assert torch.equal(b.mean, t.mean) and b.text_encoder == t.text_encoder and b.config == t.config
    assert t.extra["finetune"]["strategy"] == strategy and t.extra["init_from"] == str(base_path)
    assert set(t.model_state) == set(b.model_state)  # LoRA merged back into the official layout
    for key, value in b.model_state.items():
        if key.startswith("vq."):
            assert torch.equal(t.model_state[key], value), key
    head = "trans.trans_head.head.weight"
    assert not torch.equal(t.model_state[head], b.model_state[head])
    t.build_model()
    if strategy == "full":  # the VQ inside an mmm checkpoint fine-tunes on its own, codebook state kept
        vq_ft = load_checkpoint(
            run_vq(VQRun(data, tmp_path / "vq_ft", init_from=tuned, train=train(1, lr=1e-6)))
        )
        assert vq_ft.kind == "vqvae" and vq_ft.config == t.config["vq"] and torch.equal(vq_ft.mean, t.mean)


def test_run_needs_a_vq_and_replay_needs_a_base(data, tmp_path):
    with pytest.raises(ConfigError, match="VQ-VAE"):
        MMMRun(data, tmp_path)
    with pytest.raises(ConfigError, match="base checkpoint"):
        MMMRun(data, tmp_path, vq=tmp_path, replay=data, replay_ratio=0.3)


def test_token_cache_is_keyed_by_weights_and_data(data, vq, tmp_path, monkeypatch):
    model = load_checkpoint(vq).build_model()
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    ds = MotionDataset(DatasetConfig(copy, random_crop=False))
    first = token_cache.encode_dataset(model, ds, tmp_path / "cache")
    assert set(first) == set(ds.ids) and len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 1
    encoded: list[int] = []
    real = token_cache.encode_clips
    monkeypatch.setattr(token_cache, "encode_clips", lambda *a: encoded.append(1) or real(*a))
    again = token_cache.encode_dataset(model, ds, tmp_path / "cache")
    assert not encoded and all(torch.equal(first[k], again[k]) for k in first)  # a hit
    clip = copy / "new_joint_vecs" / f"{ds.ids[0]}.npy"
    arr = np.load(clip)
    arr[:, 4:67] += 0.5
    np.save(clip, arr)
    token_cache.encode_dataset(model, ds, tmp_path / "cache")
    assert len(encoded) == 1  # data changed: re-encoded
    with torch.no_grad():
        model.decoder.model[0].weight.add_(0.1)
    token_cache.encode_dataset(model, ds, tmp_path / "cache")
    assert len(encoded) == 2 and len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 3


def test_generator_runs_an_mmm_checkpoint(data, vq, tmp_path):
    from emomotion.generate import GenerateRequest, MotionGenerator, SamplingSettings

    generator = MotionGenerator(run_mmm(mmm_run(data, vq, tmp_path / "m", 2)))
    assert generator.diffusion is None and generator.default_steps == 10 and generator.max_steps == 49
    request = GenerateRequest(
        texts=("a person walks", "a person knocks"),
        seconds=3.1,
        num=2,
        settings=SamplingSettings(steps=4),
        seed=3,
    )
    motions = generator(request)
    assert len(motions) == 4 and [m.text for m in motions[:2]] == ["a person walks"] * 2
    assert motions[0].features.shape == (60, 263) and motions[0].joints.shape == (
        60,
        22,
        3,
    )  # 62 frames -> 15 tokens
    again = generator(request)
    assert all(np.array_equal(a.features, b.features) for a, b in zip(motions, again, strict=True))
    other = generator(
        GenerateRequest(
            texts=("a person walks",),
            seconds=3.0,
            seed=4,
            settings=SamplingSettings(temperature=0.0, top_k=5),
        )
    )
    assert other[0].features.shape == (60, 263)
    with pytest.raises(ConfigError, match="emotion"):
        generator(GenerateRequest(texts=("a person walks",), emotions=("happy",)))
    with pytest.raises(ConfigError, match="exceed"):
        generator(GenerateRequest(texts=("a person walks",), settings=SamplingSettings(steps=60)))


@pytest.mark.parametrize("quantizer", ["kmeans", "residual", "fsq"])
def test_vq_runs_with_library_quantizers(data, tmp_path, quantizer):
    last = run_vq(VQRun(data, tmp_path / quantizer, quantizer=quantizer, train=train(3, ema_decay=0.0)))
    ckpt = load_checkpoint(last)
    assert ckpt.config["quantizer"] == quantizer
    model = ckpt.build_model()  # every buffer (EMA codebooks, initted flags) is in the checkpoint
    tokens = model.encode(torch.randn(1, 32, 263))
    assert tokens.shape[:2] == (1, 8) and model.decode(tokens).shape == (1, 32, 263)


def test_tokenize_with_reproduces_the_official_loader_mismatch(data, vq, tmp_path, monkeypatch):
    """Tokens from a re-initialised VQ, the base VQ kept for embedding and decoding (the official
    loader's overwrite), on purpose: the checkpoint's VQ is the base's, the tokens are the other's."""
    base_path = run_mmm(mmm_run(data, vq, tmp_path / "base", 2))
    other = run_vq(
        VQRun(
            data, tmp_path / "re", init_from=vq, reinit_codebook=True, train=train(1, lr=1e-5, ema_decay=0.0)
        )
    )
    used = []
    real_encode = VQVAE.encode

    def spy(self, motion):
        used.append(float(self.quantizer.codebook.sum()))
        return real_encode(self, motion)

    monkeypatch.setattr(VQVAE, "encode", spy)
    run = MMMRun(data, tmp_path / "ft", init_from=base_path, tokenize_with=other, train=train(2, ema_decay=0.0),
                 max_frames=96)  # fmt: skip
    tuned = load_checkpoint(run_mmm(run))
    other_sum = float(load_checkpoint(other).model_state["quantizer.codebook"].sum())
    assert used and all(u == pytest.approx(other_sum) for u in used)  # every batch tokenised by the other VQ
    for key, value in load_checkpoint(base_path).model_state.items():
        if key.startswith("vq."):
            assert torch.equal(tuned.model_state[key], value), key
    assert tuned.extra["tokenize_with"] == str(other)
    with pytest.raises(ConfigError, match="tokenize_with"):
        MMMRun(data, tmp_path / "x", vq=vq, tokenize_with=other)
