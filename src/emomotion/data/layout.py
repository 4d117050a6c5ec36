"""The HumanML3D folder layout, read and written in one place.

::

    <root>/new_joints/<id>.npy        (T, 22, 3) float32   joints recovered from the features
    <root>/new_joint_vecs/<id>.npy    (T, 263)   float32   features
    <root>/texts/<id>.txt             captions, one per line: caption#tokens#start#end
    <root>/{train,val,test,train_val,all}.txt   one id per line
    <root>/Mean.npy, Std.npy          (263,) float32
    <root>/manifest.json              our record of where every clip came from (optional for reading)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.data.captions import Caption, read_texts
from emomotion.errors import DatasetError
from emomotion.io.atomic import save_npy, save_text

JOINTS_DIR = "new_joints"
FEATURES_DIR = "new_joint_vecs"
TEXTS_DIR = "texts"
MANIFEST = "manifest.json"
SPLIT_FILES = ("train", "val", "test", "train_val", "all")


def write_clip(
    root: Path, clip_id: str, features: np.ndarray, joints: np.ndarray, captions: Iterable[Caption]
) -> None:
    save_npy(root / FEATURES_DIR / f"{clip_id}.npy", np.asarray(features, dtype=np.float32))
    save_npy(root / JOINTS_DIR / f"{clip_id}.npy", np.asarray(joints, dtype=np.float32))
    save_text(root / TEXTS_DIR / f"{clip_id}.txt", "".join(c.format() + "\n" for c in captions))


def write_splits(root: Path, splits: Mapping[str, str]) -> dict[str, int]:
    """Write the split files from ``clip id -> train|val|test``; returns counts per file."""
    by_split: dict[str, list[str]] = {s: [] for s in ("train", "val", "test")}
    for clip_id in sorted(splits):
        by_split[splits[clip_id]].append(clip_id)
    files = {
        **by_split,
        "train_val": sorted(by_split["train"] + by_split["val"]),
        "all": sorted(splits),
    }
    for name, ids in files.items():
        save_text(root / f"{name}.txt", "".join(f"{i}\n" for i in ids))
    return {name: len(ids) for name, ids in files.items()}


def read_split(root: Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        raise DatasetError(f"split file {split}.txt not found", path=root)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_captions(root: Path, clip_id: str) -> list[Caption]:
    path = root / TEXTS_DIR / f"{clip_id}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError("caption file missing", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"caption file is not UTF-8: {exc}", path=path) from exc
    return read_texts(str(path), text)


def save_stats(root: Path, mean: np.ndarray, std: np.ndarray) -> None:
    save_npy(root / "Mean.npy", np.asarray(mean, dtype=np.float32))
    save_npy(root / "Std.npy", np.asarray(std, dtype=np.float32))


def load_stats(root: Path) -> tuple[np.ndarray, np.ndarray]:
    if not root.is_dir():
        raise DatasetError("dataset folder not found", path=root)
    try:
        mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    except FileNotFoundError as exc:
        raise DatasetError("Mean.npy / Std.npy not found", path=root) from exc
    if mean.shape != (263,) or std.shape != (263,):
        raise DatasetError(f"Mean/Std must have shape (263,), got {mean.shape} and {std.shape}", path=root)
    return mean.astype(np.float32), std.astype(np.float32)


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> Path:
    return save_text(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(
            "manifest.json not found (build the dataset with `emomotion data build`)", path=root
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"manifest.json is not valid JSON: {exc}", path=path) from exc
