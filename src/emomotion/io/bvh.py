"""Read BVH motion capture files (writing: :mod:`emomotion.io.bvh_writer`; the parsed type and its
forward kinematics: :mod:`emomotion.io.bvh_motion`).

Any rotation-channel order, position channels on any joint (Bandai's rig has six channels on
every joint and keeps the global translation in Hips, under a static ``joint_Root``), End Sites,
CRLF line ends and tabs. Channel values replace the OFFSET components they name. Rotations compose
in the listed channel order (intrinsic): ``R = R_1(a_1) @ R_2(a_2) @ R_3(a_3)``, degrees.

Every problem with a file raises :class:`~emomotion.errors.BvhError` naming the file, the line and
the reason, quoting at most a short excerpt of the input. Hostile files are refused before they cost
much: size, line count, joints, frames, frames x joints, Frame Time and duration are bounded (the
``MAX_*`` constants below), the hierarchy is parsed without recursion (any depth), and a UTF-8 BOM
is accepted. We tried ``upc-pymotion`` 0.3.4 first: it reads all 176 shared BVH files, but at
about 6,300 frames/s here against about 30,000 for this reader, its forward kinematics applies only
the root's position (every Bandai clip would walk in place), and a truncated file raises
``UnboundLocalError`` with no file or line.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emomotion.errors import BvhError
from emomotion.io.bvh_motion import AXIS_INDEX, CHANNEL_NAMES, BvhSkeleton, Motion

__all__ = ["CHANNEL_NAMES", "BvhSkeleton", "Motion", "excerpt", "read_bvh"]

# ----------------------------------------------------------------------------- reading

MAX_FILE_BYTES = 256 * 2**20
"""Larger files are refused before they are read (an hour of a 60-joint rig at 120 fps is ~200 MB)."""
MAX_JOINTS = 512
"""Joints (and so channels: at most 6 each, 3,072 in all); full-body rigs with fingers have ~150."""
MAX_FRAMES = 1_000_000
MAX_FRAME_JOINTS = 4_000_000
"""Frames x joints: bounds the parsed arrays (about 200 bytes per joint and frame, < 1 GB)."""
MAX_SECONDS = 3600.0
"""Longest clip (Frames x Frame Time); resampling allocates by duration."""
FRAME_TIME_RANGE = (1e-4, 1.0)
"""Seconds per frame: 10,000 fps down to 1 fps."""
MAX_NAME_CHARS = 256
_EXCERPT_CHARS = 40
_MAX_VALUE_CHARS = 64  # one channel value with its separator, generously
_HIERARCHY_WORDS_PER_JOINT = 40  # ROOT/JOINT name { OFFSET x y z CHANNELS n c.. End Site { OFFSET x y z } }


def excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """``repr`` of at most ``limit`` characters of ``text``: error messages never quote a whole input."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their line numbers."""

    def __init__(self, lines: list[str], path: Path) -> None:
        self.items: list[tuple[str, int]] = []
        self.path = path
        self.pos = 0
        self.motion_line = -1
        limit = _HIERARCHY_WORDS_PER_JOINT * MAX_JOINTS
        for i, line in enumerate(lines):
            budget = limit - len(self.items)
            words = line.split(None, budget)  # never more words than the limit allows
            if words and words[0] == "MOTION":
                self.motion_line = i
                break
            if len(words) > budget:
                raise self.error(f"HIERARCHY is too long: more than {limit:,} words before MOTION", i + 1)
            if words and words[0] in ("ROOT", "JOINT") and len(words) > 2:
                # a name may hold spaces (3ds Max: "JOINT Bip01 L Thigh"): the rest of the line, less a brace
                rest = line.strip()[len(words[0]) :].strip()
                brace = rest.endswith("{")
                name = rest[:-1].strip() if brace else rest
                if name and "{" not in name and "}" not in name:
                    self.items.append((words[0], i + 1))
                    self.items.append((name, i + 1))
                    if brace:
                        self.items.append(("{", i + 1))
                    continue
            # braces may touch names: "Hips{" -> "Hips", "{"
            for w in words:
                parts = w.replace("{", " { ").replace("}", " } ").split()
                self.items.extend((p, i + 1) for p in parts)
            if len(self.items) > limit:
                raise self.error(f"HIERARCHY is too long: more than {limit:,} words before MOTION", i + 1)
        self.last_line = len(lines)

    def error(self, reason: str, line: int | None = None) -> BvhError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else self.last_line
        return BvhError(reason, path=self.path, where=f"line {line}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"unexpected end of HIERARCHY, expected {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> None:
        tok, line = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, found {excerpt(tok)}", line)

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"expected a number for {what}, found {excerpt(tok)}", line) from None
        if not math.isfinite(value):
            raise self.error(f"{what} is not finite: {excerpt(tok)}", line)
        return value


class _Hierarchy:
    """The HIERARCHY grammar, parsed with an explicit stack: any nesting depth, no recursion."""

    def __init__(self, tokens: _Tokens) -> None:
        self.tokens = tokens
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.parents: list[int] = []
        self.offsets: list[tuple[float, float, float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.has_offset: list[bool] = []
        self.end_sites: dict[int, np.ndarray] = {}

    def offset(self, what: str) -> tuple[float, float, float]:
        t = self.tokens
        t.expect("OFFSET")
        return (t.number(f"{what} OFFSET x"), t.number(f"{what} OFFSET y"), t.number(f"{what} OFFSET z"))

    def open_joint(self, parent: int) -> int:
        t = self.tokens
        name, line = t.next("a joint name")
        if name in ("{", "}"):
            raise t.error(f"expected a joint name, found {name!r}", line)
        if len(name) > MAX_NAME_CHARS:
            raise t.error(f"joint name longer than {MAX_NAME_CHARS} characters: {excerpt(name)}", line)
        if name in self.index:
            raise t.error(f"duplicate joint name {name!r}", line)
        if len(self.names) >= MAX_JOINTS:
            raise t.error(f"more than {MAX_JOINTS} joints", line)
        index = len(self.names)
        self.index[name] = index
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append((0.0, 0.0, 0.0))
        self.channels.append(())
        self.has_offset.append(False)
        t.expect("{")
        return index

    def read_channels(self, index: int, line: int) -> None:
        t = self.tokens
        name = self.names[index]
        count = t.number(f"the channel count of {name}")
        if count != int(count) or not 0 <= count <= 6:
            raise t.error(f"channel count of {name} must be 0..6, got {count:g}", line)
        chans = tuple(t.next(f"a channel name of {name}")[0] for _ in range(int(count)))
        bad = [c for c in chans if c not in CHANNEL_NAMES]
        if bad or len(set(chans)) != len(chans):
            shown = excerpt(" ".join(chans), 4 * _EXCERPT_CHARS)
            raise t.error(f"bad channels for {name}: {shown}", line)
        self.channels[index] = chans

    def parse(self) -> BvhSkeleton:
        t = self.tokens
        t.expect("HIERARCHY")
        stack: list[int] = []  # joints whose '}' is still to come
        while stack or t.pos < len(t.items):
            if not stack:
                tok, line = t.next("ROOT")
                if tok != "ROOT":
                    raise t.error(f"expected ROOT, found {excerpt(tok)}", line)
                stack.append(self.open_joint(-1))
                continue
            index = stack[-1]
            name = self.names[index]
            tok, line = t.next(f"OFFSET, CHANNELS, JOINT, End Site or '}}' in {name}")
            if tok == "OFFSET":
                t.pos -= 1
                self.offsets[index] = self.offset(name)
                self.has_offset[index] = True
            elif tok == "CHANNELS":
                self.read_channels(index, line)
            elif tok == "JOINT":
                stack.append(self.open_joint(index))
            elif tok == "End":
                t.expect("Site")
                t.expect("{")
                self.end_sites[index] = np.array(self.offset(f"{name} End Site"))
                t.expect("}")
            elif tok == "}":
                if not self.has_offset[index]:
                    raise t.error(f"joint {name} has no OFFSET", line)
                stack.pop()
            else:
                raise t.error(f"unexpected {excerpt(tok)} in joint {name}", line)
        if not self.names:
            raise t.error("no ROOT joint in HIERARCHY")
        return BvhSkeleton(
            tuple(self.names),
            np.array(self.parents, dtype=np.int64),
            np.array(self.offsets),
            tuple(self.channels),
            self.end_sites,
        )


def _header_value(line: str, key: str, path: Path, lineno: int) -> str:
    label = key.split()
    words = line.split(None, len(label) + 1)
    if words[: len(label)] != label or len(words) != len(label) + 1:
        raise BvhError(
            f"expected '{key} <value>', found {excerpt(line.strip())}", path=path, where=f"line {lineno}"
        )
    return words[-1]


def _read_raw(path: Path) -> bytes:
    """The file's bytes, refusing anything over :data:`MAX_FILE_BYTES` before reading it."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size  # 0 for pipes and devices: then read in chunks
            if size > MAX_FILE_BYTES:
                raise BvhError(f"larger than {MAX_FILE_BYTES // 2**20} MiB ({size:,} bytes)", path=path)
            raw = fh.read(size + 1) if size else _read_chunks(fh)
    except OSError as exc:
        raise BvhError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if len(raw) > MAX_FILE_BYTES:
        raise BvhError(f"larger than {MAX_FILE_BYTES // 2**20} MiB", path=path)
    return raw


def _read_chunks(fh: BinaryIO) -> bytes:
    chunks, total = [], 0
    while total <= MAX_FILE_BYTES and (chunk := fh.read(2**20)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _text(raw: bytes, path: Path) -> str:
    """The decoded file with LF line ends (a UTF-8 BOM is dropped; LF, CRLF and CR end lines)."""
    most = MAX_FRAMES + _HIERARCHY_WORDS_PER_JOINT * MAX_JOINTS + 16
    if raw.count(b"\n") > most or raw.count(b"\r") > most:
        raise BvhError(f"more than {most:,} lines", path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise BvhError(f"not UTF-8 text (byte {exc.start})", path=path, where=f"line {line}") from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


_MOTION_LINE = re.compile(r"^[^\S\n]*MOTION(?=\s|$)", re.MULTILINE)
"""The first line whose first word is MOTION (``str.split`` and ``\\s`` agree on whitespace)."""
_HIERARCHY_CACHE_SIZE = 32
_HIERARCHY_CACHE_CHARS = 2**20
"""Only a HIERARCHY this short is looked for and kept (a Bandai one has about 5,000 characters)."""
_hierarchies: dict[str, tuple[BvhSkeleton, int]] = {}
"""HIERARCHY text up to MOTION -> its skeleton and the MOTION line: clips of one rig parse it once."""
_hierarchies_lock = threading.Lock()


def _copy(skeleton: BvhSkeleton) -> BvhSkeleton:
    return BvhSkeleton(
        skeleton.names,
        skeleton.parents.copy(),
        skeleton.offsets.copy(),
        skeleton.channels,
        {k: v.copy() for k, v in skeleton.end_sites.items()},
    )


def _hierarchy(text: str, lines: list[str], path: Path) -> tuple[BvhSkeleton, int]:
    """The skeleton and the index of the MOTION line (-1: none). A HIERARCHY whose text was parsed
    before is taken from the cache; any other is parsed (and its errors raised) as usual."""
    # one character past the limit, so that the lookahead after a MOTION within it sees a real one
    found = _MOTION_LINE.search(text, 0, _HIERARCHY_CACHE_CHARS + 1)
    key = text[: found.end()] if found and found.end() <= _HIERARCHY_CACHE_CHARS else None
    if key is not None and (hit := _hierarchies.get(key)) is not None:
        return _copy(hit[0]), hit[1]
    tokens = _Tokens(lines, path)
    skeleton = _Hierarchy(tokens).parse()
    if key is not None and tokens.motion_line == key.count("\n"):
        with _hierarchies_lock:
            if len(_hierarchies) >= _HIERARCHY_CACHE_SIZE:
                del _hierarchies[next(iter(_hierarchies))]  # the oldest
            _hierarchies[key] = (_copy(skeleton), tokens.motion_line)
    return skeleton, tokens.motion_line


_AXIS_PLANE = ((1, 2), (2, 0), (0, 1))
"""The rows and columns that a rotation about X, Y or Z turns."""


def _axis_rotations(axes: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """(K,) axis indexes and (T, K) angles -> (T, K, 3, 3) rotations, each about its axis."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    k = np.arange(axes.size)
    i, j = np.array(_AXIS_PLANE)[axes].T
    m[:, k, axes, axes] = 1.0
    m[:, k, i, i] = c
    m[:, k, j, j] = c
    m[:, k, i, j] = -s
    m[:, k, j, i] = s
    return m


def _frame_header(lines: list[str], start: int, path: Path) -> tuple[int, float, list[tuple[int, str]], int]:
    """Frames and Frame Time after the MOTION line, checked against the limits; the data lines and
    the Frame Time line number."""
    rest = [(i + 1, lines[i]) for i in range(start + 1, len(lines)) if lines[i].strip()]
    if len(rest) < 2:
        raise BvhError(
            "MOTION needs 'Frames:' and 'Frame Time:' lines", path=path, where=f"line {len(lines)}"
        )
    (n_frames_line, frames_text), (n_time_line, time_text) = rest[0], rest[1]
    frames_value = _header_value(frames_text, "Frames:", path, n_frames_line)
    time_value = _header_value(time_text, "Frame Time:", path, n_time_line)
    at_frames, at_time = f"line {n_frames_line}", f"line {n_time_line}"
    try:
        num_frames = int(frames_value)
    except ValueError:
        raise BvhError(
            f"Frames: is not an integer: {excerpt(frames_value)}", path=path, where=at_frames
        ) from None
    try:
        frame_time = float(time_value)
    except ValueError:
        raise BvhError(
            f"Frame Time: is not a number: {excerpt(time_value)}", path=path, where=at_time
        ) from None
    if not 0 < num_frames <= MAX_FRAMES:
        raise BvhError(
            f"Frames: must be positive and at most {MAX_FRAMES:,}, got {excerpt(frames_value)}",
            path=path,
            where=at_frames,
        )
    lo, hi = FRAME_TIME_RANGE
    if not (math.isfinite(frame_time) and lo <= frame_time <= hi):
        raise BvhError(
            f"Frame Time: must be between {lo:g} and {hi:g} s ({1 / hi:g} to {1 / lo:g} fps), "
            f"got {excerpt(time_value)}",
            path=path,
            where=at_time,
        )
    if (num_frames - 1) * frame_time > MAX_SECONDS:
        raise BvhError(
            f"the clip lasts {(num_frames - 1) * frame_time:,.0f} s; at most {MAX_SECONDS:,.0f} s is read "
            "(split the file)",
            path=path,
            where=at_time,
        )
    return num_frames, frame_time, rest[2:], n_time_line


def read_bvh(path: str | Path) -> Motion:
    """Parse a BVH file (see the module docstring); every limit above raises a :class:`BvhError`."""
    path = Path(path)
    raw = _read_raw(path)
    if not raw or raw.isspace():
        raise BvhError("empty file", path=path)
    text = _text(raw, path)
    del raw
    lines = text.split("\n")
    skeleton, motion_line = _hierarchy(text, lines, path)
    del text
    if motion_line < 0:
        raise BvhError("no MOTION section", path=path, where=f"line {len(lines)}")
    num_frames, frame_time, data, time_line = _frame_header(lines, motion_line, path)
    if len(data) != num_frames:
        line = data[-1][0] if data else time_line
        what = "truncated" if len(data) < num_frames else "extra lines"
        raise BvhError(
            f"{what}: Frames: says {num_frames}, found {len(data)} data lines",
            path=path,
            where=f"line {line}",
        )
    if num_frames * len(skeleton.names) > MAX_FRAME_JOINTS:
        raise BvhError(
            f"{num_frames:,} frames x {len(skeleton.names)} joints is over the {MAX_FRAME_JOINTS:,} read at "
            "once (split the file)",
            path=path,
        )
    values = _parse_values(data, skeleton.num_channels, path)
    return _assemble(skeleton, values, _fps(frame_time), path)


def _fps(frame_time: float) -> float:
    """1 / Frame Time, snapped to a whole number when the file's rounding is all that separates them
    (``0.0333333`` -> 30, ``0.016667`` -> 60)."""
    fps = 1.0 / frame_time
    nearest = round(fps)
    return float(nearest) if nearest > 0 and abs(fps - nearest) <= 1e-4 * fps else fps


def _locate_bad_line(data: list[tuple[int, str]], width: int, path: Path) -> BvhError:
    """The error for the first data line with a wrong count or a non-number (slow path)."""
    for n, line in data:
        words = line.split(None, width)
        if len(words) != width:
            found = f"more than {width}" if len(words) > width else len(words)
            return BvhError(f"expected {width} channel values, found {found}", path=path, where=f"line {n}")
        for word in words:
            try:
                float(word)
            except ValueError:
                return BvhError(f"not a number: {excerpt(word)}", path=path, where=f"line {n}")
    return BvhError("channel values could not be parsed", path=path)


def _parse_values(data: list[tuple[int, str]], width: int, path: Path) -> np.ndarray:
    """(T, width) channel values; a wrong count or a non-finite value names its line."""
    longest = max(range(len(data)), key=lambda k: len(data[k][1]))
    if len(data[longest][1]) > _MAX_VALUE_CHARS * (width + 1):  # before numpy sizes an array by it
        raise BvhError(
            f"a line of {len(data[longest][1]):,} characters cannot hold {width} channel values",
            path=path,
            where=f"line {data[longest][0]}",
        )
    try:
        values = np.loadtxt([line for _, line in data], dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        raise _locate_bad_line(data, width, path) from None
    if values.shape[1] != width:
        raise BvhError(
            f"expected {width} channel values per frame, found {values.shape[1]}",
            path=path,
            where=f"line {data[0][0]}",
        )
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise BvhError("channel values are not finite (NaN or inf)", path=path, where=f"line {data[row][0]}")
    return values


@dataclass(frozen=True)
class _ChannelLayout:
    """Where each channel value goes: position channels by (joint, axis); rotation channels by joint
    and slot, three slots a joint in channel order (a missing one turns 0 degrees about X)."""

    position_columns: np.ndarray
    position_joints: np.ndarray
    position_axes: np.ndarray
    rotation_columns: np.ndarray  # (R,) value column of each rotation channel
    rotation_slots: np.ndarray  # (R,) its slot, joint * 3 + order among the joint's rotations
    slot_axes: np.ndarray  # (3 J,) axis of every slot


@functools.lru_cache(maxsize=64)
def _channel_layout(channels: tuple[tuple[str, ...], ...]) -> _ChannelLayout:
    pos: list[tuple[int, int, int]] = []
    rot: list[tuple[int, int]] = []
    slot_axes = np.zeros(3 * len(channels), dtype=np.int64)
    col = 0
    for k, chans in enumerate(channels):
        order = 0
        for c in chans:
            axis = AXIS_INDEX[c[0]]
            if c.endswith("position"):
                pos.append((col, k, axis))
            else:
                rot.append((col, 3 * k + order))
                slot_axes[3 * k + order] = axis
                order += 1
            col += 1
    p = np.array(pos, dtype=np.int64).reshape(-1, 3).T
    r = np.array(rot, dtype=np.int64).reshape(-1, 2).T
    return _ChannelLayout(p[0], p[1], p[2], r[0], r[1], slot_axes)


def _assemble(skeleton: BvhSkeleton, values: np.ndarray, fps: float, path: Path | None) -> Motion:
    """Local translations and rotations of every joint and frame; rotations compose in channel order."""
    t, j = values.shape[0], len(skeleton.names)
    layout = _channel_layout(skeleton.channels)
    local_pos = np.broadcast_to(skeleton.offsets, (t, j, 3)).copy()
    local_pos[:, layout.position_joints, layout.position_axes] = values[:, layout.position_columns]
    angles = np.zeros((t, 3 * j))
    angles[:, layout.rotation_slots] = values[:, layout.rotation_columns]
    slots = _axis_rotations(layout.slot_axes, angles).reshape(t, j, 3, 3, 3)
    rotations = slots[:, :, 0] @ slots[:, :, 1] @ slots[:, :, 2]
    return Motion(skeleton, local_pos, rotations, fps, path)


# ----------------------------------------------------------------------------- writing
