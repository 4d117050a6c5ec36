"""BVH reading, forward kinematics, writing, and typed errors on bad input (fuzzed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomotion.errors import BvhError
from emomotion.io.bvh import read_bvh
from emomotion.io.bvh_writer import write_bvh
from tests.conftest import shared_path

TINY = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition {order}
\tJOINT Arm
\t{{
\t\tOFFSET 1 0 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{{
\t\t\tOFFSET 0 2 0
\t\t}}
\t}}
}}
MOTION
Frames: 2
Frame Time: 0.05
0 0 0 0 0 0 0 0 0
1 2 3 {angles} 0 0 0
"""


def tiny(tmp_path: Path, order: str, angles: str, crlf: bool = False) -> Path:
    text = TINY.replace("{order}", order).replace("{angles}", angles).replace("{{", "{").replace("}}", "}")
    path = tmp_path / "tiny.bvh"
    path.write_bytes(text.replace("\n", "\r\n").encode() if crlf else text.encode())
    return path


def test_forward_kinematics_known_values_and_channel_order(tmp_path):
    # root: Z 90 then X 90 (intrinsic, ZXY order): the arm offset (1,0,0) goes to (0,1,0) under Rz(90)
    m = read_bvh(tiny(tmp_path, "Zrotation Xrotation Yrotation", "90 90 0", crlf=True))
    assert m.num_frames == 2 and m.fps == 20.0 and m.names == ("Hips", "Arm")
    pos = m.world_positions()
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [1, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(pos[1, 0], [1, 2, 3])
    np.testing.assert_allclose(pos[1, 1], [1, 3, 3], atol=1e-12)
    # End Site (0,2,0): R = Rz(90) Rx(90): Rx(90) (0,2,0) = (0,0,2); Rz(90) (0,0,2) = (0,0,2)
    np.testing.assert_allclose(m.end_site_positions()[1][1], [1, 3, 5], atol=1e-12)
    # the other order, R = Rx(90) Rz(90): the arm goes to (1,2,3) + Rx(0,1,0) = (1,2,4) and the
    # End Site to (1,2,4) + Rx(Rz(0,2,0)) = (1,2,4) + Rx(-2,0,0) = (-1,2,4)
    m2 = read_bvh(tiny(tmp_path, "Xrotation Zrotation Yrotation", "90 90 0"))
    np.testing.assert_allclose(m2.world_positions()[1, 1], [1, 2, 4], atol=1e-12)
    np.testing.assert_allclose(m2.end_site_positions()[1][1], [-1, 2, 4], atol=1e-12)


@pytest.mark.parametrize(
    ("name", "frames", "fps"),
    [("xsens_mvn_000001.bvh", 343, 120.0), ("smpl22_template_momask.bvh", 720, 60.0)],
)
def test_shared_samples(name, frames, fps):
    m = read_bvh(shared_path("bvh-samples", name))
    assert (m.num_frames, m.fps) == (frames, fps)
    assert np.isfinite(m.world_positions()).all()


def test_every_bandai_clip_reads():
    files = sorted(shared_path("bandai", "dataset-1", "data").glob("*.bvh"))
    assert len(files) == 174
    for f in files:
        m = read_bvh(f)
        assert m.fps == 30.0 and m.names[0] == "joint_Root" and len(m.names) == 22
        assert all(len(c) == 6 for c in m.skeleton.channels)


def test_bandai_translation_lives_in_hips_position_channels():
    m = read_bvh(shared_path("bandai", "dataset-1", "data", "dataset-1_walk_angry_001.bvh"))
    hips = m.world_positions()[:, m.skeleton.index("Hips")]
    assert hips[0, 2] == pytest.approx(-401.248, abs=0.01) and hips[-1, 2] == pytest.approx(492.107, abs=0.01)


@pytest.mark.parametrize(
    "parts",
    [
        ("bvh-samples", "xsens_mvn_000001.bvh"),
        ("bvh-samples", "smpl22_template_momask.bvh"),
        ("bandai", "dataset-1", "data", "dataset-1_walk_angry_001.bvh"),
    ],
)
def test_write_read_round_trip(tmp_path, parts):
    m = read_bvh(shared_path(*parts))
    out = tmp_path / "out.bvh"
    write_bvh(out, m)
    back = read_bvh(out)
    assert back.names == m.names and back.skeleton.channels == m.skeleton.channels and back.fps == m.fps
    np.testing.assert_allclose(back.rotations, m.rotations, atol=1e-7)
    np.testing.assert_allclose(back.world_positions(), m.world_positions(), atol=1e-5)
    assert set(back.skeleton.end_sites) == set(m.skeleton.end_sites)


def test_written_arbitrary_rotations_round_trip(tmp_path):
    m = read_bvh(tiny(tmp_path, "Yrotation Xrotation Zrotation", "10 20 30"))
    rng = np.random.default_rng(0)
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(2 * 2, random_state=1).as_matrix().reshape(2, 2, 3, 3)
    random = type(m)(m.skeleton, m.local_positions + rng.normal(size=m.local_positions.shape) * 0, rot, m.fps)
    write_bvh(tmp_path / "r.bvh", random)
    np.testing.assert_allclose(read_bvh(tmp_path / "r.bvh").rotations, rot, atol=1e-7)


GOOD = tiny


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: "", "empty file"),
        (lambda t: t.rsplit("\n", 2)[0] + "\n", "truncated"),
        (lambda t: t.replace("Frames: 2", "Frames: 0"), "positive"),
        (lambda t: t.replace("Frame Time: 0.05", "Frame Time: abc"), "Frame Time"),
        (lambda t: t.replace("1 2 3 0 0 0", "1 2 3 0 0"), "line 20"),
        (lambda t: t.replace("1 2 3 0 0 0", "1 2 3 nan 0 0"), "not finite"),
        (lambda t: t.replace("1 2 3 0 0 0", "1 2 x 0 0 0"), "line 20"),
        (lambda t: t.replace("CHANNELS 3", "CHANNELS 7"), "0..6"),
        (lambda t: t.replace("JOINT Arm", "JOINT Hips"), "duplicate joint"),
        (lambda t: t.replace("MOTION", "MOTON"), "MOTON"),
        (lambda t: t.replace("\t}\n}", "\t}\n"), "line"),
        (
            lambda t: t.replace(
                "Zrotation Xrotation Yrotation\n\t\tEnd", "Zrotation Xrotation Qrotation\n\t\tEnd"
            ),
            "bad channels",
        ),
    ],
)
def test_bad_input_gives_typed_errors_with_line(tmp_path, mutate, match):
    text = GOOD(tmp_path, "Zrotation Xrotation Yrotation", "0 0 0").read_text()
    bad = tmp_path / "bad.bvh"
    bad.write_text(mutate(text))
    with pytest.raises(BvhError, match=match) as info:
        read_bvh(bad)
    assert str(bad) in str(info.value)


