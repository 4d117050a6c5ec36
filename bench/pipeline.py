"""Parse + retarget + features throughput on the Bandai BVH data (source frames per second per core).

    python -m bench.pipeline [--dataset-2] [--limit N]

Stages are timed separately on one core, then the whole pipeline runs again in 2 worker processes
(ratio to one core). Peak memory is the largest resident set of one worker. Writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.report import write_section
from emomotion import features as F
from emomotion.io.bvh import read_bvh
from emomotion.retarget import retarget

log = logging.getLogger("bench.pipeline")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai"
GOAL = 13_000.0


def one_file(path: Path) -> tuple[int, float, float, float]:
    """(source frames, parse s, retarget s, features s) for one BVH."""
    t0 = time.perf_counter()
    motion = read_bvh(path)
    t1 = time.perf_counter()
    joints = retarget(motion, "bandai").joints
    t2 = time.perf_counter()
    F.process_joints(joints)
    t3 = time.perf_counter()
    return motion.num_frames, t1 - t0, t2 - t1, t3 - t2


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def dataset_2_files(tmp: Path) -> list[Path]:
    import zstandard

    with open(SHARED / "dataset-2.tar.zst", "rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            tar.extractall(tmp, filter="data")
    return sorted(tmp.rglob("*.bvh"))


def run(files: list[Path], label: str) -> str:
    for f in files[:2]:  # warm-up (imports, caches)
        one_file(f)
    rows = [one_file(f) for f in files]
    frames = sum(r[0] for r in rows)
    parse, ret, feat = (sum(r[i] for r in rows) for i in (1, 2, 3))
    total = parse + ret + feat
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        par_frames = sum(r[0] for r in pool.map(one_file, files, chunksize=8))
    par_time = time.perf_counter() - t0
    one_core = frames / total
    lines = [
        f"### {label}: {len(files)} clips, {frames:,} source frames",
        "",
        "| stage | seconds (1 core) | source frames/s | share |",
        "|---|---|---|---|",
        f"| parse BVH | {parse:.2f} | {frames / parse:,.0f} | {parse / total:.0%} |",
        f"| FK + retarget + resample | {ret:.2f} | {frames / ret:,.0f} | {ret / total:.0%} |",
        f"| HumanML3D features | {feat:.2f} | {frames / feat:,.0f} | {feat / total:.0%} |",
        f"| **end to end, 1 core** | {total:.2f} | **{one_core:,.0f}** | goal >= {GOAL:,.0f}: "
        f"{'met' if one_core >= GOAL else 'NOT met'} |",
        f"| end to end, 2 processes | {par_time:.2f} | {par_frames / par_time:,.0f} | "
        f"{(par_frames / par_time) / one_core:.2f}x one core |",
        "",
        f"Peak resident memory of the 1-core run: {peak_rss_mb():.0f} MB.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dataset-2", action="store_true", help="also unpack and run dataset-2 (2,902 clips)"
    )
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not SHARED.exists():
        raise SystemExit(f"{SHARED} not found: the benchmark needs ../shared/data/bandai")
    sections = [run(sorted((SHARED / "dataset-1" / "data").glob("*.bvh"))[: args.limit], "Bandai dataset-1")]
    if args.dataset_2:
        with tempfile.TemporaryDirectory() as tmp:
            sections.append(run(dataset_2_files(Path(tmp))[: args.limit], "Bandai dataset-2"))
    body = "## BVH -> SMPL-22 -> features pipeline (`bench/pipeline.py`)\n\n" + "\n\n".join(sections)
    body += (
        "\n\nFor scale: the study's own pipeline (a BVH-to-CSV converter per file, then pandas, then the "
        "reference feature code) ran at roughly 700 source frames/s on this kind of machine."
    )
    log.info("%s", body)
    log.info("written to %s", write_section("pipeline", body))


if __name__ == "__main__":
    main()
