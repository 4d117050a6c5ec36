"""The study runner: a tiny synthetic study runs end to end, skips finished stages, resumes, and
refuses a folder made with another config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emomotion.cli import main
from emomotion.errors import ConfigError
from emomotion.study import load_study_config, run_study
from emomotion.study.config import study_from_dict

TINY = """
name = "tiny"
workers = 1
max_frames = 64
[base]
source = "synthetic"
ratios = [0.6, 0.2, 0.2]
options = { actions = ["walk", "knock"], emotions = ["Neutral"], seconds = [2.5, 3.5], clips_per_pair = 3 }
[emotion]
source = "synthetic"
ratios = [0.5, 0.1, 0.4]
options = { actions = ["walk"], seconds = [2.5, 3.5], clips_per_pair = 2 }
[mdm]
preset = "tiny"
steps = 4
batch_size = 4
diffusion_steps = [50]
[[mdm.finetune]]
name = "lora"
strategy = "lora"
steps = 2
batch_size = 4
lr = 1e-3
seeds = [0, 1]
[mmm]
enabled = false
[eval]
evaluator_preset = "tiny"
evaluator_steps = 4
classifier_steps = 4
reps = 1
mdm_samplers = [["ddim", 5]]
mm_texts = 0
"""


@pytest.fixture()
def config(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_tiny_study_runs_and_skips_finished_stages(config, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["study", "run", str(config), "--out", str(out)]) == 0
    state = json.loads((out / "study_state.json").read_text())
    assert list(state["stages"]) == [
        "data_base",
        "data_emotion",
        "mdm_base_50",
        "mdm_lora_50_s0",
        "mdm_lora_50_s1",
        "data_merged",
        "evaluator",
        "emotion_classifier",
        "eval",
        "results",
    ]
    assert Path(state["stages"]["mdm_lora_50_s1"]["result"]["checkpoint"]).exists()
    assert state["stages"]["data_emotion"]["result"]["clips"] == 16
    assert (out / "RESULTS.md").exists() and (out / "eval" / "emotion" / "report.md").exists()
    before = (out / "study_state.json").read_text()
    assert main(["study", "run", str(config), "--out", str(out)]) == 0  # nothing left to do
    assert (out / "study_state.json").read_text() == before
    assert main(["study", "stages", str(config), "--out", str(out)]) == 0
    assert "mdm_lora_50_s1" in capsys.readouterr().out
    assert main(["study", "run", str(config), "--out", str(out), "--scale", "2"]) == 2
    err = capsys.readouterr().err
    assert "mdm_base_50 was run with a different config" in err, err
    config.write_text(TINY.replace("reps = 1", "reps = 2"))  # only the evaluation changes: it alone reruns
    assert main(["study", "run", str(config), "--out", str(out)]) == 0
    after = json.loads((out / "study_state.json").read_text())["stages"]
    training = [k for k in after if k not in ("eval", "results")]
    assert {k: after[k] for k in training} == {k: json.loads(before)["stages"][k] for k in training}
    assert after["eval"]["fingerprint"] != json.loads(before)["stages"]["eval"]["fingerprint"]


def test_only_reruns_a_named_stage_and_unknown_stages_are_errors(config, tmp_path):
    cfg = load_study_config(config)
    out = tmp_path / "out"
    run_study(cfg, out, only=("data_base",))
    state = json.loads((out / "study_state.json").read_text())
    assert list(state["stages"]) == ["data_base"]
    with pytest.raises(ConfigError, match="unknown stage"):
        run_study(cfg, out, only=("nope",))


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        study_from_dict({"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}, "typo": 1})
    with pytest.raises(ConfigError, match="missing key 'base'"):
        study_from_dict({"name": "x", "emotion": {"source": "s"}})
    with pytest.raises(ConfigError, match=r"mdm.steps must be int"):
        study_from_dict(
            {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}, "mdm": {"steps": "many"}}
        )
    for variant, message in [({"official_load": True}, "official_load needs train_vq"),
                             ({"patience": 2}, "patience needs eval_every"),
                             ({"label_lr_scale": 0.0}, "label_lr_scale must be > 0")]:  # fmt: skip
        mmm = {"finetune": [{"name": "v", **variant}]}
        with pytest.raises(ConfigError, match=message):
            study_from_dict({"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}, "mmm": mmm})
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study_config(bad)


def test_an_mmm_fine_tune_variant_can_add_emotion_conditioning(tmp_path, monkeypatch):
    """The variant's label options reach the MMM fine-tune (the training itself is stubbed out)."""
    import emomotion.training.mmm as mmm_training
    from emomotion.study.mmm_stages import mmm_finetune_stage
    from emomotion.study.runner import StudyContext

    variant = {"name": "label", "add_emotion_conditioning": True, "label_lr_scale": 10.0}
    cfg = study_from_dict({"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"},
                           "mmm": {"finetune": [variant]}})  # fmt: skip
    runs: list[mmm_training.MMMRun] = []

    def fake_run(run: mmm_training.MMMRun, **_: object) -> Path:
        runs.append(run)
        return run.out / "step00000001.safetensors"

    monkeypatch.setattr(mmm_training, "run_mmm", fake_run)
    ctx = StudyContext(cfg, tmp_path, {"stages": {"mmm_base": {"result": {"checkpoint": str(tmp_path)}}}})
    result = mmm_finetune_stage(cfg, cfg.mmm.finetune[0]).fn(ctx)
    assert (
        result["variant"] == "label" and runs[0].add_emotion_conditioning and runs[0].label_lr_scale == 10.0
    )


