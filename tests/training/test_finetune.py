"""Fine-tuning strategies: LoRA (starts at the base, saves plain weights, resumes exactly), freeze,
replay of base data, and adding emotion conditioning to a text-only base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.data.splits import SplitConfig
from emomotion.errors import ConfigError
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, preset
from emomotion.sampling.diffusion import DiffusionConfig
from emomotion.text import build_text_encoder
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
    assert a.extra["replay"] == {"data": str(base_data), "ratio": 0.5}


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
