"""Hostile BVH input: 10,000 mutated files through the BVH -> features pipeline, and the CLI on the
issue's hostile edits. Writes its section of BENCHMARKS.md.

    python -m bench.fuzz [--cases 10000] [--workers 2] [--seed 0]

Seeds are the real BVH files under ../shared/data (Bandai dataset-1 and the two samples). Each case
runs ``emomotion.convert.load_motion`` (read, retarget, features) in a sandboxed worker (see
``bench/fuzz_cases.py``: ``RLIMIT_AS`` 2 GiB, a 10 s ``SIGALRM``, killed and restarted if it hangs or
dies). Memory per case is measured two ways: the peak of memory allocated during the case
(``tracemalloc``; numpy's buffers included) and the worker's resident high-water mark
(``ru_maxrss``, which includes the ~250 MB of the imported interpreter, numpy, scipy and torch, and is
an upper bound for every case that worker ran). The hostile edits run the real command
``emomotion convert FILE --to joints --out X`` in a fresh process under ``RLIMIT_AS`` 3 GiB; its peak
resident memory is that process's own ``ru_maxrss`` (``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

from bench.fuzz_cases import MAX_MESSAGE_BYTES, REPO, Worker, hostile_edits, mutate
from bench.report import write_section

log = logging.getLogger("bench.fuzz")
SHARED = Path(os.environ.get("EMOMOTION_SHARED_DATA", REPO.parent / "shared" / "data"))
CLI_MEMORY = 3 * 2**30


def seed_files() -> list[Path]:
    files = sorted((SHARED / "bandai" / "dataset-1" / "data").glob("*.bvh"))
    files += sorted((SHARED / "bvh-samples").glob("*.bvh"))
    if not files:
        raise SystemExit(f"no BVH files under {SHARED}: the fuzz run needs ../shared/data")
    return files


def run_mutations(cases: int, workers: int, seed: int, tmp: Path) -> tuple[list[dict], int]:
    seeds = [(p.name, p.read_bytes()) for p in seed_files()]
    pool: Queue[Worker] = Queue()
    started = [Worker(mem_mb=2048, timeout=10.0) for _ in range(workers)]
    for w in started:
        pool.put(w)

    def one(i: int) -> dict:
        rng = random.Random(seed * 1_000_003 + i)
        name, data = rng.choice(seeds)
        mutated, ops = mutate(data, rng)
        path = tmp / f"case{i:05d}.bvh"
        path.write_bytes(mutated)
        worker = pool.get()
        try:
            record = worker.run(path)
        finally:
            pool.put(worker)
            path.unlink(missing_ok=True)
        record.update(case=i, seed=name, ops=ops, size=len(mutated))
        return record

    results = []
    with ThreadPoolExecutor(workers) as ex:
        for k, record in enumerate(ex.map(one, range(cases)), 1):
            results.append(record)
            if record["outcome"] not in ("ok", "typed"):
                log.warning("case %d (%s, %s): %s %s", record["case"], record["seed"], record["ops"],
                            record["outcome"], record.get("detail", ""))  # fmt: skip
            if k % 1000 == 0:
                log.info("%d/%d cases", k, cases)
    restarts = sum(w.restarts for w in started)
    for w in started:
        w.close()
    return results, restarts


def run_cli(args: list[str]) -> tuple[int, str, float, int]:
    """exit status, stderr, seconds, peak RSS (bytes) of one ``emomotion`` process under RLIMIT_AS."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emomotion.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
        env=env,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, time.perf_counter() - start, usage.ru_maxrss * 1024


def hostile_cli(tmp: Path) -> list[tuple[str, int, int, int, float, int, str]]:
    good = (SHARED / "bandai" / "dataset-1" / "data" / "dataset-1_bow_sad_001.bvh").read_bytes()
    rows = []
    for name, data in hostile_edits(good).items():
        path = tmp / f"{name}.bvh"
        path.write_bytes(data)
        code, err, seconds, rss = run_cli(
            ["convert", str(path), "--to", "joints", "--out", str(tmp / f"{name}.npy")]
        )
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        shown = errors[0].replace(str(tmp), "$TMP") if errors else ""
        rows.append((name, code, len(errors), len(shown.encode()), seconds, rss, shown))
    return rows


