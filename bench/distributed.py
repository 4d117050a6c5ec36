"""Training throughput of MDM on 1 process vs 2 (``torchrun``, gloo on CPU), and with torch's default
threads vs 1 thread per process; each run is the CLI's ``train mdm`` in fresh processes, measured by the
loop's own clock (``metrics.csv``: samples and seconds at the last step, start-up excluded)."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import write_section

SRC = Path(__file__).resolve().parents[1] / "src"


def build_data(out: Path) -> Path:
    from emomotion.data.build import BuildConfig, build_dataset

    build_dataset(BuildConfig(source="synthetic", out=out, seed=0))
    return out


def train(
    data: Path, out: Path, preset: str, steps: int, batch: int, procs: int, threads: str | None
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("OMP_NUM_THREADS", None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
    cmd = [*(launcher if procs > 1 else [sys.executable]), "-m", "emomotion.cli"]
    cmd += ["--threads", threads] if threads else []
    cmd += ["train", "mdm", "--data", str(data), "--preset", preset, "--steps", str(steps),
            "--batch-size", str(batch), "--save-every", str(steps), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with open(out / "metrics.csv") as fh:
        last = list(csv.DictReader(fh))[-1]
    seconds, samples = float(last["seconds"]), int(last["samples"])
    return {"seconds": seconds, "samples": samples, "rate": samples / seconds, "steps_s": steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_data(Path(tmp) / "data")
        load_before = os.getloadavg()[0]
        runs = {
            "1 process, 1 thread": train(
                data, Path(tmp) / "a", args.preset, args.steps, args.batch_size, 1, "1"
            ),
            "2 processes (torchrun), 1 thread each": train(
                data, Path(tmp) / "b", args.preset, args.steps, args.batch_size, 2, None
            ),
            "1 process, torch's default threads": train(
                data, Path(tmp) / "c", args.preset, args.steps, args.batch_size, 1, str(os.cpu_count())
            ),
        }
        load_after = os.getloadavg()[0]
    base = runs["1 process, 1 thread"]["rate"]
    lines = [
        "## Distributed training and threads (`bench/distributed.py`)",
        "",
        f"MDM `{args.preset}`, {args.steps} steps, `--batch-size {args.batch_size}` per process (2 processes "
        f"train on {2 * args.batch_size} samples a step), synthetic data; load average "
        f"{load_before:.1f} before, {load_after:.1f} after (the machine is shared).",
        "",
        "| run | seconds | samples | samples/s | steps/s | samples/s vs 1 process, 1 thread |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['samples']} | {r['rate']:.1f} | {r['steps_s']:.2f} | "
                     f"{r['rate'] / base:.2f}x |")  # fmt: skip
    print("\n".join(lines))
    write_section("distributed", "\n".join(lines))


if __name__ == "__main__":
    main()
