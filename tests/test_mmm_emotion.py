"""Emotion labels for MMM on tiny models: label scale 0 (or intensity 0) is exactly the text alone, the
label's effect on the logits grows with scale and intensity, a table added at fine-tuning starts exactly
at the base model, checkpoints keep ``num_emotions``, the CLI and the web demo offer the label only for
models that have it, and classifier guidance steers MMM's token logits too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.cli import main
from emomotion.data.emotions import EMOTION_INDEX, EMOTIONS
from emomotion.errors import ConfigError
from emomotion.generate import GenerateRequest, MotionGenerator, SamplingSettings
from emomotion.models.masked import MMM, MaskedTransformerConfig, mmm_config, mmm_config_from
from emomotion.models.vqvae import preset as vq_preset
from emomotion.sampling.masked import MaskedDecodingConfig, decode_motion, decode_tokens, guided_logits
from emomotion.text.base import TextEmbedding
from emomotion.training.mmm import MMMRun, _with_label_table


def _cli(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny VQ, an MMM trained with labels, a text-only MMM, and that one fine-tuned with a new table."""
    base = tmp_path_factory.mktemp("mmm_emotion")
    data = base / "data"
    assert _cli("data", "build", "synthetic", "--out", data, "--clips-per-pair", "1") == 0
    small = ["--preset", "tiny", "--batch-size", "8", "--save-every", "1000"]
    assert _cli("train", "vq", "--data", data, "--out", base / "vq", "--steps", "6", *small) == 0
    common = ["train", "mmm", "--data", data, "--vq", base / "vq", *small]
    assert (
        _cli(*common, "--out", base / "emo", "--steps", "12", "--lr", "2e-3", "--emotion-conditioning") == 0
    )
    assert _cli(*common, "--out", base / "text", "--steps", "6") == 0
    assert _cli("finetune", "mmm", "--from", base / "text", "--data", data, "--out", base / "ft", "--steps", "2",
                "--batch-size", "8", "--add-emotion-conditioning", "--label-lr-scale", "10") == 0  # fmt: skip
    assert _cli("train", "emotion-classifier", "--data", data, "--out", base / "cls", "--preset", "tiny",
                "--steps", "10", "--batch-size", "8") == 0  # fmt: skip
    return {"data": data, "vq": base / "vq", "emo": base / "emo", "text": base / "text", "ft": base / "ft",
            "cls": base / "cls"}  # fmt: skip


def _error_lines(err: str) -> list[str]:
    """stderr without the text encoder's loading progress bar (carriage-return lines, not ours)."""
    return [line for line in err.strip().split("\n") if "\r" not in line]


def _gen(model: Path, settings: SamplingSettings, emotion: str | None = "Sadness") -> np.ndarray:
    request = GenerateRequest(("a person walks",), seconds=3.0, num=2, settings=settings,
                              emotions=(emotion,) if emotion else (), seed=5)  # fmt: skip
    return np.stack([m.features for m in MotionGenerator(model)(request)])


def _text(b: int, dim: int, seed: int = 0) -> TextEmbedding:
    g = torch.Generator().manual_seed(seed)
    return TextEmbedding(
        torch.randn(b, dim, generator=g),
        torch.randn(b, 4, dim, generator=g),
        torch.ones(b, 4, dtype=torch.bool),
    )


