"""Emotion control through the CLI on a tiny labelled MDM and a tiny emotion classifier: the label's
effect grows with its scale and intensity, classifier guidance, several emotions in one call, restyle
(SDEdit) from features, joints and BVH, and the bad inputs that must fail before writing anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emomotion.cli import main
from emomotion.generate import GenerateRequest, MotionGenerator, SamplingSettings


def _cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("emotion")
    data, mdm, plain, cls = base / "data", base / "mdm", base / "plain", base / "cls"
    assert _cli("data", "build", "synthetic", "--out", data, "--clips-per-pair", "1") == 0
    common = [
        "--data",
        data,
        "--preset",
        "tiny",
        "--steps",
        "12",
        "--batch-size",
        "8",
        "--diffusion-steps",
        "20",
    ]
    assert _cli("train", "mdm", *common, "--out", mdm, "--emotion-conditioning") == 0
    assert _cli("train", "mdm", *common, "--out", plain) == 0
    assert _cli("train", "emotion-classifier", "--data", data, "--out", cls, "--preset", "tiny", "--steps", "10",
                "--batch-size", "8") == 0  # fmt: skip
    return {"data": data, "mdm": mdm, "plain": plain, "cls": cls}


def _gen(model: Path, settings: SamplingSettings, emotion: str | None = "Sadness") -> np.ndarray:
    request = GenerateRequest(("a person walks",), seconds=3.0, num=2, settings=settings,
                              emotions=(emotion,) if emotion else (), seed=5)  # fmt: skip
    return np.stack([m.features for m in MotionGenerator(model)(request)])


def test_the_label_effect_grows_with_scale_and_intensity(runs):
    text_only = _gen(runs["mdm"], SamplingSettings(emotion_scale=0.0))
    no_label = _gen(runs["mdm"], SamplingSettings(), emotion=None)
    np.testing.assert_allclose(text_only, no_label, atol=1e-4)
    change = [
        np.abs(_gen(runs["mdm"], SamplingSettings(emotion_scale=s)) - text_only).mean() for s in (1, 3, 6)
    ]
    assert 0 < change[0] < change[1] < change[2]
    by_intensity = [
        np.abs(_gen(runs["mdm"], SamplingSettings(emotion_scale=3, intensity=i)) - text_only).mean()
        for i in (0.0, 1.0, 2.0)
    ]
    assert by_intensity[0] < 1e-4 < by_intensity[1] < by_intensity[2]


def test_classifier_guidance_raises_the_classifier_probability(runs):
    from emomotion.checkpoint import load_checkpoint
    from emomotion.data.emotions import EMOTION_INDEX

    net = load_checkpoint(runs["cls"]).build_model().eval()
    target = EMOTION_INDEX["Joy"]
    probs = []
    for scale in (0.0, 0.5):
        s = SamplingSettings(sampler="ddim", steps=10, emotion_guidance=runs["cls"], emotion_guidance_scale=scale,
                             emotion_scale=0.0)  # fmt: skip
        feats = _gen(runs["plain"], s, emotion="Joy") if scale else _gen(runs["plain"], SamplingSettings(
            sampler="ddim", steps=10), emotion=None)  # fmt: skip
        probs.append(net.predict(feats, [feats.shape[1]] * len(feats))[:, target].mean())
    assert probs[1] > probs[0]


def test_several_emotions_in_one_call(runs, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves | Joy\na person walks\n", encoding="utf-8")
    out = tmp_path / "g"
    rc = _cli("generate", "--model", runs["mdm"], "--prompts", prompts, "--emotion", "Anger", "--emotion", "sad",
              "--length", "2.5", "--steps", "5", "--format", "npy", "--out", out)  # fmt: skip
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00_a_person_waves_joy", "01_a_person_walks_anger", "02_a_person_walks_sadness"]


def test_generate_with_classifier_guidance_cli(runs, tmp_path):
    rc = _cli("generate", "--model", runs["plain"], "--text", "a person walks", "--emotion", "Joy",
              "--emotion-guidance", runs["cls"], "--emotion-guidance-scale", "0.3", "--sampler", "ddim",
              "--steps", "5", "--length", "2.5", "--format", "npy", "--out", tmp_path / "g")  # fmt: skip
    assert rc == 0 and (tmp_path / "g" / "00_a_person_walks_joy" / "features.npy").exists()


@pytest.fixture(scope="module")
def clip(runs, tmp_path_factory) -> Path:
    """A real-looking source clip: the first test clip of the synthetic set, as features."""
    data = runs["data"]
    clip_id = (data / "test.txt").read_text().split()[0]
    path = tmp_path_factory.mktemp("clip") / "clip.npy"
    feats = np.load(data / "new_joint_vecs" / f"{clip_id}.npy")[:80]
    np.save(path, feats)
    return path


def _restyle(runs, clip, out, *extra: str) -> int:
    return _cli("restyle", clip, "--model", runs["mdm"], "--emotion", "Sadness", "--out", out, "--steps", "10",
                "--format", "npy,bvh", *extra)  # fmt: skip


def test_restyle_strength_zero_gives_the_clip_back(runs, clip, tmp_path):
    from emomotion.features import recover_joints

    assert _restyle(runs, clip, tmp_path / "r", "--strength", "0") == 0
    (folder,) = [p for p in (tmp_path / "r").iterdir() if p.is_dir()]
    joints = np.load(folder / "joints.npy")
    expected = recover_joints(np.load(clip))
    assert joints.shape == expected.shape
    assert np.abs(joints - expected).max() < 0.01  # within 1 cm


@pytest.mark.parametrize("source", ["features", "joints", "bvh"])
def test_restyle_changes_the_clip_and_keeps_its_length(runs, clip, tmp_path, source):
    from emomotion.features import recover_joints

    feats = np.load(clip)
    if source == "joints":
        path = tmp_path / "clip.joints.npy"
        np.save(path, recover_joints(feats).astype(np.float32))
    elif source == "bvh":
        path = tmp_path / "clip.bvh"
        assert _cli("convert", clip, "--to", "bvh", "--out", path) == 0
    else:
        path = clip
    assert _restyle(runs, path, tmp_path / "r", "--strength", "0.6", "--num", "2") == 0
    folders = sorted(p for p in (tmp_path / "r").iterdir() if p.is_dir())
    assert len(folders) == 2 and all((f / "motion.bvh").exists() for f in folders)
    out = np.load(folders[0] / "features.npy")
    frames = feats.shape[0]  # joints and BVH round trips keep the frame count (within one)
    assert abs(out.shape[0] - frames) <= 1
    n = min(out.shape[0], frames)
    assert np.abs(out[:n] - feats[:n]).mean() > 1e-3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strength", "1.5"], "strength"),
        (["--strength", "nan"], "strength"),
        (["--emotion", "Boredom"], "unknown emotion"),
    ],
)
def test_restyle_bad_values(runs, clip, tmp_path, capsys, args, message):
    out = tmp_path / "r"
    rc = _cli("restyle", clip, "--model", runs["mdm"], "--emotion", "Sadness", "--out", out, *args)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_restyle_unreadable_clip_and_unlabelled_model(runs, clip, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    out = tmp_path / "r"
    assert _cli("restyle", bad, "--model", runs["mdm"], "--emotion", "Joy", "--out", out) == 2
    assert "cannot read the clip" in capsys.readouterr().err and not out.exists()
    assert _cli("restyle", clip, "--model", runs["plain"], "--emotion", "Joy", "--out", out) == 2
    assert "no emotion conditioning" in capsys.readouterr().err and not out.exists()
    assert _cli("generate", "--model", runs["plain"], "--text", "a person walks", "--emotion", "Joy",
                "--out", out) == 2  # fmt: skip
    assert "no emotion conditioning" in capsys.readouterr().err and not out.exists()


def test_eval_settings_carry_the_emotion_options(runs):
    from emomotion.errors import ConfigError
    from emomotion.evaluation.compare import parse_setting

    s = parse_setting("ddim:20:eta=0.5:label=2:intensity=1.5:cg=0.3", emotion_guidance=runs["cls"])
    assert (s.sampler, s.steps, s.eta, s.emotion_scale, s.intensity, s.emotion_guidance_scale) == (
        "ddim", 20, 0.5, 2.0, 1.5, 0.3)  # fmt: skip
    with pytest.raises(ConfigError, match="unknown option"):
        parse_setting("ddim:20:color=2")
    with pytest.raises(ConfigError, match="emotion-guidance"):
        parse_setting("ddim:20:cg=0.3")


def test_output_smoothing_removes_the_samplers_jerk_and_keeps_kept_frames(runs, tmp_path):
    from emomotion.evaluation.metrics import jitter
    from emomotion.features import recover_joints

    def jerk(settings: SamplingSettings) -> float:
        return float(
            np.mean([jitter(recover_joints(f)) for f in _gen(runs["plain"], settings, emotion=None)])
        )

    raw, default = jerk(SamplingSettings(smoothing=0.0)), jerk(SamplingSettings())
    assert default < raw / 3  # MDM's default smoothing (sigma 1 frame)
    assert jerk(SamplingSettings(smoothing=2.0)) < default
    source = _gen(runs["plain"], SamplingSettings(smoothing=0.0), emotion=None)[0]
    np.save(tmp_path / "source.npy", source)
    request = GenerateRequest(("a person jumps",), seconds=3.0, settings=SamplingSettings(smoothing=2.0),
                              source=tmp_path / "source.npy", keep_first=10, keep_last=5)  # fmt: skip
    out = MotionGenerator(runs["plain"])(request)[0].features
    np.testing.assert_allclose(out[:10], source[:10], atol=1e-5)
    np.testing.assert_allclose(out[-5:], source[-5:], atol=1e-5)
    assert _cli("generate", "--model", runs["plain"], "--text", "a person walks", "--out", tmp_path / "o",
                "--smoothing", "11") == 2  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_noise_scale_narrows_the_samples_of_a_deterministic_sampler(runs, tmp_path):
    def spread(scale: float) -> float:
        request = GenerateRequest(("a person walks",), seconds=3.0, num=6, seed=2,
                                  settings=SamplingSettings(sampler="ddim", smoothing=0.0, noise_scale=scale))  # fmt: skip
        x = np.stack([m.features for m in MotionGenerator(runs["plain"])(request)])
        return float(x.std(axis=0).mean())

    assert spread(0.5) < spread(1.0)
    out = tmp_path / "n"
    assert _cli("generate", "--model", runs["plain"], "--text", "a person walks", "--out", out, "--sampler", "ddim",
                "--noise-scale", "0.7", "--format", "npy") == 0  # fmt: skip
    assert list(out.rglob("*.npy"))
    for bad in ("0", "2.5", "nan"):
        assert _cli("generate", "--model", runs["plain"], "--text", "a person walks", "--out", tmp_path / "b",
                    "--noise-scale", bad) == 2  # fmt: skip
    assert not (tmp_path / "b").exists()