def hostile_build(tmp: Path) -> list[tuple[str, int, int, int, int, float, int]]:
    """``emomotion data build bvh`` on the hostile edits mixed with three good files, plain and --strict:
    (mode, exit, clips built, skipped, skipped with a line number, seconds, peak RSS)."""
    data = SHARED / "bandai" / "dataset-1" / "data"
    good = ["dataset-1_bow_sad_001.bvh", "dataset-1_dash_normal_001.bvh", "dataset-1_walk_happy_001.bvh"]
    src = tmp / "mixed"
    src.mkdir()
    for name, edited in hostile_edits((data / good[0]).read_bytes()).items():
        (src / f"{name}.bvh").write_bytes(edited)
    for name in good:
        (src / name).write_bytes((data / name).read_bytes())
    rows = []
    for mode in ("plain", "--strict"):
        out = tmp / f"built-{mode.strip('-')}"
        args = ["data", "build", "bvh", "--input", str(src), "--out", str(out), "--ratios", "1,0,0"]
        code, _, seconds, rss = run_cli(args + (["--strict"] if mode == "--strict" else []))
        manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
        skipped = manifest.get("skipped", [])
        with_line = sum(1 for s in skipped if s.get("line"))
        rows.append((mode, code, len(manifest.get("clips", {})), len(skipped), with_line, seconds, rss))
    return rows


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def report(
    results: list[dict], restarts: int, hostile: list, build: list, seconds: float, workers: int
) -> str:
    counts = Counter(r["outcome"] for r in results)
    slow = max(results, key=lambda r: r["seconds"])
    heavy = max(results, key=lambda r: r.get("traced_peak", 0))
    times = sorted(r["seconds"] for r in results)
    rss = max(r.get("maxrss", 0) for r in results)
    outcomes = ("ok", "typed", "long-message", "untyped", "timeout", "hang", "crashed")
    lines = [
        "## Hostile BVH input (`bench/fuzz.py`)",
        "",
        f"{len(results):,} mutated copies of the {len(seed_files())} shared BVH files (1-4 random edits each: bytes, "
        "lines, numbers, Frames/Frame Time values, deep joint chains, BOM/NUL prefixes), each through "
        "`load_motion` (read, retarget, features) in a sandboxed worker: 2 GiB `RLIMIT_AS`, 10 s alarm, "
        f"killed and restarted if it hangs or dies; {workers} workers, {seconds:,.0f} s wall.",
        "",
        "| outcome | cases |",
        "|---|---:|",
        *[f"| {o} | {counts.get(o, 0):,} |" for o in outcomes],
        "",
        "`typed`: an `emomotion.errors` error whose `error: ...` line is one line under "
        f"{MAX_MESSAGE_BYTES:,} bytes; `long-message`: typed, but longer or multi-line; `untyped`: any other "
        "exception.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| median / 99th percentile / slowest case | {statistics.median(times) * 1000:.0f} ms / "
        f"{times[int(0.99 * (len(times) - 1))] * 1000:.0f} ms / {slow['seconds']:.2f} s "
        f"(case {slow['case']}, {slow['seed']}, {slow['ops']}, {slow['outcome']}) |",
        f"| largest memory allocated during one case (tracemalloc peak) | {_mb(heavy.get('traced_peak', 0))} "
        f"(case {heavy['case']}, {heavy['seed']}, {heavy['ops']}, {heavy['outcome']}) |",
        f"| largest worker resident high-water mark (ru_maxrss, imports included) | {_mb(rss)} |",
        f"| worker restarts | {restarts} |",
        "",
        "The issue's hostile edits of `dataset-1_bow_sad_001.bvh`, each through "
        "`emomotion convert FILE --to joints --out X` in a fresh process under a 3 GiB `RLIMIT_AS` "
        "(peak RSS: that process's `ru_maxrss`):",
        "",
        "| edit | exit | error lines | bytes | seconds | peak RSS | message |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, code, n, size, secs, peak, shown in hostile:
        text = shown.replace("|", "\\|")
        text = text if len(text) <= 140 else text[:140] + "..."
        lines.append(f"| {name} | {code} | {n} | {size} | {secs:.1f} | {_mb(peak)} | `{text}` |")
    lines += [
        "",
        "`emomotion data build bvh` on a folder of those seven files and three good Bandai clips "
        "(same limits; the BOM file is a good clip too):",
        "",
        "| mode | exit | clips built | skipped | skipped with a line number | seconds | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[f"| {m} | {c} | {n} | {k} | {w} | {t:.1f} | {_mb(r)} |" for m, c, n, k, w, t, r in build],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="emomotion-fuzz-") as tmp:
        start = time.perf_counter()
        results, restarts = run_mutations(args.cases, args.workers, args.seed, Path(tmp))
        seconds = time.perf_counter() - start
        hostile = hostile_cli(Path(tmp))
        build = hostile_build(Path(tmp))
    body = report(results, restarts, hostile, build, seconds, args.workers)
    print(body)
    if not args.no_write:
        log.info("wrote %s", write_section("fuzz", body))


if __name__ == "__main__":
    main()
