"""The demo without a browser: models loaded once, limits with clear messages, files in one folder."""

from __future__ import annotations

import numpy as np
import pytest

from emomotion.app import AppLimits, DemoRunner, UIRequest, load_models
from emomotion.errors import ConfigError
from tests.app.conftest import LIMITS


@pytest.fixture(scope="module")
def models(tiny_models):
    return load_models([tiny_models["emo"], tiny_models["text"]], LIMITS)


def names(models) -> tuple[str, str]:
    """(emotion model, text-only model), in the order they were loaded."""
    emo, text = models
    return emo, text


def test_models_describe_their_controls(models, tiny_models):
    emo, text = (models[n] for n in names(models))
    assert emo.name != text.name and emo.path == tiny_models["emo"]
    assert emo.kind == "mdm" and emo.emotions and not text.emotions
    assert emo.samplers == ("ddpm", "ddim", "dpmpp") and emo.default_sampler == "ddim"
    assert emo.max_steps == 50 and emo.default_steps == 50
    assert "emotion conditioning" in emo.describe() and "text only" in text.describe()


def test_same_checkpoint_twice_gets_distinct_names(tiny_models):
    loaded = load_models([tiny_models["text"], tiny_models["text"]], LIMITS)
    assert len(loaded) == 2


def test_run_writes_every_format_inside_its_folder(models, tmp_path):
    runner = DemoRunner(models, tmp_path / "out", LIMITS)
    emo = names(models)[0]
    result = runner.run(
        UIRequest("a person walks forward", emo, seconds=3.0, num=2, steps=10, emotion="Joy", seed=3)
    )
    assert result.folder.parent == runner.out and result.video.name == "grid.mp4"
    assert result.video.stat().st_size > 1000
    suffixes = sorted(f.suffix for f in result.files)
    assert suffixes == [".bvh"] * 2 + [".mp4"] * 2 + [".npy"] * 4
    assert len({f.name for f in result.files}) == len(result.files)  # one name per sample and file
    for f in (result.video, *result.files):
        assert f.resolve().is_relative_to(runner.out) and f.stat().st_size > 0
    feats = np.load(next(f for f in result.files if f.name.endswith("features.npy")))
    joints = np.load(next(f for f in result.files if f.name.endswith("joints.npy")))
    assert feats.shape == (60, 263) and joints.shape == (60, 22, 3) and np.isfinite(joints).all()
    assert "2 motion(s) of 3 s (Joy" in result.message and "10 steps" in result.message


def test_single_sample_shows_its_own_animation_and_seed_repeats(models, tmp_path):
    runner = DemoRunner(models, tmp_path, LIMITS)
    ui = UIRequest("a person knocks on a door", names(models)[1], seconds=2.0, steps=5, sampler="dpmpp")
    a, b = runner.run(ui), runner.run(ui)
    assert a.video.name.endswith("_motion.mp4") and a.video in a.files and a.folder != b.folder
    fa, fb = (np.load(next(f for f in r.files if f.name.endswith("features.npy"))) for r in (a, b))
    np.testing.assert_array_equal(fa, fb)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt": "x" * 201}, "the prompt is 201 characters long; the limit is 200"),
        ({"prompt": "   "}, "type a prompt first"),
        ({"seconds": 7.0}, "motion length must be between 2 and 6 seconds, got 7"),
        ({"seconds": 1.0}, "motion length must be between 2 and 6 seconds, got 1"),
        ({"steps": 51}, "steps must be between 1 and 50 for this model, got 51"),
        ({"steps": 0}, "steps must be between 1 and 50"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"num": 4}, "number of samples must be between 1 and 3, got 4"),
        ({"seed": -1}, "seed must be between 0"),
        ({"guidance": float("nan")}, "guidance must be a finite number"),
        ({"intensity": 3.5}, "intensity must be between 0 and 3"),
        ({"emotion": "Boredom"}, "unknown emotion 'Boredom'"),
        ({"sampler": "euler"}, "unknown sampler 'euler'"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"model": "TEXT", "emotion": "Joy"}, "has no emotion conditioning"),
    ],
)
def test_limits_refuse_with_clear_messages(models, tmp_path, change, message):
    runner = DemoRunner(models, tmp_path / "out", LIMITS)
    emo, text = names(models)
    fields = {"prompt": "a person walks", "model": emo, "seconds": 2.0, "steps": 5, **change}
    if fields["model"] == "TEXT":
        fields["model"] = text
    with pytest.raises(ConfigError) as err:
        runner.run(UIRequest(**fields))
    assert message in err.value.reason
    assert not any(runner.out.iterdir())  # nothing written for a refused request


