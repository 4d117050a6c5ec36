"""Merge (clashing ids kept apart), HumanML3D-layout indexing, inspection, and the full Bandai build."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from emomotion.cli import main
from emomotion.data import layout
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.data.inspect import inspect_dataset
from emomotion.data.merge import merge_datasets
from emomotion.errors import ConfigError
from tests.conftest import shared_path


def synthetic(path: Path, seed: int, actions=("walk",)) -> Path:
    build_dataset(BuildConfig(source="synthetic", out=path, seed=seed, options={"actions": list(actions)}))
    return path


def rename_ids(root: Path, mapping: dict[str, str]) -> None:
    """Give a dataset HumanML3D-style numeric ids (to force clashes)."""
    for sub, ext in ((layout.FEATURES_DIR, ".npy"), (layout.JOINTS_DIR, ".npy"), (layout.TEXTS_DIR, ".txt")):
        for old, new in mapping.items():
            (root / sub / f"{old}{ext}").rename(root / sub / f"{new}{ext}")
    for split in ("train", "val", "test", "train_val", "all"):
        ids = layout.read_split(root, split)
        (root / f"{split}.txt").write_text("".join(f"{mapping[i]}\n" for i in ids))
    manifest = layout.read_manifest(root)
    manifest["clips"] = {mapping[k]: v for k, v in manifest["clips"].items()}
    layout.write_manifest(root, manifest)


@pytest.fixture(scope="module")
def clashing(tmp_path_factory):
    base = tmp_path_factory.mktemp("merge")
    a, b = synthetic(base / "emilya", 1), synthetic(base / "emotionalt2m", 2)
    for root in (a, b):
        ids = sorted(layout.read_split(root, "all"))
        rename_ids(root, {old: f"{i:06d}" for i, old in enumerate(ids)})
    return base, a, b


def test_merge_keeps_every_clip_and_split(clashing):
    base, a, b = clashing
    out = base / "merged"
    summary = merge_datasets([a, b], out, stats_from=a)
    n_a, n_b = len(layout.read_split(a, "all")), len(layout.read_split(b, "all"))
    assert summary.total == n_a + n_b == len(layout.read_split(out, "all"))
    assert "emilya_000000" in layout.read_split(out, "all") and "emotionalt2m_000000" in layout.read_split(
        out, "all"
    )
    for name, root in (("emilya", a), ("emotionalt2m", b)):
        for split in ("train", "val", "test"):
            assert {f"{name}_{i}" for i in layout.read_split(root, split)} <= set(
                layout.read_split(out, split)
            )
    np.testing.assert_array_equal(layout.load_stats(out)[0], layout.load_stats(a)[0])
    feats = np.load(out / layout.FEATURES_DIR / "emotionalt2m_000003.npy")
    np.testing.assert_array_equal(feats, np.load(b / layout.FEATURES_DIR / "000003.npy"))
    assert "copied" in layout.read_manifest(out)["stats"]["from"]
    MotionDataset(DatasetConfig(out, split="train"))


def test_merge_refuses_to_overwrite_and_same_folder_names_get_distinct_prefixes(clashing, tmp_path):
    base, a, _ = clashing
    twin = tmp_path / "elsewhere" / a.name  # another folder with the same name
    shutil.copytree(a, twin)
    with pytest.raises(ConfigError, match="overwrite"):
        merge_datasets([a, twin], base / "merged")
    with pytest.raises(ConfigError, match="the same dataset is given twice"):
        merge_datasets([a, a.parent / ".." / a.parent.name / a.name], tmp_path / "x")  # A A, spelled apart
    summary = merge_datasets([a, twin], tmp_path / "twice")
    assert summary.total == 2 * len(layout.read_split(a, "all"))
    assert set(summary.clips_per_input) == {"emilya", "emilya2"}
    assert "recomputed" in summary.stats


def test_humanml3d_index_validates_without_modifying(clashing, tmp_path):
    _, a, _ = clashing
    src = tmp_path / "hml"
    shutil.copytree(a, src)
    (src / "manifest.json").unlink()
    (src / "texts" / "000000.txt").write_text(
        "a person walks angrily.#a/DET person/NOUN walk/VERB angrily/ADV#0.0#0.0\n"
    )
    np.save(src / "new_joint_vecs" / "000001.npy", np.full((50, 263), np.nan, dtype=np.float32))
    (src / "texts" / "000002.txt").unlink()
    with open(src / "test.txt", "a") as fh:
        fh.write("999999\n")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    summary = build_dataset(BuildConfig(source="humanml3d", input=src, out=tmp_path / "idx"))
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert "NaN" in reasons["000001"] and "caption" in reasons["000002"] and "missing" in reasons["999999"]
    clips = layout.read_manifest(tmp_path / "idx")["clips"]
    assert clips["000000"]["emotion"] == "Anger" and clips["000000"]["emotion_approximate"]
    assert summary.clips == len(layout.read_split(src, "all")) - 2
    ds = MotionDataset(DatasetConfig(tmp_path / "idx", split="train"))
    assert len(ds) > 0 and ds[0].motion.shape[1] == 263


def test_inspect_reports_counts_problems_and_png(clashing, tmp_path, capsys):
    _, a, _ = clashing
    src = tmp_path / "copy"
    shutil.copytree(a, src)
    (src / layout.FEATURES_DIR / "000004.npy").unlink()
    report = inspect_dataset(src, png=tmp_path / "i.png")
    assert report.clips == len(layout.read_split(a, "all")) - 1
    assert any("000004" in p for p in report.problems)
    assert (tmp_path / "i.png").stat().st_size > 10_000
    assert main(["data", "inspect", str(src), "--png", str(tmp_path / "j.png")]) == 0
    assert "problems: 1" in capsys.readouterr().out


def test_full_bandai_dataset_1_builds_174_and_348_mirrored(tmp_path, capsys):
    src = shared_path("bandai", "dataset-1")
    rc = main(
        [
            "data",
            "build",
            "bandai",
            "--input",
            str(src),
            "--out",
            str(tmp_path / "b"),
            "--mirror",
            "--workers",
            "2",
        ]
    )
    assert rc == 0
    manifest = layout.read_manifest(tmp_path / "b")
    assert manifest["summary"]["clips"] == 174 and manifest["summary"]["mirrored"] == 174
    assert len(layout.read_split(tmp_path / "b", "all")) == 348
    emotions = {c["emotion"] for c in manifest["clips"].values()}
    assert {"Joy", "Sadness", "Anger", "Pride", "Neutral", "Shame"} <= emotions
    splits = {s: set(layout.read_split(tmp_path / "b", s)) for s in ("train", "val", "test")}
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["val"])
    for rec in manifest["clips"].values():
        if rec["mirrored_from"]:
            assert manifest["clips"][rec["mirrored_from"]]["split"] == rec["split"]
    assert manifest["skipped"] == [] or all(s["reason"] for s in manifest["skipped"])
