"""MMM against MDM: latency per motion at equal preset scale, measured side by side in one run.

    python -m bench.mmm

MMM (10 parallel decoding steps, batched classifier-free guidance, VQ decoding included) against
MDM with 1000-step and 50-step DDPM (batched guidance); MMM also with its full emotion control
(label guidance and classifier guidance at every step), at the ``small`` size against MDM-1000 with
the same control (its label's guidance pass and the classifier's gradient at every step), both at the
``small`` and the official preset sizes, batch 1, 196 frames, the text encoded once per request. The ``small`` presets share
their scale (width 256, feed-forward 512, 4 heads); the official ones do not (MMM's transformer is
about ten times MDM's), so only the ``small`` row compares equal scales. Goal: MMM at most 1/100 of
MDM-1000. Writes its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace

import torch

from bench.report import write_section
from emomotion.data.emotions import EMOTIONS
from emomotion.models.condition import MotionCondition
from emomotion.models.emotion_classifier import EmotionClassifier
from emomotion.models.emotion_classifier import preset as classifier_preset
from emomotion.models.masked import MMM, MMMConfig
from emomotion.models.masked import preset as trans_preset
from emomotion.models.mdm import MDM
from emomotion.models.mdm import preset as mdm_preset
from emomotion.models.vqvae import preset as vq_preset
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.emotion_guidance import classifier_guidance
from emomotion.sampling.guidance import classifier_free_guidance
from emomotion.sampling.masked import MaskedDecodingConfig, decode_motion, decode_tokens, generate_motion
from emomotion.sampling.token_guidance import token_guidance
from emomotion.text import build_text_encoder

log = logging.getLogger("bench.mmm")
FRAMES = 196
TEXT = "a person walks sadly"
SIZES = {"small": ("small", "small", "small"), "official": ("mdm", "mmm", "mmm")}


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def rows(size: str, repeats: int, mdm_1000: bool) -> list[str]:
    mdm_name, vq_name, trans_name = SIZES[size]
    torch.manual_seed(0)
    encoder = build_text_encoder("minilm")
    mdm = MDM(mdm_preset(mdm_name, text_dim=encoder.dim)).eval()
    vq = vq_preset(vq_name)
    mmm = MMM(
        MMMConfig(
            vq, trans_preset(trans_name, num_codes=vq.num_codes, code_dim=vq.code_dim, text_dim=encoder.dim)
        )
    ).eval()
    diffusion = GaussianDiffusion(DiffusionConfig(1000))

    def run_mdm(steps: int) -> None:
        encoder._cache.clear()
        cond = MotionCondition(encoder.encode([TEXT]))
        with torch.inference_mode():
            sample(
                diffusion, classifier_free_guidance(mdm, cond, text_scale=2.5), (1, FRAMES, 263), steps=steps
            )

    def run_mmm() -> None:
        encoder._cache.clear()
        with torch.inference_mode():
            generate_motion(mmm, encoder.encode([TEXT]), FRAMES, MaskedDecodingConfig(steps=10, guidance=4.0))

    # the full emotion control: an MMM with a label table, the label's own guidance (a third pass) and
    # classifier guidance through the VQ decoder and an emotion classifier at every step
    labelled = MMM(replace(mmm.cfg, trans=replace(mmm.cfg.trans, num_emotions=len(EMOTIONS)))).eval()
    classifier = EmotionClassifier(classifier_preset("small")).eval()
    target = torch.tensor([EMOTIONS.index("Sadness")])
    affine = (torch.ones(263), torch.zeros(263))

    def run_mmm_emotion() -> None:
        encoder._cache.clear()
        n = FRAMES // labelled.frames_per_token
        guide = token_guidance(labelled.vq, classifier, target, torch.tensor([n]), affine, 2.0)
        with torch.no_grad():  # not inference mode: the guide differentiates the decoder and classifier
            cfg = MaskedDecodingConfig(steps=10, guidance=4.0, emotion_scale=2.5)
            ids = decode_tokens(labelled, encoder.encode([TEXT]), [n], cfg, emotion=target, guide=guide)
            decode_motion(labelled, ids)

    mdm_labelled = MDM(replace(mdm.cfg, num_emotions=len(EMOTIONS))).eval()

    def run_mdm_emotion(steps: int) -> None:
        encoder._cache.clear()
        cond = MotionCondition(encoder.encode([TEXT]), emotion=target)
        denoise = classifier_free_guidance(mdm_labelled, cond, text_scale=2.5, emotion_scale=2.5)
        guided = classifier_guidance(denoise, classifier, target, torch.tensor([FRAMES]), affine, 0.2)
        with torch.no_grad():
            sample(diffusion, guided, (1, FRAMES, 263), steps=steps)

    times = {
        "MMM, 10 decoding steps": _best(run_mmm, repeats),
        "MMM, 10 steps, label and classifier guidance": _best(run_mmm_emotion, repeats),
        "MDM, DDPM 50 steps": _best(lambda: run_mdm(50), repeats),
    }
    if mdm_1000:
        times["MDM, DDPM 1000 steps"] = _best(lambda: run_mdm(1000), 1)
    if mdm_1000 and size == "small":
        times["MDM, DDPM 1000 steps, label and classifier guidance"] = _best(lambda: run_mdm_emotion(1000), 1)
    ref = times.get("MDM, DDPM 1000 steps")
    controlled = times.get("MDM, DDPM 1000 steps, label and classifier guidance")
    out = []
    params = {"MMM": sum(p.numel() for p in mmm.trans.parameters()) / 1e6,
              "MDM": sum(p.numel() for p in mdm.parameters()) / 1e6}  # fmt: skip
    for name, t in times.items():
        ratio = f"{t / ref:.4f}" if ref else "–"
        out.append(f"| {size} | {name} | {params[name[:3]]:.1f}M | {t * 1e3:,.0f} | {ratio} |")
    if ref:
        for name, what in (("MMM, 10 decoding steps", "MMM"), ("MMM, 10 steps, label and classifier guidance",
                                                                 "MMM with emotion control")):  # fmt: skip
            mmm_ratio = times[name] / ref
            verdict = "met" if mmm_ratio <= 0.01 else "not met"
            out.append(
                f"| {size} | {what} / MDM-1000 | | | **1/{1 / mmm_ratio:,.0f}** (goal <= 1/100: {verdict}) |"
            )
    if controlled:  # equal control on both sides
        ratio = times["MMM, 10 steps, label and classifier guidance"] / controlled
        verdict = "met" if ratio <= 0.01 else "not met"
        out.append(
            f"| {size} | MMM with emotion control / MDM-1000 with emotion control | | | "
            f"**1/{1 / ratio:,.0f}** (goal <= 1/100: {verdict}) |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small preset only")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = [
        "## MMM vs MDM generation latency (`bench/mmm.py`)",
        "",
        "Batch 1, 196 frames, classifier-free guidance batched in both, text encoded once; best of "
        f"{args.repeats} after a warm-up (1000-step runs: one run).",
        "",
        "| size | generator | parameters (MMM: transformer) | ms per motion | ratio to MDM-1000 |",
        "|---|---|---|---|---|",
    ]
    lines += rows("small", args.repeats, mdm_1000=True)
    if not args.quick:
        lines += rows("official", args.repeats, mdm_1000=True)
    load = os.getloadavg()[0]
    lines += ["", f"Load average at the end of the run: {load:.1f} on {os.cpu_count()} cores."]
    body = "\n".join(lines)
    log.warning("%s", body)
    write_section("mmm", body)


if __name__ == "__main__":
    main()
