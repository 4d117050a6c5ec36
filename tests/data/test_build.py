"""Dataset build: layout, manifest, splits, mirroring, skipped inputs, loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion import features as F
from emomotion.data import layout
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.dataset import DatasetConfig, MotionDataset, collate
from emomotion.data.splits import SplitConfig
from emomotion.errors import ConfigError
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def synthetic_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn")
    build_dataset(
        BuildConfig(
            source="synthetic",
            out=out,
            mirror=True,
            seed=1,
            options={"actions": ["walk", "knock"], "clips_per_pair": 1, "actors": 4},
        )
    )
    return out


def test_synthetic_build_layout_and_manifest(synthetic_ds):
    manifest = layout.read_manifest(synthetic_ds)
    clips = manifest["clips"]
    assert manifest["summary"]["clips"] == 16 and manifest["summary"]["mirrored"] == 16
    assert manifest["splits"]["strategy"] == "actor"
    for clip_id, rec in clips.items():
        feats = np.load(synthetic_ds / "new_joint_vecs" / f"{clip_id}.npy")
        joints = np.load(synthetic_ds / "new_joints" / f"{clip_id}.npy")
        assert feats.shape[1] == 263 and feats.dtype == np.float32
        assert joints.shape == (feats.shape[0], 22, 3)
        np.testing.assert_allclose(F.recover_joints(feats), joints, atol=1e-4)
        lines = (synthetic_ds / "texts" / f"{clip_id}.txt").read_text().splitlines()
        assert len(lines) == 3 and all(line.count("#") == 3 for line in lines)
        assert rec["synthetic"] and rec["emotion"] is not None
        if rec["mirrored_from"]:
            assert clips[rec["mirrored_from"]]["split"] == rec["split"]
    mean, std = layout.load_stats(synthetic_ds)
    assert np.isfinite(mean).all() and (std > 0).all()


def test_splits_are_disjoint_and_cover_all(synthetic_ds):
    split_ids = {s: set(layout.read_split(synthetic_ds, s)) for s in ("train", "val", "test", "all")}
    assert not (split_ids["train"] & split_ids["val"]) and not (split_ids["train"] & split_ids["test"])
    assert split_ids["train"] | split_ids["val"] | split_ids["test"] == split_ids["all"]
    clips = layout.read_manifest(synthetic_ds)["clips"]
    actors = {s: {clips[i]["actor"] for i in split_ids[s]} for s in ("train", "val", "test")}
    assert not (actors["train"] & actors["test"]) and not (actors["train"] & actors["val"])


def test_rebuild_needs_overwrite(synthetic_ds):
    with pytest.raises(ConfigError, match="overwrite"):
        build_dataset(BuildConfig(source="synthetic", out=synthetic_ds))


def test_loader_batches(synthetic_ds):
    ds = MotionDataset(DatasetConfig(synthetic_ds, split="all", min_frames=40, max_frames=64))
    batch = collate([ds[i] for i in range(4)])
    assert batch.motion.shape[0] == 4 and batch.motion.shape[2] == 263 and batch.motion.shape[1] <= 64
    assert batch.mask.sum(1).tolist() == batch.lengths.tolist()
    assert (batch.emotion >= 0).all() and all(batch.texts)
    raw = np.load(synthetic_ds / "new_joint_vecs" / f"{batch.ids[0]}.npy")
    mean, std = layout.load_stats(synthetic_ds)
    normalised = torch.from_numpy((raw - mean) / std)
    n = int(batch.lengths[0])
    # the crop is a window of the normalised clip
    windows = normalised.unfold(0, n, 1).permute(0, 2, 1)
    assert torch.isclose(windows, batch.motion[0, :n]).all(dim=(1, 2)).any()


def bandai_subset(tmp_path: Path, n: int) -> Path:
    src = shared_path("bandai", "dataset-1")
    root = tmp_path / "bandai"
    (root / "data").mkdir(parents=True)
    shutil.copytree(src / "cfg", root / "cfg")
    for bvh in sorted((src / "data").glob("*_walk_*.bvh"))[:n]:
        for f in (bvh, bvh.with_suffix(".json")):
            if f.exists():
                shutil.copy(f, root / "data" / f.name)
    return root


def test_broken_files_are_skipped_and_listed(tmp_path):
    root = bandai_subset(tmp_path, 4)
    good = sorted((root / "data").glob("*.bvh"))
    (root / "data" / "dataset-1_walk_sad_099.bvh").write_text(good[0].read_text()[:2000])  # truncated
    (root / "data" / "dataset-1_walk_happy_098.bvh").write_bytes(b"\xff\xfeHIERARCHY")  # not UTF-8
    summary = build_dataset(
        BuildConfig(source="bandai", input=root, out=tmp_path / "out", split=SplitConfig())
    )
    assert summary.clips == 4
    assert sorted(Path(s.path).name for s in summary.skipped) == [
        "dataset-1_walk_happy_098.bvh",
        "dataset-1_walk_sad_099.bvh",
    ]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 2 and all(s["reason"] for s in manifest["skipped"])


def test_emilya_tree_from_the_xsens_sample(tmp_path):
    sample = shared_path("bvh-samples", "xsens_mvn_000001.bvh")
    root = tmp_path / "emilya"
    for action, emotion, actor in [
        ("SW", "Joy", "Actor1"),
        ("KD", "Sadness", "Actor2"),
        ("SW", "Anger", "Actor3"),
    ]:
        d = root / action / emotion / actor
        d.mkdir(parents=True)
        shutil.copy(sample, d / f"{emotion[:2]}1{action}1_{actor}.bvh")
    shutil.copy(sample, root / "SW" / "Joy" / "Actor1" / "Jo1SW1_Actor1zyx.bvh")
    summary = build_dataset(BuildConfig(source="emilya", input=root, out=tmp_path / "out"))
    assert summary.clips == 3
    assert [Path(s.path).name for s in summary.skipped] == ["Jo1SW1_Actor1zyx.bvh"]
    clips = layout.read_manifest(tmp_path / "out")["clips"]
    assert {c["emotion"] for c in clips.values()} == {"Joy", "Sadness", "Anger"}
    assert {c["action"] for c in clips.values()} == {"walk", "knock"}
    for rec in clips.values():
        assert rec["retarget"]["trimmed_start"] == 1 and 56 <= rec["retarget"]["frames"] <= 58


def test_emotions_only_keeps_labelled_clips_and_lists_the_rest(tmp_path):
    src = shared_path("bandai", "dataset-1")
    root = tmp_path / "bandai"
    (root / "data").mkdir(parents=True)
    shutil.copytree(src / "cfg", root / "cfg")
    for style in ("happy", "sad", "old", "giant"):
        for f in sorted((src / "data").glob(f"dataset-1_walk_{style}_*"))[:2]:
            shutil.copy(f, root / "data" / f.name)
    summary = build_dataset(
        BuildConfig(
            source="bandai", input=root, out=tmp_path / "out", split=SplitConfig(), emotions_only=True
        )
    )
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {c["emotion"] for c in manifest["clips"].values()} == {"Joy", "Sadness"}
    assert summary.clips == len(manifest["clips"]) == 2
    reasons = {Path(s["path"]).name: s["reason"] for s in manifest["skipped"]}
    assert sorted(reasons) == ["dataset-1_walk_giant_001.bvh", "dataset-1_walk_old_001.bvh"]
    assert all("emotions only" in r for r in reasons.values()) and manifest["options"]["emotions_only"]