def test_old_runs_are_pruned(models, tmp_path):
    runner = DemoRunner(models, tmp_path, AppLimits(keep_runs=2))
    kept = [
        runner.run(UIRequest("a person walks", names(models)[1], seconds=2.0, steps=2)).folder for _ in "abc"
    ]
    left = sorted(p for p in tmp_path.iterdir())
    assert left == kept[-2:]  # the newest two, even when all three start within one second


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="max_seconds"):
        AppLimits(max_seconds=30.0)
    with pytest.raises(ConfigError, match="max_prompt_chars"):
        AppLimits(max_prompt_chars=1000)
    with pytest.raises(ConfigError, match="max_samples"):
        AppLimits(max_samples=0)


@pytest.fixture(scope="module")
def mmm_model(tiny_models, tmp_path_factory):
    """A tiny masked-token model (VQ-VAE + MMM, a few steps each) on the same synthetic data."""
    mmm = pytest.importorskip("emomotion.training.mmm", reason="MMM training is not available")
    vq = pytest.importorskip("emomotion.training.vq", reason="VQ-VAE training is not available")
    from emomotion.training.config import TrainConfig

    root = tmp_path_factory.mktemp("app_mmm")
    data = tiny_models["emo"].parent.parent / "data"

    def short() -> TrainConfig:
        return TrainConfig(steps=3, batch_size=8, lr=2e-3, save_every=3, log_every=1, ema_decay=0.0)

    vq_ckpt = vq.run_vq(vq.VQRun(data, root / "vq", train=short()))
    ckpt = mmm.run_mmm(mmm.MMMRun(data, root / "mmm", vq=vq_ckpt, train=short(), max_frames=64))
    try:
        return load_models([ckpt], LIMITS)
    except ConfigError as exc:
        pytest.skip(f"this MotionGenerator cannot sample MMM checkpoints: {exc.reason}")


def test_masked_model_offers_steps_only(mmm_model, tmp_path):
    entry = next(iter(mmm_model.values()))
    assert entry.kind == "mmm" and entry.samplers == () and entry.default_sampler is None
    assert not entry.emotions and 1 <= entry.default_steps <= entry.max_steps <= LIMITS.max_steps
    runner = DemoRunner(mmm_model, tmp_path, LIMITS)
    result = runner.run(UIRequest("a person walks", entry.name, seconds=3.0, steps=4, sampler="anything"))
    assert "4 steps" in result.message and result.video.stat().st_size > 0
    assert np.load(next(f for f in result.files if f.name.endswith("joints.npy"))).shape[1:] == (22, 3)
    with pytest.raises(ConfigError, match="has no emotion conditioning"):
        runner.run(UIRequest("a person walks", entry.name, emotion="Joy"))
    with pytest.raises(ConfigError, match=f"between 1 and {entry.max_steps}"):
        runner.run(UIRequest("a person walks", entry.name, steps=entry.max_steps + 1))


def test_restyle_tab_restyles_an_uploaded_clip(models, tmp_path):
    from emomotion.app.restyle import RestyleUI, run_restyle
    from tests.conftest import build_synthetic

    data = tmp_path / "clipdata"
    build_synthetic(data)
    clip_id = (data / "train.txt").read_text().split()[0]
    clip = tmp_path / "upload.npy"
    source = np.load(data / "new_joint_vecs" / f"{clip_id}.npy")[:60]
    np.save(clip, source)
    runner = DemoRunner(models, tmp_path / "out", LIMITS)
    emo, text = names(models)
    result = run_restyle(runner, RestyleUI(str(clip), emo, "Sadness", strength=0.5, steps=10))
    feats = np.load(next(f for f in result.files if f.name.endswith("features.npy")))
    assert feats.shape == source.shape and result.video.suffix == ".mp4"
    assert "restyled as Sadness" in result.message
    for ui, message in [
        (RestyleUI(None, emo, "Joy"), "upload a clip"),
        (RestyleUI(str(clip), emo, "Joy", strength=1.5), "strength"),
        (RestyleUI(str(clip), emo, None), "choose an emotion"),
        (RestyleUI(str(clip), text, "Joy"), "cannot restyle"),
        (RestyleUI(str(tmp_path / "x.txt"), emo, "Joy"), ".bvh or .npy"),
    ]:
        with pytest.raises(ConfigError, match=message):
            run_restyle(runner, ui)