def test_the_vq_window_and_schedule_reach_the_vq_and_keep_old_fingerprints(tmp_path, monkeypatch):
    """New [mmm] VQ settings reach the VQ run; at their defaults, earlier studies' fingerprints hold."""
    import emomotion.training.vq as vq_training
    from emomotion.study.mmm_stages import vq_base_stage
    from emomotion.study.runner import StudyContext

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}}
    default = study_from_dict(sources)
    assert "vq_window" not in vq_base_stage(default).inputs["mmm"]
    mmm = {"vq_preset": "small_traj", "vq_window": 128, "vq_lr_schedule": "cosine"}
    cfg = study_from_dict({**sources, "mmm": mmm})
    assert vq_base_stage(cfg).fingerprint != vq_base_stage(default).fingerprint
    runs: list[vq_training.VQRun] = []

    def fake_run(run: vq_training.VQRun, **_: object) -> Path:
        runs.append(run)
        return run.out / "step00000001.safetensors"

    monkeypatch.setattr(vq_training, "run_vq", fake_run)
    vq_base_stage(cfg).fn(StudyContext(cfg, tmp_path, {"stages": {}}))
    run = runs[0]
    assert (run.preset, run.window, run.train.lr_schedule) == ("small_traj", 128, "cosine")
    with pytest.raises(ConfigError, match="vq_window"):
        study_from_dict({**sources, "mmm": {"vq_window": 30}})


