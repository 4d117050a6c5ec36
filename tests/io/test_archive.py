"""Archives as inputs: every supported kind unpacks once, unsafe members are refused, and
``data build`` reads an archive as it reads a folder."""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from emomotion.cli import main
from emomotion.errors import ConfigError
from emomotion.io.archive import archive_stem, content_root, is_archive, unpack
from tests.conftest import shared_path

CLIPS = ("dataset-1_walk_happy_001.bvh", "dataset-1_bow_sad_001.bvh")


def make_archive(kind: str, src: Path, dest: Path) -> Path:
    """``src`` (a folder) packed as ``dest`` + the kind's suffix, with ``src``'s name on top."""
    if kind == "zip":
        path = dest.with_name(dest.name + ".zip")
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(src.rglob("*")):
                zf.write(f, f.relative_to(src.parent).as_posix())
        return path
    if kind == "tar.zst":
        import zstandard

        plain = make_archive("tar", src, dest)
        path = dest.with_name(dest.name + ".tar.zst")
        path.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
        return path
    mode = {"tar": "w", "tar.gz": "w:gz"}[kind]
    path = dest.with_name(f"{dest.name}.{kind}")
    with tarfile.open(path, mode) as tar:
        tar.add(src, arcname=src.name)
    return path


@pytest.fixture
def pack(tmp_path) -> Path:
    """A Bandai-layout folder with two clips (and their labels)."""
    root = tmp_path / "pack"
    (root / "data").mkdir(parents=True)
    data = shared_path("bandai", "dataset-1", "data")
    for name in CLIPS:
        shutil.copy(data / name, root / "data" / name)
    return root


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.zst", "zip"])
def test_every_kind_unpacks_once(kind, pack, tmp_path):
    archive = make_archive(kind, pack, tmp_path / "clips")
    assert is_archive(archive) and archive_stem(archive) == "clips"
    dest = unpack(archive, tmp_path / "out")
    root = content_root(dest)
    assert root.name == "pack" and sorted(p.name for p in (root / "data").iterdir()) == sorted(CLIPS)
    (root / "data" / CLIPS[0]).unlink()
    unpack(archive, tmp_path / "out")  # the marker says it is done: nothing is unpacked again
    assert not (root / "data" / CLIPS[0]).exists()


def test_zip_members_outside_the_folder_are_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(ConfigError, match="outside the folder"):
        unpack(bad, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not an archive")
    with pytest.raises(ConfigError, match="cannot unpack"):
        unpack(broken, tmp_path / "out2")


def test_data_build_reads_an_archive(pack, tmp_path):
    archive = make_archive("tar.gz", pack, tmp_path / "bandai-two")
    out = tmp_path / "built"
    args = ["data", "build", "bandai", "--input", str(archive), "--out", str(out), "--ratios", "1,0,0"]
    assert main([*args, "--units", "cm"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"] == str(archive) and manifest["summary"]["clips"] == 2
    assert manifest["options"]["units"] == "cm"
    report = next(iter(manifest["clips"].values()))["retarget"]
    assert report["joint_map"] == "bandai" and report["mapping"]["joints"]["pelvis"]["source"] == "Hips"
    assert report["scale_from"] == "cm as given"
    assert main([*args, "--overwrite", "--units", "cm", "--scale", "0.01"]) == 2  # one or the other
