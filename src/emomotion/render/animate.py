"""Writing stick-figure animations (gif, mp4), grids of them, and single frames (png), atomically."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor

from emomotion.errors import ConfigError, MotionFormatError
from emomotion.io.atomic import atomic_path
from emomotion.render.scene import DEFAULT_SIZE, SCENE_COLORS, Stage, check_joints, check_size

log = logging.getLogger(__name__)

ANIMATION_SUFFIXES: tuple[str, ...] = (".gif", ".mp4")
MP4_QUALITY: float = 7.0
"""imageio-ffmpeg quality (1-10) of mp4 output; 7 gives libx264 crf 15."""
PALETTE_SAMPLES: int = 6
"""Frames sampled (evenly) to build the single palette shared by every frame of a gif."""
PALETTE_MIN_GAP: int = 16
"""Adaptive gif colours closer than this (levels, in every channel) to an exact scene colour are dropped."""


def _check_suffix(path: Path, allowed: Sequence[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ConfigError(
            f"unsupported output suffix {path.suffix!r}; use one of {', '.join(allowed)}", path=path
        )
    return suffix


def _check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ConfigError(f"fps must be a positive finite number, got {fps!r}", where="fps")
    return float(fps)


@contextlib.contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    """Yield a callable that advances a rich progress bar by one frame (a no-op when disabled)."""
    if not enabled:
        yield lambda: None
        return
    from emomotion.progress import progress_bar

    with progress_bar("frames") as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def _gif_palette(stage: Stage) -> Image.Image:
    """One palette for every frame: the exact colours of the scene, plus adaptive colours (antialiased
    edges) from frames sampled over the whole animation. Adaptive colours near an exact one are dropped:
    Pillow maps each colour to the palette entry nearest the corner of its 4-level cache cell, so a
    near-white entry would otherwise take the white background."""
    exact = np.array([ImageColor.getrgb(c) for c in dict.fromkeys(("#ffffff", *SCENE_COLORS))])
    picks = np.unique(np.linspace(0, stage.n_frames - 1, PALETTE_SAMPLES).round().astype(int))
    sample = Image.fromarray(np.concatenate([stage.frame(int(i)) for i in picks], axis=0))
    n_adaptive = 256 - len(exact)
    adaptive = sample.quantize(colors=n_adaptive, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    extra = np.array(adaptive.getpalette()[: 3 * n_adaptive]).reshape(-1, 3)
    distinct = np.abs(extra[:, None, :] - exact[None, :, :]).max(axis=-1).min(axis=1) > PALETTE_MIN_GAP
    palette = Image.new("P", (1, 1))
    palette.putpalette(np.concatenate([exact, extra[distinct]]).astype(np.uint8).ravel().tolist())
    return palette


def _write_gif(stage: Stage, tmp: Path, advance: Callable[[], None]) -> None:
    palette = _gif_palette(stage)
    frames = []
    for i in range(stage.n_frames):
        frames.append(stage.frame_image(i).quantize(palette=palette, dither=Image.Dither.NONE))
        advance()
    frames[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        loop=0,
        duration=round(1000 / stage.fps),
        optimize=False,
    )


def _write_mp4(stage: Stage, tmp: Path, advance: Callable[[], None]) -> None:
    import imageio.v2 as imageio

    writer = imageio.get_writer(
        tmp,
        format="FFMPEG",
        mode="I",
        fps=stage.fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=MP4_QUALITY,
        macro_block_size=16,
        ffmpeg_log_level="error",
    )
    try:
        for i in range(stage.n_frames):
            writer.append_data(stage.frame_rgba(i))
            advance()
    finally:
        writer.close()


def _write_animation(stage: Stage, path: Path, suffix: str, progress: bool) -> Path:
    start = time.perf_counter()
    with _progress(progress, f"rendering {path.name}", stage.n_frames) as advance, atomic_path(path) as tmp:
        if suffix == ".gif":
            _write_gif(stage, tmp, advance)
        else:
            _write_mp4(stage, tmp, advance)
    log.info(
        "wrote %s (%d frames, %dx%d, %.1f s)",
        path,
        stage.n_frames,
        stage.width,
        stage.height,
        time.perf_counter() - start,
    )
    return path


def render_animation(
    joints: np.ndarray,
    path: str | Path,
    *,
    fps: float = 20,
    title: str | None = None,
    progress: bool = False,
    size: int = DEFAULT_SIZE,
) -> Path:
    """Write a stick-figure animation of ``joints`` (T, 22, 3), Y up, metres, to a .gif or .mp4.

    ``size`` is the side of the square picture in pixels (rounded up to a multiple of 16).
    """
    path = Path(path)
    suffix = _check_suffix(path, ANIMATION_SUFFIXES)
    fps = _check_fps(fps)
    size = check_size(size)
    joints = check_joints(joints, where="joints", path=path)
    stage = Stage([joints], fps=fps, titles=[title] if title else None, size=size)
    return _write_animation(stage, path, suffix, progress)


def render_grid(
    motions: Sequence[np.ndarray],
    path: str | Path,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    fps: float = 20,
    suptitle: str | None = None,
    progress: bool = False,
    size: int = DEFAULT_SIZE,
) -> Path:
    """Write several motions side by side (row-major, ``ncols`` per row) to a .gif or .mp4.

    Motions may differ in length: the animation lasts as long as the longest, shorter ones hold their
    last frame. Every panel uses the same scale (metres per pixel), so sizes and strides compare.
    ``ncols`` defaults to ceil(sqrt(n)) and is capped at the number of motions.
    """
    path = Path(path)
    suffix = _check_suffix(path, ANIMATION_SUFFIXES)
    fps = _check_fps(fps)
    size = check_size(size)
    motions = list(motions)
    if not motions:
        raise MotionFormatError("no motions to render", path=path, where="motions")
    checked = [check_joints(m, where=f"motions[{i}]", path=path) for i, m in enumerate(motions)]
    if titles is not None and len(titles) != len(checked):
        raise ConfigError(f"{len(titles)} titles for {len(checked)} motions", path=path, where="titles")
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1):
        raise ConfigError(f"ncols must be a positive integer, got {ncols!r}", path=path, where="ncols")
    stage = Stage(checked, fps=fps, titles=titles, ncols=ncols, suptitle=suptitle, size=size)
    return _write_animation(stage, path, suffix, progress)


def render_frame(
    joints: np.ndarray,
    frame: int,
    path: str | Path,
    *,
    title: str | None = None,
    fps: float = 20,
    size: int = DEFAULT_SIZE,
) -> Path:
    """Write frame ``frame`` (negative counts from the end) of ``joints`` (T, 22, 3) to a .png.

    The floor, camera and scale are those of the whole animation; ``fps`` only sets the clock label.
    """
    path = Path(path)
    _check_suffix(path, (".png",))
    fps = _check_fps(fps)
    size = check_size(size)
    joints = check_joints(joints, where="joints", path=path)
    n = joints.shape[0]
    if isinstance(frame, bool) or not isinstance(frame, int | np.integer) or not -n <= frame < n:
        raise ConfigError(f"frame {frame!r} out of range for {n} frames", path=path, where="frame")
    stage = Stage([joints], fps=fps, titles=[title] if title else None, size=size)
    image = stage.frame_image(int(frame) % n)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    log.info("wrote %s (frame %d of %d)", path, int(frame) % n, n)
    return path