def test_the_mmm_headline_variant_gets_classifier_guided_rows_that_leave_fingerprints_alone(tmp_path):
    from emomotion.study.eval_stages import _entries
    from emomotion.study.mmm_stages import mmm_base_stage, mmm_finetune_stage
    from emomotion.study.runner import StudyContext

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}}
    mmm = {"finetune": [{"name": "label"}], "headline": "label"}
    plain = study_from_dict({**sources, "mmm": mmm})
    guided = study_from_dict(
        {
            **sources,
            "control": {"enabled": True, "headline": "h"},
            "mmm": {**mmm, "guidance_rows": [1.0, 2.0], "headline_guidance": 2.0},
        }
    )
    for stage in (mmm_base_stage, lambda c: mmm_finetune_stage(c, c.mmm.finetune[0])):
        assert stage(plain).fingerprint == stage(guided).fingerprint
    decoding = {"steps": 10, "temperature": 1.0, "top_k": 0, "guidance": 4.0}
    stages = {
        "mmm_label": {"result": {"family": "mmm", "checkpoint": "m.pt", "decodings": {"own": decoding}}},
        "guide_classifier": {"result": {"checkpoint": "g.pt"}},
        "mdm_h_50_s0": {
            "result": {"family": "mdm", "checkpoint": "h.pt", "diffusion_steps": 50, "variant": "h"}
        },
    }
    entries = {e.name: e for e in _entries(StudyContext(guided, tmp_path, {"stages": stages}))}
    assert sorted(entries) == [
        "mmm_label own",
        "mmm_label own, cls guidance 1",
        "mmm_label own, cls guidance 2",
    ]
    s = entries["mmm_label own, cls guidance 2"].settings
    assert (s.emotion_guidance, s.emotion_guidance_scale, s.guidance) == (Path("g.pt"), 2.0, 4.0)
    with pytest.raises(ConfigError, match="guide classifier"):
        study_from_dict({**sources, "mmm": {**mmm, "guidance_rows": [1.0]}})


def test_keep_base_and_the_replay_target_reach_the_run_and_keep_old_fingerprints(tmp_path, monkeypatch):
    import emomotion.checkpoint as checkpoint
    import emomotion.training.mdm as mdm_training
    from emomotion.study.mmm_stages import mmm_finetune_stage
    from emomotion.study.runner import StudyContext
    from emomotion.study.stages import mdm_finetune_stage

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}}
    plain = study_from_dict({**sources, "mdm": {"finetune": [{"name": "v", "replay_ratio": 0.5}]}})
    variant = plain.mdm.finetune[0]
    assert "keep_base" not in mdm_finetune_stage(plain, variant, 50, 0).inputs["variant"]
    assert "replay_target" not in mdm_finetune_stage(plain, variant, 50, 0).inputs["variant"]
    teacher = study_from_dict(
        {**sources, "mdm": {"finetune": [{"name": "v", "replay_ratio": 0.5, "replay_target": "teacher"}]}}
    )
    kept = study_from_dict({**sources, "mdm": {"finetune": [{"name": "v", "keep_base": True}]}})
    prints = {mdm_finetune_stage(c, c.mdm.finetune[0], 50, 0).fingerprint for c in (plain, teacher, kept)}
    assert len(prints) == 3
    runs: list[mdm_training.MDMRun] = []
    monkeypatch.setattr(
        mdm_training, "run_mdm", lambda run, **_: runs.append(run) or run.out / "s.safetensors"
    )
    monkeypatch.setattr(
        checkpoint, "load_checkpoint", lambda _: type("C", (), {"config": {"num_layers": 2}})()
    )
    state = {"stages": {"mdm_base_50": {"result": {"checkpoint": str(tmp_path / "b.safetensors")}}}}
    for c in (teacher, kept):
        mdm_finetune_stage(c, c.mdm.finetune[0], 50, 0).fn(StudyContext(c, tmp_path, state))
    assert (runs[0].replay_target, runs[0].keep_base) == ("teacher", False)
    assert (runs[1].replay_target, runs[1].keep_base, runs[1].replay) == ("data", True, None)
    for bad, match in (
        ({"keep_base": True, "replay_ratio": 0.5}, "keep_base"),
        ({"replay_target": "teacher"}, "replay_target"),
        ({"replay_ratio": 0.5, "replay_target": "base"}, "replay_target"),
    ):
        with pytest.raises(ConfigError, match=match):
            study_from_dict({**sources, "mdm": {"finetune": [{"name": "v", **bad}]}})
    mmm = study_from_dict({**sources, "mmm": {"finetune": [{"name": "m", "keep_base": True}]}})
    with pytest.raises(ConfigError, match="MDM's only"):
        mmm_finetune_stage(mmm, mmm.mmm.finetune[0])


