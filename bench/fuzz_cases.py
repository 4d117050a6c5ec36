"""Hostile BVH inputs and a sandboxed worker that runs them through the BVH -> features pipeline.

Shared by ``bench/fuzz.py`` (10,000 mutated files) and the bounded fuzz test in the suite.

* :func:`mutate` applies 1-4 random edits (bytes, lines, numbers, header values, hierarchy) to a
  real file; :func:`hostile_edits` makes the fixed set of the issue's hostile edits.
* :class:`Worker` is a long-lived subprocess (``python -m bench.fuzz_cases``) that imports the
  library once, caps its address space with ``RLIMIT_AS`` and runs each case under a ``SIGALRM``
  time limit. Per case it reports the outcome (``ok``, ``typed``, ``long-message``, ``untyped``,
  ``timeout``), the seconds, the peak of memory allocated during the case (``tracemalloc``, which
  numpy's array buffers report to) and the worker's resident high-water mark (``ru_maxrss``). The
  parent also kills a worker that does not answer in time (``hang``) and restarts one that dies
  (``crashed``).
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_MESSAGE_BYTES = 2000
EXTREMES = (
    "0", "-1", "-0", "1e6", "3600", "5e-324", "1e300", "1e-300", "nan", "inf", "-inf", "1e999",
    "99999999999999999999", "0x10", "1_000", "", "Ⅻ", "1e-4", "1e5",
)  # fmt: skip
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


# ----------------------------------------------------------------------------- inputs


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _edit_number(data: bytes, rng: random.Random) -> bytes:
    spans = [m.span() for m in _NUMBER.finditer(data, 0, min(len(data), 1 << 20))]
    if not spans:
        return data
    a, b = rng.choice(spans)
    return data[:a] + rng.choice(EXTREMES).encode() + data[b:]


def _edit_header(data: bytes, rng: random.Random) -> bytes:
    key = rng.choice([b"Frames:", b"Frame Time:"])
    value = rng.choice(EXTREMES + ("2", "100000", "1000000", "0.0333333", "0.001"))
    return re.sub(re.escape(key) + rb"[^\n]*", key + b" " + value.encode(), data, count=1)


def _deep_chain(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([10, 100, 600, 1200, 3000])
    chain = b"".join(
        b"JOINT j%d { OFFSET 0 1 0 CHANNELS 3 Zrotation Xrotation Yrotation\n" % i for i in range(depth)
    )
    close = b"}\n" * rng.choice([depth, depth - 1, 0])
    at = data.find(b"{") + 1 if b"{" in data else 0
    return data[:at] + b"\n" + chain + close + data[at:]


def _line_op(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.choice("dxsb")
    if op == "d":
        del lines[i]
    elif op == "x":
        lines[i:i] = [lines[j]] * rng.choice([1, 2, 50])
    elif op == "s":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i].replace(b"{", b"").replace(b"}", b"") if rng.random() < 0.5 else lines[i] + b" {"
    return b"\n".join(lines)


def _byte_op(data: bytes, rng: random.Random) -> bytes:
    pos = rng.randrange(len(data) + 1)
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    op = rng.choice("dirt")
    if op == "d":
        return data[:pos] + data[pos + rng.randint(1, 64) :]
    if op == "i":
        return data[:pos] + blob + data[pos:]
    if op == "r":
        return data[:pos] + blob + data[pos + len(blob) :]
    return data[:pos]


def _prefix(data: bytes, rng: random.Random) -> bytes:
    return rng.choice([b"\xef\xbb\xbf", b"\x00", b"\r\n", b"\xff\xfe"]) + data


_OPS = (
    (_byte_op, 4),
    (_line_op, 3),
    (_edit_number, 3),
    (_edit_header, 2),
    (_deep_chain, 1),
    (_prefix, 1),
)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """1-4 random edits of ``data``; also returns their names."""
    names = []
    for _ in range(rng.randint(1, 4)):
        op = rng.choices([o for o, _ in _OPS], weights=[w for _, w in _OPS])[0]
        data = op(data, rng) if data else data
        names.append(op.__name__.strip("_"))
    return data, "+".join(names)


def hostile_edits(good: bytes) -> dict[str, bytes]:
    """The issue's hostile edits of a good file (``bom`` must convert, every other one must fail)."""

    def frame_time(value: str) -> bytes:
        return re.sub(rb"Frame Time:[^\n]*", b"Frame Time: " + value.encode(), good, count=1)

    chain = b"HIERARCHY\nROOT j0\n{\nOFFSET 0 0 0\nCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n"
    chain += b"".join(
        b"JOINT j%d\n{\nOFFSET 0 1 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n" % i for i in range(1, 1200)
    )
    chain += b"}\n" * 1200 + b"MOTION\nFrames: 2\nFrame Time: 0.05\n"
    chain += (b" ".join([b"0"] * (6 + 3 * 1199)) + b"\n") * 2
    return {
        "frame-time-1e6": frame_time("1e6"),
        "frame-time-3600": frame_time("3600"),
        "frame-time-5e-324": frame_time("5e-324"),
        "frame-time-1e300": frame_time("1e300"),
        "chain-1200-joints": chain,
        "zeros-20MB": bytes(20 * 2**20),
        "bom": b"\xef\xbb\xbf" + good,
    }