def test_non_utf8_and_missing_file(tmp_path):
    bad = tmp_path / "latin.bvh"
    bad.write_bytes(b"HIERARCHY\nROOT H\xe9\n")
    with pytest.raises(BvhError, match=r"line 2: not UTF-8"):
        read_bvh(bad)
    with pytest.raises(BvhError, match="cannot read"):
        read_bvh(tmp_path / "missing.bvh")


def _seed_bytes() -> bytes:
    path = shared_path("bandai", "dataset-1", "data", "dataset-1_bow_sad_001.bvh")
    head, _, body = path.read_bytes().partition(b"MOTION")
    lines = body.split(b"\n")
    frames = [line for line in lines[3:] if line.strip()][:4]
    return head + b"MOTION\nFrames: 4\nFrame Time: 0.0333333\n" + b"\n".join(frames) + b"\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_real_file_only_raises_bvh_error(tmp_path, data):
    seed = _seed_bytes()
    ops = data.draw(
        st.lists(
            st.tuples(st.sampled_from("dirts"), st.integers(0, len(seed)), st.binary(min_size=1, max_size=3)),
            min_size=1,
            max_size=4,
        )
    )
    buf = bytearray(seed)
    for op, pos, blob in ops:
        pos = min(pos, len(buf))
        if op == "d":
            del buf[pos : pos + len(blob)]
        elif op == "i":
            buf[pos:pos] = blob
        elif op == "r":
            buf[pos : pos + len(blob)] = blob
        elif op == "t":
            del buf[pos:]
        else:
            lines = bytes(buf).split(b"\n")
            i, j = pos % len(lines), (pos // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
            buf = bytearray(b"\n".join(lines))
    path = tmp_path / "fuzz.bvh"
    path.write_bytes(bytes(buf))
    try:
        m = read_bvh(path)
    except BvhError as exc:
        assert str(path) in str(exc)
        return
    assert np.isfinite(m.world_positions()).all()


@pytest.mark.parametrize("where", ["hierarchy", "frames", "data"])
def test_a_20mb_line_of_words_is_refused_within_a_few_times_its_size(tmp_path, where):
    import tracemalloc

    text = tiny(tmp_path, "Zrotation Xrotation Yrotation", "0 0 0").read_text()
    words = "ab " * (7 * 2**20)  # 21 MB, 7 million words
    anchor = {"hierarchy": "ROOT Hips", "frames": "Frames: 2", "data": "1 2 3 0 0 0"}[where]
    bad = tmp_path / "long.bvh"
    bad.write_text(text.replace(anchor, anchor + " " + words, 1))
    tracemalloc.start()
    try:
        with pytest.raises(BvhError, match="line"):
            read_bvh(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * len(words), f"{peak / 2**20:.0f} MB for a {len(words) / 2**20:.0f} MB line"


MIXED = """HIERARCHY
ROOT A
{
OFFSET 1 2 3
CHANNELS 4 Xposition Yposition Zposition Yrotation
JOINT B
{
OFFSET 0 1 0
CHANNELS 2 Xrotation Zrotation
JOINT C
{
OFFSET 0 0 1
CHANNELS 0
JOINT D
{
OFFSET 2 0 0
CHANNELS 4 Zrotation Yposition Xrotation Yrotation
End Site
{
OFFSET 0 1 0
}
}
}
}
}
MOTION
Frames: 2
Frame Time: 0.1
0 0 0 0 0 0 0 0 0 0
{values}
"""


def _about(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def test_joints_with_different_channel_counts_and_orders(tmp_path):
    path = tmp_path / "mixed.bvh"
    path.write_text(MIXED.replace("{values}", "4 5 6 30 10 -20 40 7 50 60"))
    m = read_bvh(path)
    np.testing.assert_allclose(m.local_positions[1], [[4, 5, 6], [0, 1, 0], [0, 0, 1], [2, 7, 0]])
    expected = [
        _about("Y", 30),
        _about("X", 10) @ _about("Z", -20),
        np.eye(3),
        _about("Z", 40) @ _about("X", 50) @ _about("Y", 60),
    ]
    np.testing.assert_allclose(m.rotations[1], expected, atol=1e-12)
    np.testing.assert_allclose(m.rotations[0], np.broadcast_to(np.eye(3), (4, 3, 3)), atol=0)
    world = m.world_rotations()[1]
    np.testing.assert_allclose(world[3], expected[0] @ expected[1] @ expected[3], atol=1e-12)
    pos = m.world_positions()[1]
    np.testing.assert_allclose(pos[3], pos[2] + world[2] @ [2, 7, 0], atol=1e-12)


def test_a_hierarchy_read_before_gives_the_new_values_and_its_own_arrays(tmp_path):
    first = read_bvh(tiny(tmp_path, "Zrotation Xrotation Yrotation", "90 90 0"))
    first.skeleton.offsets[1] = 99.0  # a caller's change must not reach the next read
    again = read_bvh(tiny(tmp_path, "Zrotation Xrotation Yrotation", "0 0 45"))
    assert again.skeleton.offsets is not first.skeleton.offsets
    np.testing.assert_array_equal(again.skeleton.offsets, [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(again.rotations[1, 0], _about("Y", 45), atol=1e-12)
    other = read_bvh(tiny(tmp_path, "Xrotation Zrotation Yrotation", "90 90 0"))  # same start, other order
    np.testing.assert_allclose(other.world_positions()[1, 1], [1, 2, 4], atol=1e-12)
