"""Stick-figure rendering: gif / mp4 / png output, grids, validation, atomic writes."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from emomotion import skeleton as sk
from emomotion.errors import ConfigError, MotionFormatError
from emomotion.render import render_animation, render_frame, render_grid
from emomotion.render.scene import BONE_COLORS, BONES, CHAIN_COLORS, TRACK_ABOVE_M, Camera, Stage, fit_floor


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) about the X axis; positive swings a hanging bone backwards (-Z)."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.zeros((*angle.shape, 3, 3))
    rot[..., 0, 0] = 1
    rot[..., 1, 1], rot[..., 1, 2] = c, -s
    rot[..., 2, 1], rot[..., 2, 2] = s, c
    return rot


def walking_motion(frames: int = 60, speed: float = 1.2, swing: float = 1.0) -> np.ndarray:
    """A procedural walk (T, 22, 3): rest skeleton, legs and arms swinging, moving along +Z, feet on y=0."""
    t = np.arange(frames) / sk.FPS
    phase = 2 * math.pi * 0.9 * t
    local = np.broadcast_to(np.eye(3), (frames, sk.NUM_JOINTS, 3, 3)).copy()
    angles = {
        "l_hip": -0.45 * swing * np.sin(phase),
        "r_hip": 0.45 * swing * np.sin(phase),
        "l_knee": 0.7 * swing * np.clip(np.sin(phase + 1.2), 0, None),
        "r_knee": 0.7 * swing * np.clip(-np.sin(phase + 1.2), 0, None),
        "l_shoulder": 0.4 * swing * np.sin(phase),
        "r_shoulder": -0.4 * swing * np.sin(phase),
        "l_elbow": -0.3 * swing * (1 + np.sin(phase)) / 2,
        "r_elbow": -0.3 * swing * (1 - np.sin(phase)) / 2,
    }
    for name, angle in angles.items():
        local[:, sk.JOINT_INDEX[name]] = _rot_x(angle)
    offsets = sk.target_offsets()
    glob = np.empty_like(local)
    joints = np.zeros((frames, sk.NUM_JOINTS, 3))
    glob[:, 0] = local[:, 0]
    for j in range(1, sk.NUM_JOINTS):
        p = sk.PARENTS[j]
        glob[:, j] = glob[:, p] @ local[:, j]
        joints[:, j] = joints[:, p] + glob[:, p] @ offsets[j]
    joints[..., 2] += speed * t[:, None]
    joints[..., 1] -= joints[..., 1].min(axis=1, keepdims=True)
    return joints


def _gif_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as im:
        frames, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            frames.append(np.asarray(im.convert("RGB")))
    return frames, durations


def test_walking_motion_is_a_valid_skeleton() -> None:
    joints = walking_motion(20)
    bones = np.linalg.norm(joints[:, 1:] - joints[:, list(sk.PARENTS[1:])], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(sk.BONE_LENGTHS[1:], bones.shape), atol=1e-9)
    assert joints[..., 1].min() == pytest.approx(0.0)
    assert joints[-1, 0, 2] > joints[0, 0, 2] + 0.5


def test_bone_colours_split_left_right_and_spine() -> None:
    assert len(set(CHAIN_COLORS)) == 5
    for (parent, child), color in zip(BONES, BONE_COLORS, strict=True):
        if child in sk.LEFT_JOINTS:
            assert color in (CHAIN_COLORS[1], CHAIN_COLORS[4])
        elif child in sk.RIGHT_JOINTS:
            assert color in (CHAIN_COLORS[0], CHAIN_COLORS[3])
        else:
            assert color == CHAIN_COLORS[2], (parent, child)


def test_camera_faces_the_person_from_the_front_side() -> None:
    right, up, toward = Camera().basis()
    np.testing.assert_allclose([right @ up, right @ toward, up @ toward], 0, atol=1e-12)
    assert up[1] > 0.9  # Y stays up on screen
    assert toward[2] > 0.5  # the camera is in front of the person (+Z)
    assert right[0] > 0.5  # the person's left (+X) shows on the right of the screen


def test_floor_is_fixed_for_compact_motion_and_tracks_long_walks() -> None:
    compact = walking_motion(40, speed=0.2)
    floor = fit_floor(compact, sk.FPS)
    assert not floor.tracking
    assert np.ptp(floor.centre, axis=0).max() == 0
    assert (np.abs(compact[..., [0, 2]] - floor.centre[0]) <= floor.side / 2).all()

    long = walking_motion(196, speed=1.5)
    floor = fit_floor(long, sk.FPS)
    assert floor.tracking
    assert TRACK_ABOVE_M <= floor.side < TRACK_ABOVE_M + 1.5
    assert (np.abs(long[..., [0, 2]] - floor.centre[:, None]) <= floor.side / 2).all()


def test_long_walk_stays_in_view() -> None:
    stage = Stage([walking_motion(196, speed=1.5)], fps=20)
    panel = stage.panels[0]
    (x0, x1), (y0, y1) = panel.ax.get_xlim(), panel.ax.get_ylim()
    bones = panel._bones2
    assert x0 < bones[..., 0].min() and bones[..., 0].max() < x1
    assert y0 < bones[..., 1].min() and bones[..., 1].max() < y1
    # the figure is drawn at least a quarter of the picture tall
    assert np.ptp(bones[0, :, :, 1]) / (y1 - y0) > 0.25


def test_gif_frames_and_timing(tmp_path: Path) -> None:
    joints = walking_motion(40)
    out = render_animation(joints, tmp_path / "walk.gif", title="walk")
    assert out == tmp_path / "walk.gif"
    frames, durations = _gif_frames(out)
    assert len(frames) == 40
    assert frames[0].shape == (320, 320, 3)
    assert all(d == 50 for d in durations)
    assert not np.array_equal(frames[0], frames[20])
    assert (frames[0][0, 0] == 255).all()  # the shared palette keeps the background exactly white
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.gif"]


def test_gif_other_fps_and_still_pose_keeps_every_frame(tmp_path: Path) -> None:
    still = np.repeat(walking_motion(1), 12, axis=0)
    out = render_animation(still, tmp_path / "still.gif", fps=10)
    frames, durations = _gif_frames(out)
    assert len(frames) == 12
    assert all(d == 100 for d in durations)


def test_mp4_frames_and_fps(tmp_path: Path) -> None:
    out = render_animation(walking_motion(30), tmp_path / "walk.mp4", fps=20, title="walk")
    reader = imageio.get_reader(out, format="FFMPEG")
    try:
        assert reader.get_meta_data()["fps"] == pytest.approx(20)
        assert reader.count_frames() == 30
        first, later = reader.get_data(0), reader.get_data(15)
    finally:
        reader.close()
    assert first.shape == (320, 320, 3)
    assert np.abs(first.astype(int) - later.astype(int)).max() > 50


def test_single_frame_motion(tmp_path: Path) -> None:
    frames, _ = _gif_frames(render_animation(walking_motion(1), tmp_path / "one.gif"))
    assert len(frames) == 1


def test_grid_length_and_width(tmp_path: Path) -> None:
    motions = [walking_motion(n, swing=s) for n, s in ((20, 1.0), (35, 0.5), (10, 1.5), (25, 0.8))]
    out = render_grid(motions, tmp_path / "grid.gif", titles=["a", "b", "c", "d"], ncols=3, suptitle="grid")
    frames, durations = _gif_frames(out)
    assert len(frames) == 35
    assert all(d == 50 for d in durations)
    height, width, _ = frames[0].shape
    assert width == 3 * 320
    assert 2 * 320 <= height <= 2 * 320 + 64
    assert not np.array_equal(frames[0], frames[-1])


def test_grid_shorter_motions_hold_last_frame() -> None:
    short, long = walking_motion(5), walking_motion(15)
    stage = Stage([short, long], fps=20)
    assert stage.n_frames == 15
    a, b = stage.frame(10), stage.frame(14)
    left = slice(0, stage.width // 2)
    # the short clip's panel is frozen (but the clock in the right panel runs), the long one moves
    assert np.array_equal(a[:, left], b[:, left])
    assert not np.array_equal(a[:, stage.width // 2 :], b[:, stage.width // 2 :])


def test_grid_mp4_default_columns(tmp_path: Path) -> None:
    motions = [walking_motion(12)] * 3
    out = render_grid(motions, tmp_path / "grid.mp4", titles=["x", "y", "z"])
    reader = imageio.get_reader(out, format="FFMPEG")
    try:
        assert reader.count_frames() == 12
        width, height = reader.get_meta_data()["size"]
    finally:
        reader.close()
    assert (width, height) == (2 * 320, 2 * 320)


def test_png_frame(tmp_path: Path) -> None:
    joints = walking_motion(30)
    out = render_frame(joints, 10, tmp_path / "f.png", title="frame 10")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (320, 320)
        pixels = np.asarray(im.convert("RGB"))
    last = np.asarray(Image.open(render_frame(joints, -1, tmp_path / "last.png")).convert("RGB"))
    assert not np.array_equal(pixels, last)
    for color in CHAIN_COLORS:
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=-1) < 30).any(), color


def test_figure_is_upright_with_floor_below() -> None:
    stage = Stage([walking_motion(10)], fps=20)
    image = stage.frame(0).astype(int)
    head_rgb = np.array([int(CHAIN_COLORS[2][i : i + 2], 16) for i in (1, 3, 5)])
    floor_rgb = np.array([0xEC, 0xEC, 0xEC])
    spine_rows = np.nonzero((np.abs(image - head_rgb).sum(axis=-1) < 20).any(axis=1))[0]
    floor_rows = np.nonzero((np.abs(image - floor_rgb).sum(axis=-1) == 0).sum(axis=1) > 20)[0]
    assert spine_rows.size and floor_rows.size
    assert floor_rows.max() > spine_rows.max()  # the floor reaches lower on screen than the spine


def test_size_option(tmp_path: Path) -> None:
    frames, _ = _gif_frames(render_animation(walking_motion(3), tmp_path / "s.gif", size=150))
    assert frames[0].shape == (160, 160, 3)
    with pytest.raises(ConfigError):
        render_animation(walking_motion(3), tmp_path / "s.gif", size=10)


@pytest.mark.parametrize(
    ("joints", "fragment"),
    [
        (np.zeros((10, 21, 3)), "shape"),
        (np.zeros((10, 22)), "shape"),
        (np.zeros((0, 22, 3)), "T >= 1"),
        (np.zeros((5, 22, 3), dtype=np.int64), "float"),
        (np.where(np.arange(5 * 22 * 3).reshape(5, 22, 3) == 78, np.nan, 0.0), "frame 1, joint l_knee"),
        (np.full((5, 22, 3), np.inf), "non-finite"),
    ],
)
@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".png"])
def test_bad_joints_raise_and_write_nothing(
    tmp_path: Path, joints: np.ndarray, fragment: str, suffix: str
) -> None:
    out = tmp_path / f"bad{suffix}"
    with pytest.raises(MotionFormatError, match="joints") as info:
        if suffix == ".png":
            render_frame(joints, 0, out)
        else:
            render_animation(joints, out)
    assert fragment in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_grid_member_is_named(tmp_path: Path) -> None:
    bad = walking_motion(5)
    bad[2, 3, 1] = np.nan
    with pytest.raises(MotionFormatError, match=r"motions\[1\]"):
        render_grid([walking_motion(5), bad], tmp_path / "g.gif")
    with pytest.raises(MotionFormatError, match="no motions"):
        render_grid([], tmp_path / "g.gif")
    assert list(tmp_path.iterdir()) == []


def test_bad_options_raise_config_error(tmp_path: Path) -> None:
    joints = walking_motion(5)
    for name in ("x.avi", "x.png", "x"):
        with pytest.raises(ConfigError, match="suffix"):
            render_animation(joints, tmp_path / name)
    with pytest.raises(ConfigError, match="suffix"):
        render_frame(joints, 0, tmp_path / "x.gif")
    with pytest.raises(ConfigError, match="fps"):
        render_animation(joints, tmp_path / "x.gif", fps=0)
    with pytest.raises(ConfigError, match="titles"):
        render_grid([joints, joints], tmp_path / "x.gif", titles=["one"])
    with pytest.raises(ConfigError, match="ncols"):
        render_grid([joints], tmp_path / "x.gif", ncols=0)
    with pytest.raises(ConfigError, match="frame"):
        render_frame(joints, 5, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = Stage.frame_rgba

    def failing(self: Stage, index: int) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls > 8:
            raise RuntimeError("boom")
        return original(self, index)

    monkeypatch.setattr(Stage, "frame_rgba", failing)
    for name in ("x.gif", "x.mp4"):
        calls = 0
        with pytest.raises(RuntimeError, match="boom"):
            render_animation(walking_motion(20), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "walk.gif"
    out.write_bytes(b"old")
    render_animation(walking_motion(4), out)
    with Image.open(out) as im:
        assert im.n_frames == 4
