"""Every CLI command once: outputs written, typed errors give one line and exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from emomotion.cli import main
from emomotion.io.bvh import read_bvh
from tests.conftest import shared_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_convert_bvh_to_every_target(tmp_path, capsys):
    src = shared_path("bandai", "dataset-1", "data", "dataset-1_bye_happy_001.bvh")
    outputs = {}
    for target, name in [("joints", "j.npy"), ("features", "f.npy"), ("bvh", "o.bvh"), ("gif", "a.gif")]:
        rc, _, err = run(capsys, "convert", src, "--to", target, "--out", tmp_path / name)
        assert rc == 0, err
        outputs[target] = tmp_path / name
        assert outputs[target].stat().st_size > 0
    joints, feats = np.load(outputs["joints"]), np.load(outputs["features"])
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3) and feats.shape == (joints.shape[0] - 1, 263)
    assert len(read_bvh(outputs["bvh"]).names) == 22


def test_convert_features_to_joints_and_mp4(tmp_path, capsys):
    src = shared_path("humanml3d-sample", "new_joint_vecs_012314.npy")
    rc, _, err = run(capsys, "convert", src, "--to", "joints", "--out", tmp_path / "j.npy")
    assert rc == 0, err
    expected = np.load(shared_path("humanml3d-sample", "new_joints_012314.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "j.npy"), expected, atol=1e-4)
    rc, _, err = run(capsys, "convert", tmp_path / "j.npy", "--to", "mp4", "--out", tmp_path / "j.mp4")
    assert rc == 0 and (tmp_path / "j.mp4").stat().st_size > 0


def test_convert_with_a_user_joint_map_file(tmp_path, capsys):
    from emomotion import skeleton as sk
    from emomotion.joint_maps import get_joint_map

    bandai = get_joint_map("bandai")
    lines = ['name = "mine"', "[joints]"]
    for j in sk.JOINT_NAMES:
        blend = bandai.joints[j]
        lines.append(f'{j} = "{blend[0][0]}"' if len(blend) == 1 else f"{j} = {{ Spine = 0.5, Chest = 0.5 }}")
    (tmp_path / "map.toml").write_text("\n".join(lines))
    src = shared_path("bandai", "dataset-1", "data", "dataset-1_bow_sad_001.bvh")
    rc, _, err = run(
        capsys,
        "convert",
        src,
        "--to",
        "joints",
        "--joint-map",
        tmp_path / "map.toml",
        "--out",
        tmp_path / "x.npy",
    )
    assert rc == 0, err


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        ("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n", ".bvh", "HIERARCHY"),
        (np.zeros((10, 21, 3)), ".npy", "expected joints"),
        (np.full((10, 263), np.nan), ".npy", "non-finite"),
        (b"\x93NUMPY garbage", ".npy", "not a readable"),
    ],
)
def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path, capsys, content, suffix, match):
    src = tmp_path / f"bad{suffix}"
    if isinstance(content, np.ndarray):
        np.save(src, content)
    elif isinstance(content, bytes):
        src.write_bytes(content)
    else:
        src.write_text(content)
    out = tmp_path / "out.npy"
    rc, _, err = run(capsys, "convert", src, "--to", "joints", "--out", out)
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(src) in lines[0], err
    assert match.split()[0].lower() in lines[0].lower()
    assert not out.exists()


def test_unknown_target_and_joint_map(tmp_path, capsys):
    src = shared_path("bvh-samples", "xsens_mvn_000001.bvh")
    assert run(capsys, "convert", src, "--to", "fbx")[0] == 2
    rc, _, err = run(
        capsys, "convert", src, "--to", "joints", "--joint-map", "nope", "--out", tmp_path / "x.npy"
    )
    assert rc == 2 and "unknown joint map" in err


def test_listing_commands(capsys):
    rc, out, _ = run(capsys, "joint-maps")
    assert rc == 0 and "xsens" in out and "bandai" in out
    rc, out, _ = run(capsys, "data", "sources")
    assert rc == 0 and "emilya" in out and "synthetic" in out
