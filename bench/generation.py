"""MDM generation latency per sampler and step count, and training throughput (fp32 vs bf16).

    python -m bench.generation [--quick]

Latency is per motion (196 frames), measured side by side in one run after a warm-up call, best
of three for runs of up to 50 steps, as ratios to 1000-step DDPM; the text is encoded once per
request (counted). Training: steps/s of the ``small`` preset in
fp32 and bf16 autocast on this CPU, and the share of time spent loading data. Writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from pathlib import Path

import torch

from bench.report import write_section
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, preset
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.guidance import classifier_free_guidance
from emomotion.text import build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.mdm import MDMRun, run_mdm

log = logging.getLogger("bench.generation")
FRAMES = 196
PLAN = [
    ("ddpm", 1000),
    ("ddpm", 50),
    ("ddpm", 20),
    ("ddpm", 10),
    ("ddim", 50),
    ("ddim", 20),
    ("ddim", 10),
    ("dpmpp", 50),
    ("dpmpp", 20),
    ("dpmpp", 10),
]
REPEATS = 3  # runs of <= 50 steps are short: best of three against timer and scheduler noise


def _sample(encoder, model, diffusion, batch: int, sampler: str, steps: int) -> None:
    """One request: the text encoded once, then the sampler with batched guidance."""
    cond = MotionCondition(encoder.encode(["a person walks sadly"] * batch))
    with torch.inference_mode():
        sample(
            diffusion,
            classifier_free_guidance(model, cond, text_scale=2.5),
            (batch, FRAMES, 263),
            sampler=sampler,
            steps=steps,
            seed=0,
        )


def latency_rows(name: str, batch: int, plan: list[tuple[str, int]]) -> list[str]:
    torch.manual_seed(0)
    encoder = build_text_encoder("minilm")
    model = MDM(preset(name, text_dim=encoder.dim)).eval()
    diffusion = GaussianDiffusion(DiffusionConfig(1000))
    calls = {"encode": 0}
    original = encoder._encode

    def counting(texts: list[str]):
        calls["encode"] += 1
        return original(texts)

    encoder._encode = counting  # type: ignore[method-assign]
    times = {}
    for sampler, steps in plan:
        _sample(encoder, model, diffusion, batch, sampler, min(steps, 2))  # warm-up: imports, allocations
        best = float("inf")
        for _ in range(1 if steps > 50 else REPEATS):
            encoder._cache.clear()
            calls["encode"] = 0
            t0 = time.perf_counter()
            _sample(encoder, model, diffusion, batch, sampler, steps)
            best = min(best, time.perf_counter() - t0)
            assert calls["encode"] == 1, "the text must be encoded once per request"
        times[(sampler, steps)] = best / batch
    base = times[("ddpm", 1000)]
    rows = []
    for (sampler, steps), t in times.items():
        ideal = steps / 1000
        rows.append(
            f"| {name} | {batch} | {sampler} | {steps} | {t * 1e3:,.0f} | {t / base:.4f} | {ideal:.4f} | {(t / base) / ideal:.2f} |"
        )
    return rows


def training_rows(steps: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        build_dataset(BuildConfig(source="synthetic", out=data, options={"clips_per_pair": 2}))
        speeds = {}
        for precision in ("no", "bf16"):
            out = Path(tmp) / precision
            run = MDMRun(
                data=data,
                out=out,
                preset="small",
                train=TrainConfig(
                    steps=steps, batch_size=32, save_every=10_000, log_every=1, mixed_precision=precision
                ),
            )
            t0 = time.perf_counter()
            run_mdm(run)
            with open(out / "metrics.csv") as fh:
                last = list(csv.DictReader(fh))[-1]
            total, data_s = float(last["seconds"]), float(last["data_seconds"])
            speeds[precision] = steps / total
            rows.append(
                f"| {'fp32' if precision == 'no' else 'bf16 autocast'} | {steps / total:.2f} | {data_s / total:.1%} | {time.perf_counter() - t0:.1f} |"
            )
        rows.append(f"\nbf16 / fp32 speed: {speeds['bf16'] / speeds['no']:.2f}x on this CPU.")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small preset only, fewer steps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = [
        "## MDM generation and training (`bench/generation.py`)",
        "",
        "Latency per motion of 196 frames with classifier-free guidance (conditional and unconditional passes batched), "
        "ratio to 1000-step DDPM of the same preset and batch, against the ideal steps/1000 (overhead 1.00 = none beyond the network).",
        "",
        "| preset | batch | sampler | steps | ms per motion | ratio to DDPM-1000 | ideal | overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += latency_rows("small", 1, PLAN)
    if not args.quick:
        lines += latency_rows("small", 32, PLAN)
        lines += latency_rows("mdm", 1, PLAN)
    lines += [
        "",
        "Training the `small` preset, batch 32, on the synthetic set:",
        "",
        "| precision | steps/s | time loading data | wall s |",
        "|---|---|---|---|",
    ]
    lines += training_rows(10 if args.quick else 30)
    body = "\n".join(lines)
    log.warning("%s", body)
    write_section("generation", body)


if __name__ == "__main__":
    main()