def test_a_weights_of_variant_is_its_source_run_without_the_kept_base_and_trains_nothing(tmp_path):
    import torch

    from emomotion.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from emomotion.configs import config_dict
    from emomotion.models.mdm import MDM, preset
    from emomotion.study.mmm_stages import mmm_finetune_stage
    from emomotion.study.plan import study_stages
    from emomotion.study.runner import StudyContext
    from emomotion.text.base import TextEncoderSpec

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}, "mmm": {"enabled": False}}
    alone = {"name": "full", "weights_of": "kept", "seeds": [1]}
    kept = {"name": "kept", "keep_base": True, "steps": 300, "seeds": [0, 1]}
    mdm = {"diffusion_steps": [50], "finetune": [alone, kept]}
    cfg = study_from_dict({**sources, "mdm": mdm})
    stages = {s.name: s for s in study_stages(cfg)}
    names = [n for n in stages if n.startswith(("mdm_kept", "mdm_full"))]
    assert names == ["mdm_kept_50_s0", "mdm_kept_50_s1", "mdm_full_50_s1"]  # after the run it comes from
    longer = study_from_dict({**sources, "mdm": {**mdm, "finetune": [alone, {**kept, "steps": 600}]}})
    assert {s.name: s for s in study_stages(longer)}["mdm_full_50_s1"].fingerprint != stages[
        "mdm_full_50_s1"
    ].fingerprint

    torch.manual_seed(0)
    model = MDM(preset("tiny", text_dim=8, keep_base=True))
    ckpt = Checkpoint("mdm", config_dict(model.cfg), model.state_dict(), torch.zeros(263), torch.ones(263),
                      TextEncoderSpec(), 300, None, {"keep_base": True})  # fmt: skip
    path = save_checkpoint(tmp_path / "kept.safetensors", ckpt)
    state = {
        "stages": {"mdm_kept_50_s1": {"result": {"checkpoint": str(path), "variant": "kept", "seed": 1}}}
    }
    result = stages["mdm_full_50_s1"].fn(StudyContext(cfg, tmp_path, state))
    assert (result["variant"], result["seed"], result["weights_of"]) == ("full", 1, "mdm_kept_50_s1")
    weights = load_checkpoint(result["checkpoint"])
    assert Path(result["checkpoint"]).name == "step00000300.safetensors" and not weights.config["keep_base"]
    saved = {k for k in load_checkpoint(path).model_state if not k.startswith("base_copy.")}
    assert set(weights.model_state) == saved and len(saved) < len(load_checkpoint(path).model_state)
    weights.build_model()  # a plain MDM
    for bad in (
        [{**alone, "weights_of": "nope"}, kept],
        [alone, {**kept, "keep_base": False}],
        [{**alone, "keep_base": True}, kept],
        [{**alone, "seeds": [2]}, kept],
        [{**alone, "on": [50]}, kept],
    ):
        with pytest.raises(ConfigError, match=r"variant 'full': (weights_of|the weights)"):
            study_from_dict({**sources, "mdm": {**mdm, "finetune": bad}})
    mmm = study_from_dict({**sources, "mmm": {"finetune": [{"name": "m", "weights_of": "kept"}]}})
    with pytest.raises(ConfigError, match="MDM's only"):
        mmm_finetune_stage(mmm, mmm.mmm.finetune[0])


