"""Inspect a HumanML3D-layout dataset: counts, lengths, labels, and every problem found."""

from __future__ import annotations

import logging
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomotion import skeleton as sk
from emomotion.data import layout
from emomotion.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass
class Inspection:
    root: Path
    clips: int = 0
    frames: int = 0
    lengths: list[int] = field(default_factory=list)
    by_label: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (split, emotion, action)
    problems: list[str] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.frames / sk.FPS / 3600

    def describe(self) -> str:
        lines = [f"{self.root}: {self.clips} clips, {self.frames:,} frames, {self.hours:.2f} h"]
        if self.lengths:
            arr = np.asarray(self.lengths)
            lines.append(
                f"length (frames): min {arr.min()}, median {int(np.median(arr))}, max {arr.max()}; "
                f"{int((arr < sk.MIN_FRAMES).sum())} shorter than {sk.MIN_FRAMES}, "
                f"{int((arr > sk.MAX_FRAMES).sum())} longer than {sk.MAX_FRAMES} (cropped in training)"
            )
        splits = sorted({k[0] for k in self.by_label})
        emotions = sorted({k[1] for k in self.by_label})
        lines.append("emotion x split: " + " | ".join(splits))
        for e in emotions:
            counts = [sum(v for k, v in self.by_label.items() if k[0] == s and k[1] == e) for s in splits]
            lines.append(f"  {e:12s} " + " ".join(f"{c:6d}" for c in counts))
        actions = Counter()
        for (_, _, a), v in self.by_label.items():
            actions[a] += v
        lines.append("actions: " + ", ".join(f"{a} {n}" for a, n in actions.most_common()))
        lines.append(f"problems: {len(self.problems)}")
        lines += [f"  - {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        return "\n".join(lines)


def inspect_dataset(root: Path, *, png: Path | None = None) -> Inspection:
    root = Path(root)
    if not (root / layout.FEATURES_DIR).is_dir():
        raise DatasetError(f"not a HumanML3D layout: no {layout.FEATURES_DIR}/ folder", path=root)
    report = Inspection(root)
    try:
        records = layout.read_manifest(root).get("clips", {})
    except DatasetError as exc:
        records = {}
        report.problems.append(str(exc))
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        try:
            ids = layout.read_split(root, split)
        except DatasetError:
            report.problems.append(f"missing {split}.txt")
            continue
        for clip_id in ids:
            if clip_id in split_of:
                report.problems.append(f"{clip_id} is in both {split_of[clip_id]} and {split}")
            split_of[clip_id] = split
    on_disk = {p.stem for p in (root / layout.FEATURES_DIR).glob("*.npy")}
    for clip_id in sorted(on_disk - set(split_of)):
        report.problems.append(f"{clip_id}: features on disk but in no split")
    for clip_id in sorted(split_of):
        if clip_id not in on_disk:
            report.problems.append(
                f"{clip_id}: listed in {split_of[clip_id]}.txt but {layout.FEATURES_DIR}/{clip_id}.npy is missing"
            )
            continue
        feats = np.load(root / layout.FEATURES_DIR / f"{clip_id}.npy", mmap_mode="r")
        if feats.ndim != 2 or feats.shape[1] != sk.FEATURE_DIM:
            report.problems.append(f"{clip_id}: features have shape {feats.shape}")
            continue
        if not np.isfinite(feats).all():
            report.problems.append(f"{clip_id}: features contain NaN or inf")
        joints_path = root / layout.JOINTS_DIR / f"{clip_id}.npy"
        if joints_path.is_file():
            jshape = np.load(joints_path, mmap_mode="r").shape
            if jshape[1:] != (sk.NUM_JOINTS, 3) or jshape[0] not in (feats.shape[0], feats.shape[0] + 1):
                report.problems.append(
                    f"{clip_id}: joints shape {jshape} does not match features {feats.shape}"
                )
        try:
            if not layout.read_captions(root, clip_id):
                report.problems.append(f"{clip_id}: caption file is empty")
        except DatasetError as exc:
            report.problems.append(f"{clip_id}: {exc.reason}")
        rec = records.get(clip_id, {})
        report.clips += 1
        report.frames += int(feats.shape[0])
        report.lengths.append(int(feats.shape[0]))
        report.by_label[
            (split_of[clip_id], rec.get("emotion") or "(none)", rec.get("action") or "(unknown)")
        ] += 1
    if png is not None:
        plot_inspection(report, png)
    return report


def plot_inspection(report: Inspection, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from emomotion.io.atomic import atomic_path

    fig = Figure(figsize=(12, 8), dpi=100)
    (ax1, ax2), (ax3, ax4) = fig.subplots(2, 2)
    ax1.hist(report.lengths, bins=40, color="#4477aa")
    ax1.axvline(sk.MIN_FRAMES, color="k", ls="--", lw=1)
    ax1.axvline(sk.MAX_FRAMES, color="k", ls="--", lw=1)
    ax1.set(title="clip length (frames at 20 fps)", xlabel="frames", ylabel="clips")
    splits = sorted({k[0] for k in report.by_label})
    emotions = sorted({k[1] for k in report.by_label})
    x = np.arange(len(emotions))
    for i, s in enumerate(splits):
        counts = [sum(v for k, v in report.by_label.items() if k[0] == s and k[1] == e) for e in emotions]
        ax2.bar(x + i * 0.8 / max(len(splits), 1), counts, width=0.8 / max(len(splits), 1), label=s)
    ax2.set_xticks(x + 0.4 - 0.4 / max(len(splits), 1), emotions, rotation=30, ha="right")
    ax2.set(title="clips per emotion and split")
    ax2.legend()
    actions = sorted({k[2] for k in report.by_label})
    grid = np.array(
        [
            [sum(v for k, v in report.by_label.items() if k[1] == e and k[2] == a) for a in actions]
            for e in emotions
        ]
    )
    ax3.imshow(grid, aspect="auto", cmap="Blues")
    for (r, c), n in np.ndenumerate(grid):
        if n:
            ax3.text(
                c,
                r,
                str(n),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if n > grid.max() / 2 else "black",
            )
    ax3.set_xticks(range(len(actions)), actions, rotation=45, ha="right", fontsize=7)
    ax3.set_yticks(range(len(emotions)), emotions, fontsize=8)
    ax3.set(title="emotion x action")
    ax4.axis("off")
    wrapped = "\n".join(
        textwrap.fill(line, 95, subsequent_indent="    ") for line in report.describe().splitlines()[:40]
    )
    ax4.text(0, 1, wrapped, va="top", family="monospace", fontsize=6)
    fig.suptitle(
        f"{report.root.name}: {report.clips} clips, {report.hours:.2f} h, {len(report.problems)} problems"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
