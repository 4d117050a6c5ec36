"""Stick-figure scenes of SMPL-22 joint sequences on 2D matplotlib axes, drawn by blitting.

A fixed orthographic camera (elevation and azimuth) projects the 3D joints onto each panel's axes, so no
``mplot3d`` is involved. Each panel is fitted once to the whole motion: a floor square under every joint,
or, for a motion that travels further than ``TRACK_ABOVE_M``, a square of about that size that follows the
smoothed pelvis path and scrolls its grid under the figure. The static background (floor, titles) is
rendered once with the Agg canvas and restored for each frame; only the per-frame artists (grid lines,
pelvis path, shadow, bones, head, clock) are redrawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.text import Text
from PIL import Image

from emomotion import skeleton as sk
from emomotion.errors import ConfigError, MotionFormatError

DPI: float = 100.0
DEFAULT_SIZE: int = 320
"""Default side (pixels) of one square panel."""
MIN_SIZE: int = 96

CHAIN_COLORS: tuple[str, ...] = ("#b3202a", "#1d4f9a", "#262626", "#f0645a", "#4d9be0")
"""Colour of each chain of ``skeleton.KINEMATIC_CHAIN``: right leg, left leg, spine, right arm, left arm."""
FLOOR_COLOR = "#ececec"
GRID_COLOR = "#cdcdcd"
SHADOW_COLOR = "#b4b4b4"
PATH_COLOR = "#2e9e57"
TEXT_COLOR = "#202020"
CLOCK_COLOR = "#707070"
SCENE_COLORS: tuple[str, ...] = (
    *CHAIN_COLORS,
    FLOOR_COLOR,
    GRID_COLOR,
    SHADOW_COLOR,
    PATH_COLOR,
    TEXT_COLOR,
    CLOCK_COLOR,
)

FLOOR_MARGIN_M: float = 0.35
"""Floor extends this far (m) beyond the horizontal extent of every joint of the motion."""
GRID_STEPS_M: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
MAX_GRID_CELLS: int = 10
TRACK_ABOVE_M: float = 3.0
"""A motion needing a wider floor than this (m) gets a floor of about this size that follows the pelvis."""
TRACK_SMOOTH_S: float = 0.75
"""Standard deviation (s) of the Gaussian smoothing of the pelvis path that a tracking floor follows."""
VIEW_PAD: float = 0.04
"""Fraction of the fitted view left empty around the scene."""


def _bones() -> tuple[np.ndarray, np.ndarray]:
    pairs, colors = [], []
    for chain, color in zip(sk.KINEMATIC_CHAIN, CHAIN_COLORS, strict=True):
        for parent, child in itertools.pairwise(chain):
            pairs.append((parent, child))
            colors.append(color)
    return np.array(pairs, dtype=np.intp), np.array(colors)


BONES, BONE_COLORS = _bones()
"""Bone joint pairs (B, 2) and the colour of each bone (B,)."""
HEAD: int = sk.JOINT_INDEX["head"]


@dataclass(frozen=True)
class Camera:
    """A fixed orthographic camera looking at the scene.

    ``azimuth_deg`` turns the camera about the vertical from the person's initial front (+Z) towards
    its left (+X); ``elevation_deg`` raises it above the horizon.
    """

    elevation_deg: float = 20.0
    azimuth_deg: float = 35.0

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit screen-right, screen-up and towards-camera vectors in world coordinates (Y up)."""
        el, az = math.radians(self.elevation_deg), math.radians(self.azimuth_deg)
        toward = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        right = np.cross([0.0, 1.0, 0.0], toward)
        right /= np.linalg.norm(right)
        up = np.cross(toward, right)
        return right, up, toward

    def project(self, points: np.ndarray) -> np.ndarray:
        """Screen coordinates (..., 2) in metres of world points (..., 3)."""
        right, up, _ = self.basis()
        return np.stack([points @ right, points @ up], axis=-1)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance (..., ) towards the camera: larger is nearer."""
        return points @ self.basis()[2]


DEFAULT_CAMERA = Camera()


def check_joints(joints: object, *, where: str, path: str | Path | None = None) -> np.ndarray:
    """``joints`` as a float64 (T, 22, 3) array; MotionFormatError naming ``where`` otherwise."""
    try:
        arr = np.asarray(joints)
    except (TypeError, ValueError) as exc:
        raise MotionFormatError(f"not an array: {exc}", path=path, where=where) from exc
    if arr.dtype.kind != "f":
        raise MotionFormatError(f"expected a float array, got dtype {arr.dtype}", path=path, where=where)
    if arr.ndim != 3 or arr.shape[1:] != (sk.NUM_JOINTS, 3) or arr.shape[0] < 1:
        raise MotionFormatError(
            f"expected shape (T, {sk.NUM_JOINTS}, 3) with T >= 1, got {arr.shape}", path=path, where=where
        )
    finite = np.isfinite(arr)
    if not finite.all():
        frame, joint, _ = np.argwhere(~finite)[0]
        raise MotionFormatError(
            f"non-finite value at frame {frame}, joint {sk.JOINT_NAMES[joint]} "
            f"({int((~finite).sum())} non-finite values in all)",
            path=path,
            where=where,
        )
    return arr.astype(np.float64, copy=False)


def check_size(size: int) -> int:
    """Panel side in pixels, rounded up to a multiple of 16 (what video encoders want)."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < MIN_SIZE:
        raise ConfigError(f"panel size must be an integer >= {MIN_SIZE} pixels, got {size!r}", where="size")
    return int(-(-int(size) // 16) * 16)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (edge-padded) of ``values`` (T, D) along time; ``sigma`` in frames."""
    radius = max(1, round(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(values.shape[1])], axis=1)


@dataclass(frozen=True)
class Floor:
    """The floor square under the motion: its centre (T, 2) in (x, z) per frame, side and grid step (m)."""

    centre: np.ndarray
    side: float
    step: float
    tracking: bool


def fit_floor(joints: np.ndarray, fps: float) -> Floor:
    """A fixed floor square under every joint of the motion, or, when that would be wider than
    ``TRACK_ABOVE_M``, a square of about that size following the (smoothed) pelvis."""
    xz = joints[..., [0, 2]]
    lo, hi = xz.reshape(-1, 2).min(axis=0), xz.reshape(-1, 2).max(axis=0)
    side = float((hi - lo).max()) + 2 * FLOOR_MARGIN_M
    centre = np.broadcast_to((lo + hi) / 2, (joints.shape[0], 2))
    tracking = side > TRACK_ABOVE_M
    if tracking:
        centre = _smooth(joints[:, 0, [0, 2]], TRACK_SMOOTH_S * fps)
        side = max(TRACK_ABOVE_M, 2 * float(np.abs(xz - centre[:, None]).max()) + 2 * FLOOR_MARGIN_M)
    step = next((s for s in GRID_STEPS_M if side / s <= MAX_GRID_CELLS), GRID_STEPS_M[-1])
    return Floor(np.array(centre), math.ceil(side / step - 1e-9) * step, step, tracking)


class Panel:
    """One motion on one axes: the floor square with its grid, the pelvis path on the floor, the skeleton
    (bones drawn far to near) and its shadow. Coordinates are relative to the floor centre, so a
    tracking floor scrolls under a figure that stays in view."""

    def __init__(self, ax: Axes, joints: np.ndarray, camera: Camera, fps: float, linewidth: float) -> None:
        self.ax = ax
        self.camera = camera
        self.n_frames = joints.shape[0]
        ax.set_axis_off()
        ax.set_autoscale_on(False)

        self.floor = floor = fit_floor(joints, fps)
        half = floor.side / 2
        centre3 = np.column_stack([floor.centre[:, 0], np.zeros(self.n_frames), floor.centre[:, 1]])
        rel = joints - centre3[:, None]
        shadow = rel.copy()
        shadow[..., 1] = 0.0
        self._bones2 = camera.project(rel)[:, BONES]  # (T, B, 2, 2)
        self._depth = camera.depth(rel)[:, BONES].mean(axis=-1)  # (T, B)
        self._shadow2 = camera.project(shadow)[:, BONES]
        self._head2 = camera.project(rel[:, HEAD])
        self._root_xz = joints[:, 0, [0, 2]]
        self._root2 = camera.project(
            np.column_stack([self._root_xz[:, 0], np.zeros(self.n_frames), self._root_xz[:, 1]])
        )
        self._centre2 = camera.project(centre3)

        corners = np.array([[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]])
        floor2 = camera.project(corners)
        ax.add_patch(
            Polygon(
                floor2,
                closed=True,
                facecolor=FLOOR_COLOR,
                edgecolor=GRID_COLOR,
                linewidth=0.25 * linewidth,
                zorder=0,
            )
        )
        self.grid = LineCollection(
            [], colors=GRID_COLOR, linewidths=0.25 * linewidth, animated=True, zorder=1
        )
        self.full_path = Line2D(
            [],
            [],
            color=PATH_COLOR,
            alpha=0.3,
            linewidth=0.5 * linewidth,
            solid_capstyle="round",
            animated=True,
            zorder=2,
        )
        self.shadow = LineCollection(
            [], colors=SHADOW_COLOR, linewidths=linewidth, capstyle="round", animated=True, zorder=3
        )
        self.path = Line2D(
            [],
            [],
            color=PATH_COLOR,
            linewidth=0.7 * linewidth,
            solid_capstyle="round",
            animated=True,
            zorder=4,
        )
        self.bones = LineCollection(
            [], linewidths=linewidth, capstyle="round", joinstyle="round", animated=True, zorder=5
        )
        self.head = Line2D(
            [],
            [],
            marker="o",
            markersize=2.6 * linewidth,
            color=CHAIN_COLORS[2],
            linestyle="none",
            animated=True,
            zorder=6,
        )
        for artist in self.artists:
            if isinstance(artist, Line2D):
                ax.add_line(artist)
            else:
                ax.add_collection(artist)

        every = np.concatenate([floor2, self._bones2.reshape(-1, 2)])
        self.lo, self.hi = every.min(axis=0), every.max(axis=0)

    @property
    def artists(self) -> tuple:
        """The per-frame artists, in drawing order."""
        return (self.grid, self.full_path, self.shadow, self.path, self.bones, self.head)

    def set_view(self, scale: float, width_px: float, height_px: float) -> None:
        """Centre the scene; ``scale`` metres per pixel (shared by every panel of a figure)."""
        cx, cy = (self.lo + self.hi) / 2
        half_w, half_h = scale * width_px / 2, scale * height_px / 2
        self.ax.set_xlim(cx - half_w, cx + half_w)
        self.ax.set_ylim(cy - half_h, cy + half_h)

    def _grid_segments(self, centre: np.ndarray) -> np.ndarray:
        """Grid lines at world multiples of the step, clipped to the floor square, relative to its centre."""
        half, step = self.floor.side / 2, self.floor.step
        lines = []
        for axis in (0, 1):
            ks = np.arange(
                math.ceil((centre[axis] - half) / step - 1e-9),
                math.floor((centre[axis] + half) / step + 1e-9) + 1,
            )
            for offset in ks * step - centre[axis]:
                a, b = np.zeros(3), np.zeros(3)
                a[2 * axis], b[2 * axis] = offset, offset
                a[2 - 2 * axis], b[2 - 2 * axis] = -half, half
                lines.append((a, b))
        return self.camera.project(np.array(lines, dtype=np.float64).reshape(-1, 2, 3))

    def update(self, frame: int) -> None:
        """Show ``frame`` (a frame past the end holds the last one)."""
        t = min(frame, self.n_frames - 1)
        centre = self.floor.centre[t]
        self.grid.set_segments(self._grid_segments(centre))
        path = self._root2 - self._centre2[t]
        path[(np.abs(self._root_xz - centre) > self.floor.side / 2).any(axis=1)] = np.nan
        self.full_path.set_data(path[:, 0], path[:, 1])
        self.path.set_data(path[: t + 1, 0], path[: t + 1, 1])
        order = np.argsort(self._depth[t], kind="stable")  # far bones first
        self.bones.set_segments(self._bones2[t, order])
        self.bones.set_color(BONE_COLORS[order])
        self.shadow.set_segments(self._shadow2[t])
        self.head.set_data(self._head2[t : t + 1, 0], self._head2[t : t + 1, 1])


def _fit_text(text: Text, renderer: object, max_width_px: float, min_fontsize: float = 5.0) -> None:
    width = text.get_window_extent(renderer).width
    if width > max_width_px:
        text.set_fontsize(max(min_fontsize, text.get_fontsize() * max_width_px / width))


class Stage:
    """A figure of one or more panels (row-major, ``ncols`` per row) sharing one scale (metres per pixel).

    ``frame(i)`` renders frame ``i``; a motion shorter than ``i`` frames shows its last frame.
    """

    def __init__(
        self,
        motions: Sequence[np.ndarray],
        *,
        fps: float,
        titles: Sequence[str | None] | None = None,
        ncols: int | None = None,
        suptitle: str | None = None,
        size: int = DEFAULT_SIZE,
        camera: Camera = DEFAULT_CAMERA,
    ) -> None:
        n = len(motions)
        ncols = min(ncols or math.ceil(math.sqrt(n)), n)
        nrows = math.ceil(n / ncols)
        unit = size / DEFAULT_SIZE
        band = 0 if not suptitle else max(32, round(0.1 * size / 16) * 16)
        title_px = 0 if titles is None or not any(titles) else round(0.085 * size)
        self.width, self.height = ncols * size, nrows * size + band
        self.fps = fps
        self.n_frames = max(m.shape[0] for m in motions)

        self.figure = Figure(
            figsize=((self.width + 0.01) / DPI, (self.height + 0.01) / DPI), dpi=DPI, facecolor="white"
        )
        self.canvas = FigureCanvasAgg(self.figure)
        renderer = self.canvas.get_renderer()
        W, H = self.width, self.height
        self.panels: list[Panel] = []
        texts: list[tuple[Text, float]] = []
        for i, joints in enumerate(motions):
            row, col = divmod(i, ncols)
            top = H - band - row * size
            ax = self.figure.add_axes((col * size / W, (top - size) / H, size / W, (size - title_px) / H))
            self.panels.append(Panel(ax, joints, camera, fps, linewidth=2.5 * unit))
            title = titles[i] if titles is not None else None
            if title:
                text = self.figure.text(
                    (col + 0.5) * size / W,
                    (top - 0.012 * size) / H,
                    title,
                    ha="center",
                    va="top",
                    fontsize=10 * unit,
                    color=TEXT_COLOR,
                )
                texts.append((text, 0.96 * size))
        if suptitle:
            text = self.figure.text(
                0.5,
                1 - 0.5 * band / H,
                suptitle,
                ha="center",
                va="center",
                fontsize=11 * unit,
                fontweight="bold",
                color=TEXT_COLOR,
            )
            texts.append((text, 0.96 * W))
        for text, max_width in texts:
            _fit_text(text, renderer, max_width)

        view_h = size - title_px
        scale = max(max((p.hi[0] - p.lo[0]) / size, (p.hi[1] - p.lo[1]) / view_h) for p in self.panels)
        scale *= 1 + 2 * VIEW_PAD
        for panel in self.panels:
            panel.set_view(scale, size, view_h)

        self.clock = self.figure.text(
            1 - 0.01 * size / W,
            0.01 * size / H,
            "",
            ha="right",
            va="bottom",
            fontsize=7 * unit,
            color=CLOCK_COLOR,
            animated=True,
        )
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)

    def frame_rgba(self, index: int) -> np.ndarray:
        """Render frame ``index``; returns a (height, width, 4) uint8 view of the canvas, valid until the
        next frame is rendered."""
        self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for panel in self.panels:
            panel.update(index)
            for artist in panel.artists:
                panel.ax.draw_artist(artist)
        self.clock.set_text(f"{index / self.fps:.2f} s  {index + 1}/{self.n_frames}")
        self.clock.draw(renderer)
        return np.asarray(self.canvas.buffer_rgba())[: self.height, : self.width]

    def frame_image(self, index: int) -> Image.Image:
        """Frame ``index`` as an RGB Pillow image (a copy)."""
        rgba = np.ascontiguousarray(self.frame_rgba(index))
        return Image.frombuffer("RGBA", (self.width, self.height), rgba, "raw", "RGBA", 0, 1).convert("RGB")

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a (height, width, 3) uint8 array (a copy)."""
        return np.ascontiguousarray(self.frame_rgba(index)[..., :3])