# ----------------------------------------------------------------------------- the worker


class Worker:
    """A sandboxed subprocess that runs cases one at a time (see the module docstring)."""

    def __init__(self, mem_mb: int = 2048, timeout: float = 10.0) -> None:
        self.mem_mb = mem_mb
        self.timeout = timeout
        self.restarts = 0
        self.proc: subprocess.Popen[str] | None = None
        self._start()

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fuzz_cases", str(self.mem_mb), str(self.timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env=env,
        )
        ready = self._read(120.0)
        if ready != "ready":
            raise RuntimeError(f"fuzz worker did not start (said {ready!r})")

    def _read(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not readable:
            return None
        return self.proc.stdout.readline().strip() or None

    def _restart(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.restarts += 1
        self._start()

    def run(self, path: Path) -> dict:
        """One case: ``{"outcome", "seconds", "traced_peak", "maxrss", "detail"}``."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
            answer = self._read(self.timeout + 20.0)
        except BrokenPipeError:
            answer = None
        if answer is None:
            died = self.proc.poll()
            self._restart()
            if died is None:
                return {"outcome": "hang", "seconds": self.timeout + 20.0, "detail": "killed by the parent"}
            return {"outcome": "crashed", "seconds": 0.0, "detail": f"worker exit status {died}"}
        return json.loads(answer)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class _Timeout(BaseException):
    """Raised by SIGALRM; a BaseException so that no ``except Exception`` in the library hides it."""


def _serve(mem_mb: int, timeout: float) -> None:
    import resource
    import signal
    import time
    import tracemalloc

    limit = mem_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from emomotion.convert import load_motion
    from emomotion.errors import EmomotionError

    def alarm(*_: object) -> None:
        raise _Timeout

    signal.signal(signal.SIGALRM, alarm)
    out = sys.stdout
    sys.stdout = sys.stderr
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        path = line.rstrip("\n")
        tracemalloc.start()
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        detail = ""
        try:
            load_motion(path)
            outcome = "ok"
        except EmomotionError as exc:
            message = f"error: {exc}"
            long = len(message.encode()) >= MAX_MESSAGE_BYTES or "\n" in message
            outcome = "long-message" if long else "typed"
            detail = f"{type(exc).__name__}: {message[:300]}"
        except _Timeout:
            outcome = "timeout"
        except Exception as exc:
            outcome = "untyped"
            detail = f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - start
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        record = {
            "outcome": outcome,
            "seconds": seconds,
            "traced_peak": traced_peak,
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "detail": detail,
        }
        out.write(json.dumps(record) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]))
