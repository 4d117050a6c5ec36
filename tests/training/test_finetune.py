"""Fine-tuning strategies: LoRA (starts at the base, saves plain weights, resumes exactly), freeze,
replay of base data, and adding emotion conditioning to a text-only base."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.dataset import DatasetConfig, MotionDataset, collate
from emomotion.data.splits import SplitConfig
from emomotion.errors import CheckpointError, ConfigError
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, preset
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion
from emomotion.text import build_text_encoder
from emomotion.text.base import TextEmbedding
from emomotion.training.config import TrainConfig
from emomotion.training.finetune import (
    FinetuneConfig,
    ReplayDataset,
    apply_strategy,
    has_adapters,
    merged_state_dict,
)
from emomotion.training.mdm import MDMRun, freeze_patterns, run_mdm


def _build(out: Path, actions: list[str]) -> Path:
    build_dataset(
        BuildConfig(
            source="synthetic",
            out=out,
            seed=0,
            split=SplitConfig(ratios=(1.0, 0.0, 0.0)),
            options={"actions": actions, "seconds": (2.5, 3.5)},
        )
    )
    return out


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ft")
    return _build(root / "emotion", ["walk"]), _build(root / "base", ["knock", "sit_down"])


@pytest.fixture(scope="module")
def base(datasets, tmp_path_factory) -> Path:
    _, base_data = datasets
    out = tmp_path_factory.mktemp("base")
    return run_mdm(
        MDMRun(
            data=base_data,
            out=out,
            preset="tiny",
            diffusion=DiffusionConfig(50),
            train=TrainConfig(steps=4, batch_size=8, lr=1e-3, log_every=1, ema_decay=0.0),
            max_frames=48,
        )
    )


def finetune(datasets, base, out, steps=6, buckets=0, **kw) -> MDMRun:
    emotion, _ = datasets
    return MDMRun(
        data=emotion,
        out=out,
        init_from=base,
        max_frames=48,
        train=TrainConfig(
            steps=steps,
            batch_size=8,
            lr=1e-2,
            log_every=1,
            ema_decay=0.9,
            save_every=100,
            length_buckets=buckets,
        ),
        **kw,
    )


def _outputs(model: torch.nn.Module, emotion: torch.Tensor | None = None) -> torch.Tensor:
    enc = build_text_encoder("minilm")
    torch.manual_seed(0)
    x, t = torch.randn(2, 20, 263), torch.tensor([3, 40])
    cond = MotionCondition(enc.encode(["a person walks", "a person knocks"]), emotion=emotion)
    with torch.no_grad():
        return model.eval()(x, t, cond)


def test_lora_starts_at_the_base_and_merges_into_plain_weights():
    torch.manual_seed(0)
    model = MDM(preset("tiny"))
    before = _outputs(model)
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    apply_strategy(model, FinetuneConfig("lora", lora_rank=4))
    assert has_adapters(model)
    assert torch.allclose(_outputs(model), before, atol=1e-6)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            p.data.normal_(0, 0.1)  # as if trained
    merged = merged_state_dict(model)
    assert set(merged) == set(plain)
    fresh = MDM(preset("tiny"))
    fresh.load_state_dict(merged)
    assert torch.allclose(_outputs(fresh), _outputs(model), atol=1e-5)
    assert not torch.allclose(_outputs(fresh), before, atol=1e-3)


def test_strategy_config_errors():
    with pytest.raises(ConfigError, match="unknown fine-tuning strategy"):
        FinetuneConfig("partial")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs at least one"):
        FinetuneConfig("freeze")
    with pytest.raises(ConfigError, match="match no"):
        apply_strategy(MDM(preset("tiny")), FinetuneConfig("freeze", freeze=(r"nothing\.",)))
    with pytest.raises(ConfigError, match="need a base checkpoint"):
        MDMRun(data=Path("x"), out=Path("y"), finetune=FinetuneConfig("lora"))


def test_lora_finetune_saves_official_keys_and_resumes_exactly(datasets, base, tmp_path):
    cfg = FinetuneConfig("lora", lora_rank=4, lora_targets=(r"seqTransEncoder\.",))
    straight = run_mdm(finetune(datasets, base, tmp_path / "a", finetune=cfg))
    run_mdm(finetune(datasets, base, tmp_path / "b", finetune=cfg), stop_after=3)
    resumed = run_mdm(finetune(datasets, base, tmp_path / "b", finetune=cfg), resume=True)
    a, b, base_ckpt = load_checkpoint(straight), load_checkpoint(resumed), load_checkpoint(base)
    assert set(a.model_state) == set(base_ckpt.model_state)  # plain keys: loads anywhere MDM loads
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
        if key.startswith("seqTransEncoder.") and key.endswith("weight") and "norm" not in key:
            assert not torch.equal(value, base_ckpt.model_state[key]), f"{key} did not adapt"
        else:
            assert torch.equal(value, base_ckpt.model_state[key]), f"{key} moved outside the adapters"
    for key, value in a.ema_state.items():
        assert torch.equal(value, b.ema_state[key]), key
    a.build_model()  # the merged checkpoint rebuilds a plain MDM
    assert a.extra["finetune"]["strategy"] == "lora"


def test_freeze_keeps_lower_layers_fixed(datasets, base, tmp_path):
    patterns = freeze_patterns(num_layers=2)
    tuned = load_checkpoint(
        run_mdm(finetune(datasets, base, tmp_path / "f", finetune=FinetuneConfig("freeze", freeze=patterns)))
    )
    ref = load_checkpoint(base)
    for key, value in tuned.model_state.items():
        frozen = key.startswith(
            ("input_process.", "embed_text.", "embed_timestep.", "seqTransEncoder.layers.0.")
        )
        assert torch.equal(value, ref.model_state[key]) == frozen, key


@pytest.mark.parametrize("buckets", [0, 3], ids=["plain", "length-bucketed"])
def test_replay_mixes_base_clips_and_resumes_exactly(datasets, base, tmp_path, buckets):
    emotion, base_data = datasets
    primary = MotionDataset(DatasetConfig(emotion, max_frames=48))
    replay = MotionDataset(DatasetConfig(base_data, max_frames=48))
    mixed = ReplayDataset(primary, replay, ratio=0.5, seed=0)
    assert len(mixed) == 2 * len(primary)
    ids = {mixed[i].clip_id for i in range(len(primary), len(mixed))}
    assert ids <= set(replay.ids) and len(ids) > 1
    with pytest.raises(ConfigError):
        ReplayDataset(primary, replay, ratio=1.0)
    kw = {"replay": base_data, "replay_ratio": 0.5, "buckets": buckets}
    straight = run_mdm(finetune(datasets, base, tmp_path / "a", **kw))
    run_mdm(finetune(datasets, base, tmp_path / "b", **kw), stop_after=2)
    resumed = run_mdm(finetune(datasets, base, tmp_path / "b", **kw), resume=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert a.extra["replay"] == {"data": str(base_data), "ratio": 0.5, "target": "data"}


def test_emotion_conditioning_added_to_a_text_only_base(datasets, base, tmp_path):
    run = finetune(
        datasets,
        base,
        tmp_path / "e",
        steps=3,
        add_emotion_conditioning=True,
        finetune=FinetuneConfig("lora", lora_rank=2),
    )
    tuned = load_checkpoint(run_mdm(run))
    assert load_checkpoint(base).config["num_emotions"] == 0 and tuned.config["num_emotions"] == 8
    table = tuned.model_state["embed_emotion.weight"]
    assert table.abs().sum() > 0  # the new table trained even though everything else is LoRA-frozen


def test_ema_decay_warms_up_so_a_short_fine_tune_is_not_held_at_the_base():
    from emomotion.training.ema import EMA

    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, 0.995)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(90) == pytest.approx(0.91)
    assert ema.decay_at(10_000) == 0.995
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 0)
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.9))
    for t in range(1, 150):
        ema.update(model, t)
    assert float(ema.shadow["weight"][0, 0]) > 0.999  # without the warm-up: 1 - 0.995**150 = 0.53


def test_replayed_items_are_marked_and_batched(datasets):
    emotion, base_data = datasets
    primary = MotionDataset(DatasetConfig(emotion, max_frames=48))
    mixed = ReplayDataset(primary, MotionDataset(DatasetConfig(base_data, max_frames=48)), ratio=0.5, seed=0)
    flags = [mixed[i].replay for i in range(len(mixed))]
    assert flags == [False] * len(primary) + [True] * (len(mixed) - len(primary))
    batch = collate([mixed[0], mixed[len(primary)], mixed[1]])
    assert batch.replay.tolist() == [False, True, False]
    assert collate([primary[0]]).replay.tolist() == [False]


def test_explicit_drops_replace_the_random_ones_in_training():
    model = MDM(preset("tiny", text_dim=8))
    model.train()
    text = TextEmbedding(torch.randn(6, 8), torch.randn(6, 3, 8), torch.ones(6, 3, dtype=torch.bool))
    decided = torch.tensor([True, False, True, False, False, False])
    cond = MotionCondition(text, drop_text=decided, drop_emotion=torch.zeros(6, dtype=torch.bool))
    assert all(torch.equal(model.guidance_drops(cond, 6, torch.device("cpu"))[0], decided) for _ in range(20))
    undecided = model.guidance_drops(MotionCondition(text), 4000, torch.device("cpu"))[0]
    assert 0.05 < undecided.float().mean() < 0.15  # the config's rate of 0.1 where the caller says nothing
    model.eval()
    assert not model.guidance_drops(MotionCondition(text), 50, torch.device("cpu"))[0].any()


def _teacher_step(base: Path, datasets, target: str):
    from emomotion.training.mdm import GeometricLossWeights, MDMTrainStep

    ckpt = load_checkpoint(base)
    student = ckpt.build_model().train()
    teacher = ckpt.build_model() if target == "teacher" else None
    diffusion = GaussianDiffusion(DiffusionConfig(50))
    weights = GeometricLossWeights(velocity=1.0, foot_contact=1.0)
    step = MDMTrainStep(
        student,
        diffusion,
        build_text_encoder(ckpt.text_encoder),
        ckpt.mean,
        ckpt.std,
        weights,
        teacher=teacher,
    )
    _, base_data = datasets
    replay = MotionDataset(DatasetConfig(base_data, max_frames=48))
    replay.mean, replay.std = ckpt.mean.numpy(), ckpt.std.numpy()
    batch = collate([replace(replay[i], replay=True) for i in range(4)])
    return step, batch


def test_teacher_replay_holds_replayed_clips_to_the_base_prediction(base, datasets):
    """At the start of a fine-tune the student is the base model: with the teacher as the target of
    replayed clips every loss term on them is zero (the drops the teacher saw are the student's); with
    the data as the target it is not. Clips that are not replayed keep the data as their target."""
    torch.manual_seed(0)
    step, batch = _teacher_step(base, datasets, "teacher")
    loss, parts = step.loss(batch)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10) and parts["velocity"] == pytest.approx(
        0.0, abs=1e-12
    )
    torch.manual_seed(0)
    plain, _ = _teacher_step(base, datasets, "data")
    assert float(plain.loss(batch)[0].detach()) > 1e-3
    torch.manual_seed(0)
    mixed_batch = replace(batch, replay=torch.tensor([True, True, False, False]))
    assert float(step.loss(mixed_batch)[0].detach()) > 1e-3


def test_teacher_replay_trains_records_its_target_and_needs_replay(datasets, base, tmp_path):
    _, base_data = datasets
    run = finetune(
        datasets, base, tmp_path / "t", steps=3, replay=base_data, replay_ratio=0.5, replay_target="teacher"
    )
    tuned = load_checkpoint(run_mdm(run))
    assert tuned.extra["replay"] == {"data": str(base_data), "ratio": 0.5, "target": "teacher"}
    assert all(torch.isfinite(v).all() for v in tuned.model_state.values())
    with pytest.raises(ConfigError, match="replay_target"):
        finetune(datasets, base, tmp_path / "u", replay=base_data, replay_ratio=0.5, replay_target="base")


def test_a_kept_base_answers_requests_without_an_emotion():
    torch.manual_seed(0)
    model = MDM(preset("tiny", text_dim=8, keep_base=True, num_emotions=8))
    assert model.base_copy is not None and not any(p.requires_grad for p in model.base_copy.parameters())
    with torch.no_grad():
        for name, p in model.base_copy.named_parameters():
            if not name.startswith("embed_emotion"):  # (the null row stays zero, as a new table's does)
                p.add_(0.05 * torch.randn_like(p))  # the fine-tune moved away from its base
    model.eval()
    x, t = torch.randn(4, 12, 263), torch.tensor([1, 5, 9, 13])
    text = TextEmbedding(torch.randn(4, 8), torch.randn(4, 3, 8), torch.ones(4, 3, dtype=torch.bool))
    labels = torch.tensor([2, -1, 5, -1])
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[1, 9:] = False
    with torch.no_grad():
        mixed = model(x, t, MotionCondition(text, emotion=labels), mask)
        tuned = model._denoise(x, t, MotionCondition(text, emotion=labels), mask)
        base = model.base_copy(x, t, MotionCondition(text), mask)
        nolabel = model(x, t, MotionCondition(text), mask)
        # a dropped label (the guidance's unconditional pass) keeps the route of the request
        dropped = model(x, t, MotionCondition(text, emotion=labels).dropped(text=False, emotion=True), mask)
    asked = labels >= 0
    torch.testing.assert_close(mixed[asked], tuned[asked])
    torch.testing.assert_close(mixed[~asked], base[~asked])
    torch.testing.assert_close(nolabel, base)
    assert (mixed[asked] - base[asked]).abs().max() > 1e-3
    assert (dropped[asked] - base[asked]).abs().max() > 1e-3
    model.train()
    with torch.no_grad():  # training runs the fine-tuned weights for every row
        torch.testing.assert_close(model(x, t, MotionCondition(text, drop_text=asked, drop_emotion=asked), mask),
                                   model._denoise(x, t, MotionCondition(text, drop_text=asked, drop_emotion=asked), mask))  # fmt: skip


def test_a_kept_fine_tune_without_its_base_is_the_same_run_without_keep_base(datasets, base, tmp_path):
    from emomotion.checkpoint import save_checkpoint
    from emomotion.training.mdm import without_kept_base

    kw = {"steps": 4, "add_emotion_conditioning": True}
    kept = load_checkpoint(run_mdm(finetune(datasets, base, tmp_path / "k", keep_base=True, **kw)))
    plain = load_checkpoint(run_mdm(finetune(datasets, base, tmp_path / "p", **kw)))
    alone = load_checkpoint(save_checkpoint(tmp_path / "alone.safetensors", without_kept_base(kept)))
    assert kept.ema_state and any(k.startswith("base_copy.") for k in kept.ema_state)
    for mine, theirs in ((alone.model_state, plain.model_state), (alone.ema_state, plain.ema_state)):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert torch.equal(mine[key], value), key
    assert alone.config == plain.config and not alone.config["keep_base"]
    assert alone.extra.pop("weights_of") == str(kept.path) and alone.extra == plain.extra
    with pytest.raises(CheckpointError, match="keep_base"):
        without_kept_base(plain)


def test_a_fine_tune_that_keeps_its_base_samples_base_prompts_as_the_base(datasets, base, tmp_path, caplog):
    from emomotion.evaluation.generators import CheckpointGenerator
    from emomotion.generate import GenerateRequest, MotionGenerator, SamplingSettings

    run = finetune(datasets, base, tmp_path / "k", steps=4, keep_base=True, add_emotion_conditioning=True)
    tuned = load_checkpoint(run_mdm(run))
    plain = load_checkpoint(base)
    assert tuned.config["keep_base"] and tuned.extra["keep_base"]
    for key, value in plain.model_state.items():  # the copy is the base, bit for bit
        assert torch.equal(tuned.model_state[f"base_copy.{key}"], value), key
    assert any(not torch.equal(tuned.model_state[k], v) for k, v in plain.model_state.items())

    def sample(ckpt, emotions):
        settings = SamplingSettings(sampler="ddim", steps=10)
        request = GenerateRequest(
            ("a person walks",), seconds=2.0, num=2, settings=settings, emotions=emotions, seed=3
        )
        return np.stack([m.features for m in MotionGenerator(ckpt)(request)])

    np.testing.assert_allclose(sample(tuned, ()), sample(plain, ()), atol=1e-5)
    with caplog.at_level("WARNING"):  # an evaluation that asks for no emotion measures the base: said
        CheckpointGenerator(tuned, SamplingSettings(sampler="ddim", steps=10, emotion_scale=0.0))
    assert "keeps its base" in caplog.text
    assert np.abs(sample(tuned, ("Sadness",)) - sample(plain, ())).mean() > 1e-3
    with pytest.raises(ConfigError, match="keep_base"):
        finetune(datasets, base, tmp_path / "r", keep_base=True, replay=datasets[1], replay_ratio=0.5)