def _masked_input(model: MMM, b: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All-masked ids (B, n + 1) ending in END, and the token mask."""
    t = model.cfg.trans
    ids = torch.full((b, n + 1), t.mask_id)
    ids[:, n] = t.end_id
    return ids, torch.ones(b, n + 1, dtype=torch.bool)


def test_checkpoints_keep_num_emotions(runs):
    emo, text, ft = (load_checkpoint(runs[k]) for k in ("emo", "text", "ft"))
    assert emo.config["trans"]["num_emotions"] == ft.config["trans"]["num_emotions"] == len(EMOTIONS)
    assert text.config["trans"]["num_emotions"] == 0
    assert mmm_config_from(emo.config).trans.num_emotions == len(EMOTIONS)
    model = emo.build_model()
    assert model.trans.trans_base.emotion_emb.weight.shape == (len(EMOTIONS) + 1, model.cfg.trans.embed_dim)
    assert not any("emotion_emb" in k for k in text.model_state)
    assert MotionGenerator(emo).num_emotions == len(EMOTIONS) and MotionGenerator(text).num_emotions == 0
    assert ft.extra["label_lr_scale"] == 10.0
    assert (
        float(ft.model_state["trans.trans_base.emotion_emb.weight"].abs().sum()) > 0
    )  # the new table trained


def test_label_scale_or_intensity_zero_is_exactly_the_text_alone(runs):
    no_label = _gen(runs["emo"], SamplingSettings(), emotion=None)
    np.testing.assert_array_equal(_gen(runs["emo"], SamplingSettings(emotion_scale=0.0)), no_label)
    np.testing.assert_array_equal(
        _gen(runs["emo"], SamplingSettings(emotion_scale=3.0, intensity=0.0)), no_label
    )


def test_the_label_effect_on_the_logits_grows_with_scale_and_intensity(runs):
    model = load_checkpoint(runs["emo"]).build_model().eval()
    text = _text(2, model.cfg.trans.text_dim)
    ids, token_mask = _masked_input(model, 2, 8)
    labels = torch.tensor([EMOTION_INDEX["Sadness"], EMOTION_INDEX["Joy"]])
    with torch.no_grad():
        text_only = guided_logits(model, ids, text, token_mask, 2.0)
        change = [
            float((guided_logits(model, ids, text, token_mask, 2.0, labels, s) - text_only).abs().mean())
            for s in (0.0, 1.0, 2.0, 4.0)
        ]
    assert change[0] == 0.0 and 0 < change[1] < change[2] < change[3]
    by_intensity = [
        np.abs(_gen(runs["emo"], SamplingSettings(emotion_scale=6.0, intensity=i)) - _gen(
            runs["emo"], SamplingSettings(), emotion=None)).mean()
        for i in (0.0, 3.0)
    ]  # fmt: skip
    assert by_intensity[0] == 0.0 < by_intensity[1]  # the label changes the decoded motion


def test_a_table_added_at_fine_tuning_starts_at_the_base_model(runs):
    base = load_checkpoint(runs["text"])
    model = base.build_model(use_ema=True).eval()
    cfg, labelled = _with_label_table(mmm_config_from(base.config), model, base)
    labelled.eval()
    assert cfg.trans.num_emotions == len(EMOTIONS)
    assert not labelled.trans.trans_base.emotion_emb.weight.detach().any()
    text = _text(3, cfg.trans.text_dim, seed=1)
    labels = torch.tensor([0, 3, -1])
    ids, token_mask = _masked_input(model, 3, 6)
    with torch.no_grad():
        plain = guided_logits(model, ids, text, token_mask, 4.0)
        guided = guided_logits(labelled, ids, text, token_mask, 4.0, labels, 5.0)
    torch.testing.assert_close(guided, plain, rtol=0, atol=1e-5)
    decoding = MaskedDecodingConfig(steps=4, guidance=4.0, emotion_scale=2.5, intensity=2.0)
    before = decode_tokens(model, text, [6, 6, 6], decoding, seed=3)
    after = decode_tokens(labelled, text, [6, 6, 6], decoding, seed=3, emotion=labels)
    assert torch.equal(before, after)


def test_generate_with_an_emotion_label(runs, tmp_path):
    out = tmp_path / "g"
    rc = _cli("generate", "--model", runs["emo"], "--text", "a person walks", "--emotion", "Sadness",
              "--emotion-scale", "3", "--intensity", "1.5", "--length", "2.5", "--steps", "4", "--format", "npy",
              "--out", out)  # fmt: skip
    assert rc == 0
    feats = np.load(out / "00_a_person_walks_sadness" / "features.npy")
    assert feats.shape == (48, 263) and np.isfinite(feats).all()
    rc = _cli("generate", "--model", runs["ft"], "--text", "a person waves", "--emotion", "Joy", "--length", "2",
              "--steps", "3", "--format", "npy", "--out", tmp_path / "ft")  # fmt: skip
    assert rc == 0 and (tmp_path / "ft" / "00_a_person_waves_joy" / "features.npy").exists()


def test_an_mmm_without_the_table_refuses_the_label(runs, tmp_path, capsys):
    out = tmp_path / "g"
    rc = _cli(
        "generate", "--model", runs["text"], "--text", "a person walks", "--emotion", "Sadness", "--out", out
    )
    err = capsys.readouterr().err
    assert rc == 2 and _error_lines(err) == [
        "error: this MMM model has no emotion control; put the emotion in the text instead"
    ]
    assert not out.exists()


def test_classifier_guidance_steers_mmm_decoding_toward_the_target(runs):
    """A stand-in classifier whose class 0 is "feature 3 high" and class 1 "feature 3 low": guided
    decoding moves the decoded motion's feature 3 the asked way."""
    from emomotion.sampling.token_guidance import token_guidance

    model = MotionGenerator(runs["text"]).model
    w = torch.zeros(263)
    w[3] = 1.0

    def classifier(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        score = (x * w).sum(-1).mean(1)  # (B,)
        return torch.stack([score, -score], dim=1)

    b, n = 8, 12
    text = _text(b, model.cfg.trans.text_dim)
    cfg = MaskedDecodingConfig(steps=6, temperature=1.0)
    affine = (torch.ones(263), torch.zeros(263))

    def feature(target: int, scale: float) -> float:
        labels = torch.full((b,), target)
        guide = (
            token_guidance(model.vq, classifier, labels, torch.full((b,), n), affine, scale)
            if scale
            else None
        )
        ids = decode_tokens(model, text, [n] * b, cfg, seed=3, guide=guide)
        return float(torch.stack(decode_motion(model, ids))[..., 3].mean())

    plain = feature(0, 0.0)  # the tiny VQ's codes differ by ~0.002 in this feature
    assert feature(0, 2.0) > plain + 0.003 and feature(1, 2.0) < plain - 0.003


def test_generate_passes_the_classifier_to_mmm_decoding(runs):
    plain = _gen(runs["text"], SamplingSettings(), emotion=None)
    zero = _gen(
        runs["text"], SamplingSettings(emotion_guidance=runs["cls"], emotion_guidance_scale=0.0), "Joy"
    )
    np.testing.assert_array_equal(plain, zero)
    guided = _gen(
        runs["text"], SamplingSettings(emotion_guidance=runs["cls"], emotion_guidance_scale=3.0), "Joy"
    )
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)  # the tiny VQ varies little


def test_token_guidance_moves_only_masked_positions_of_samples_with_a_target(runs):
    from emomotion.sampling.token_guidance import token_guidance

    gen = MotionGenerator(runs["text"])
    net, affine = gen._classifier(runs["cls"])
    model, t = gen.model, gen.model.cfg.trans
    ids, _ = _masked_input(model, 3, 6)
    ids[:, :2] = 5  # two positions already decoded
    ids[2, 4:6], ids[2, 4] = t.pad_id, t.end_id  # the third sample is 4 tokens long
    logits = torch.randn(3, 7, t.num_codes, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([EMOTION_INDEX["Joy"], -1, EMOTION_INDEX["Anger"]])
    guide = token_guidance(model.vq, net, target, torch.tensor([6, 6, 4]), affine, 10.0)
    out = guide(logits, ids, ids == t.mask_id)
    changed = (out - logits).abs().amax(-1) > 0  # (B, N + 1)
    assert changed[0, 2:6].all() and not changed[0, :2].any() and not changed[0, 6]
    assert not changed[1].any()  # no target: untouched
    assert changed[2, 2:4].all() and not changed[2, 4:].any()  # nothing past the sample's length
    again = token_guidance(model.vq, net, target, torch.tensor([6, 6, 4]), affine, 20.0)(
        logits, ids, ids == t.mask_id
    )
    torch.testing.assert_close(again - logits, 2 * (out - logits))  # the scale is a multiplier


def test_an_mmm_refuses_a_guide_that_is_not_an_emotion_classifier(runs, tmp_path, capsys):
    out = tmp_path / "g"
    rc = _cli("generate", "--model", runs["emo"], "--text", "a person walks", "--emotion", "Joy",
              "--emotion-guidance", runs["vq"], "--emotion-guidance-scale", "0.3", "--out", out)  # fmt: skip
    lines = _error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1 and "not an emotion classifier" in lines[0], lines
    assert not out.exists()


def test_the_demo_offers_the_emotion_controls_for_a_labelled_mmm(runs, tmp_path):
    from emomotion.app import AppLimits, DemoRunner, load_models
    from emomotion.app.runner import UIRequest

    limits = AppLimits(max_prompt_chars=200, max_seconds=6.0, max_samples=3)
    models = load_models([runs["emo"], runs["text"]], limits)
    by_run = {e.path.resolve().parent: e for e in models.values()}
    emo, text = by_run[runs["emo"].resolve()], by_run[runs["text"].resolve()]
    assert emo.kind == text.kind == "mmm" and emo.emotions and not text.emotions
    runner = DemoRunner(models, tmp_path, limits)
    _, request = runner.request(UIRequest("a person walks", emo.name, emotion="Joy", intensity=1.5))
    assert request.emotions == ("Joy",) and request.settings.intensity == 1.5
    with pytest.raises(ConfigError, match="has no emotion conditioning"):
        runner.request(UIRequest("a person walks", text.name, emotion="Joy"))


def test_label_dropout_and_run_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="emotion_drop_prob"):
        MaskedTransformerConfig(num_emotions=9, emotion_drop_prob=1.0)
    with pytest.raises(ConfigError, match="num_emotions"):
        MaskedTransformerConfig(num_emotions=-1)
    with pytest.raises(ConfigError, match="needs a base checkpoint"):
        MMMRun(tmp_path, tmp_path, vq=tmp_path, add_emotion_conditioning=True)
    with pytest.raises(ConfigError, match="training from scratch"):
        MMMRun(tmp_path, tmp_path, init_from=tmp_path, emotion_conditioning=True)
    with pytest.raises(ConfigError, match="label_lr_scale"):
        MMMRun(tmp_path, tmp_path, vq=tmp_path, label_lr_scale=0.0)


def test_labels_are_dropped_in_training_only():
    torch.manual_seed(0)
    model = MMM(
        mmm_config(
            vq_preset("tiny"),
            "tiny",
            text_dim=8,
            num_emotions=len(EMOTIONS),
            emotion_drop_prob=0.5,
            text_drop_prob=0.0,
        )
    )
    torch.nn.init.normal_(model.trans.trans_base.emotion_emb.weight)
    text = _text(64, 8)
    ids, token_mask = _masked_input(model, 64, 4)
    labels = torch.full((64,), EMOTION_INDEX["Anger"])
    no_label = torch.full((64,), -1)
    model.eval()
    with torch.no_grad():
        labelled = model(ids, text, token_mask, emotion=labels)
        plain = model(ids, text, token_mask, emotion=no_label)
        assert not torch.allclose(labelled, plain)
        torch.testing.assert_close(model(ids, text, token_mask, emotion=labels), labelled)  # no drops in eval
        model.train()
        trained = model(ids, text, token_mask, emotion=labels)
    dropped = torch.isclose(trained, plain, atol=1e-5).flatten(1).all(-1)  # per sample: the "no label" row
    assert 10 < int(dropped.sum()) < 54