def test_the_label_lever_rows_come_from_the_label_variant(tmp_path):
    from emomotion.study.control_stages import control_entries
    from emomotion.study.runner import StudyContext

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}}
    control = {"enabled": True, "headline": "kept", "label_variant": "label", "training_ablation": "plain",
               "guidance_scale": 0.2, "samplers": [["ddim", 10]], "intensities": [0.0, 1.0]}  # fmt: skip
    cfg = study_from_dict({**sources, "control": control})
    names = ["mdm_base_50", "guide_classifier", "mdm_kept_50_s0", "mdm_kept_50_s1", "mdm_label_50_s0",
             "mdm_plain_50_s0"]  # fmt: skip
    state = {"stages": {n: {"result": {"checkpoint": f"{n}.pt"}} for n in names}}
    rows = control_entries(StudyContext(cfg, tmp_path, state))
    assert [str(e.checkpoint) for e in rows["headline"]] == [
        "mdm_base_50.pt",
        "mdm_kept_50_s0.pt",
        "mdm_kept_50_s1.pt",
    ]
    ablation = {e.name: str(e.checkpoint) for e in rows["ablation"]}
    assert ablation["label"] == ablation["label + classifier guidance"] == "mdm_label_50_s0.pt"
    assert ablation["label + classifier guidance without the training changes"] == "mdm_plain_50_s0.pt"
    assert ablation["recipe (kept + classifier guidance)"] == "mdm_kept_50_s0.pt"
    assert {str(e.checkpoint) for e in rows["intensity"] + rows["samplers"]} == {"mdm_kept_50_s0.pt"}
    own = study_from_dict({**sources, "control": {**control, "label_variant": ""}})
    ablation = {
        e.name: str(e.checkpoint) for e in control_entries(StudyContext(own, tmp_path, state))["ablation"]
    }
    assert ablation["label + classifier guidance (recipe)"] == "mdm_kept_50_s0.pt"
    assert ablation["recipe without the training changes"] == "mdm_plain_50_s0.pt"
    missing = study_from_dict({**sources, "control": {**control, "label_variant": "nope"}})
    with pytest.raises(ConfigError, match="label_variant"):
        control_entries(StudyContext(missing, tmp_path, state))


def test_every_measurement_reruns_when_a_setting_it_reads_changes_and_no_training_does():
    """The emotion-control, MMM-decoding and prompt settings reach the measurements' fingerprints
    (the control study once kept its old results after its guide scale changed)."""
    from emomotion.study.plan import study_stages

    sources = {"name": "x", "base": {"source": "s"}, "emotion": {"source": "s"}}
    control = {"enabled": True, "headline": "h", "guidance_scale": 0.2}
    mmm = {"finetune": [{"name": "label"}], "headline": "label"}
    mdm = {"finetune": [{"name": "h"}]}
    plain = study_from_dict({**sources, "mdm": mdm, "mmm": mmm, "control": control})
    edits = {
        "guide scale": {**sources, "mdm": mdm, "mmm": mmm, "control": {**control, "guidance_scale": 0.1}},
        "MMM guidance rows": {
            **sources,
            "mdm": mdm,
            "mmm": {**mmm, "guidance_rows": [1.0]},
            "control": control,
        },
        "prompts": {**sources, "mdm": mdm, "mmm": mmm, "control": control, "prompts": ["a person waves"]},
    }
    before = {s.name: s for s in study_stages(plain)}
    measurements = {name for name, s in before.items() if s.rerun}
    assert {"eval", "control_eval", "results"} <= measurements
    for what, edited in edits.items():
        after = {s.name: s.fingerprint for s in study_stages(study_from_dict(edited))}
        changed = {name for name, s in before.items() if name in after and after[name] != s.fingerprint}
        assert changed == measurements & set(after), what


def test_the_shipped_study_config_loads_and_plans_its_stages():
    from emomotion.study.plan import study_stages

    cfg = load_study_config(Path(__file__).parents[2] / "study" / "bandai.toml")
    names = [s.name for s in study_stages(cfg)]
    assert len(names) == len(set(names))
    headline = [n for n in names if n.startswith(f"mdm_{cfg.control.headline}_")]
    assert len(headline) >= 3  # the headline's seeds
    for variant in (v for v in cfg.mdm.finetune if v.weights_of):  # after the runs they come from
        source = max(names.index(n) for n in names if n.startswith(f"mdm_{variant.weights_of}_"))
        assert min(names.index(n) for n in names if n.startswith(f"mdm_{variant.name}_")) > source
