"""Dataset build throughput (Bandai dataset-2, 1 vs 2 workers) and loader memory (3,000 vs 30,000 clips).

    python -m bench.datasets [--limit N]

Writes BENCHMARKS.md. The loader layouts are generated with hard links to one clip, so only the
number of clips differs between the two.
"""

from __future__ import annotations

import argparse
import logging
import os
import tarfile
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bench.report import write_section
from emomotion.data import layout
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.captions import make_caption
from emomotion.data.dataset import DatasetConfig, MotionDataset

log = logging.getLogger("bench.datasets")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai"


def unpack_dataset_2(tmp: Path, limit: int | None) -> Path:
    import zstandard

    with open(SHARED / "dataset-2.tar.zst", "rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            tar.extractall(tmp, filter="data")
    root = tmp / "Bandai-Namco-Research-Motiondataset-2"
    if limit:
        for i, bvh in enumerate(sorted((root / "data").glob("*.bvh"))):
            if i >= limit:
                bvh.unlink()
    return root


def build_rows(root: Path, out: Path) -> list[str]:
    rows = []
    for workers in (1, 2):
        t0 = time.perf_counter()
        summary = build_dataset(
            BuildConfig(source="bandai", input=root, out=out / f"w{workers}", workers=workers)
        )
        dt = time.perf_counter() - t0
        frames = sum(r["source_frames"] for r in layout.read_manifest(out / f"w{workers}")["clips"].values())
        rows.append((workers, summary.clips, len(summary.skipped), dt, frames))
    base = rows[0][3]
    lines = [
        "| workers | clips | skipped | seconds | clips/s | source frames/s | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {w} | {c} | {s} | {dt:.1f} | {c / dt:.1f} | {f / dt:,.0f} | {base / dt:.2f}x |"
        for w, c, s, dt, f in rows
    ]
    return lines


def fake_layout(root: Path, clips: int) -> Path:
    """A layout of ``clips`` hard links to one 60-frame clip."""
    for sub in (layout.FEATURES_DIR, layout.JOINTS_DIR, layout.TEXTS_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    feats, joints = root / "one_f.npy", root / "one_j.npy"
    np.save(feats, rng.normal(size=(60, 263)).astype(np.float32))
    np.save(joints, rng.normal(size=(60, 22, 3)).astype(np.float32))
    text = root / "one.txt"
    text.write_text(make_caption("a person walks sadly.").format() + "\n")
    ids = [f"{i:06d}" for i in range(clips)]
    for i in ids:
        os.link(feats, root / layout.FEATURES_DIR / f"{i}.npy")
        os.link(joints, root / layout.JOINTS_DIR / f"{i}.npy")
        os.link(text, root / layout.TEXTS_DIR / f"{i}.txt")
    layout.write_splits(root, dict.fromkeys(ids, "train"))
    layout.save_stats(root, np.zeros(263), np.ones(263))
    return root


def loader_memory(root: Path, items: int = 2000) -> tuple[float, float, float]:
    """(MB allocated building the index, MB peak while reading ``items`` clips, seconds per item)."""
    tracemalloc.start()
    ds = MotionDataset(DatasetConfig(root, split="train"))
    built = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(ds), items):
        ds[int(i)]
    per_item = (time.perf_counter() - t0) / items
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return built, peak, per_item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-build", action="store_true", help="only the loader memory part")
    parser.add_argument("--limit", type=int, default=None, help="build only the first N dataset-2 clips")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if SHARED.exists() and not args.skip_build:
            root = unpack_dataset_2(tmp_path / "src", args.limit)
            sections += [
                "### Building Bandai dataset-2 (`emomotion data build bandai`)",
                "",
                *build_rows(root, tmp_path / "out"),
            ]
        mem = {n: loader_memory(fake_layout(tmp_path / f"fake{n}", n)) for n in (3_000, 30_000)}
    small, large = mem[3_000], mem[30_000]
    sections += [
        "",
        "### Loader memory: 3,000 vs 30,000 clips (`MotionDataset`, Python allocations by tracemalloc)",
        "",
        "| clips | index built (MB) | extra peak while reading 2,000 clips (MB) | ms per item |",
        "|---|---|---|---|",
        f"| 3,000 | {small[0]:.2f} | {small[1] - small[0]:.2f} | {small[2] * 1e3:.2f} |",
        f"| 30,000 | {large[0]:.2f} | {large[1] - large[0]:.2f} | {large[2] * 1e3:.2f} |",
        "",
        f"10x the clips: the index grows {large[0] / small[0]:.1f}x (ids and lengths, ~70 bytes per clip); "
        f"memory used while reading is {(large[1] - large[0]) / (small[1] - small[0]):.2f}x "
        "(flat: features are memory-mapped and read per item, captions read per item).",
    ]
    body = "## Datasets (`bench/datasets.py`)\n\n" + "\n".join(sections)
    log.warning("%s", body)
    write_section("datasets", body)


if __name__ == "__main__":
    main()
