"""How many CPU threads torch uses in each process.

torch's default (one thread per core, in every process) oversubscribes a machine as soon as several
processes share it: on a busy 2-core machine a training step of the small preset took 20-30 times as
long as with one thread (BENCHMARKS.md). The default here is the cores this process may run on,
divided among the processes a launcher (``torchrun``, ``accelerate launch``) started on this machine,
at least one; ``OMP_NUM_THREADS``, when set, is taken as the user's choice, and the CLI's global
``--threads`` overrides both.
"""

from __future__ import annotations

import logging
import os

from emomotion.errors import ConfigError

log = logging.getLogger(__name__)


def available_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_processes() -> int:
    """The processes of this run on this machine (``LOCAL_WORLD_SIZE`` from the launcher), else 1."""
    value = os.environ.get("LOCAL_WORLD_SIZE", "1")
    try:
        return max(int(value), 1)
    except ValueError:
        raise ConfigError(f"LOCAL_WORLD_SIZE must be an integer, got {value!r}") from None


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set, else the available cores shared among this machine's processes."""
    given = os.environ.get("OMP_NUM_THREADS")
    if given:
        try:
            return max(int(given), 1)
        except ValueError:
            raise ConfigError(f"OMP_NUM_THREADS must be an integer, got {given!r}") from None
    return max(available_cores() // local_processes(), 1)


def configure_threads(threads: int | None = None) -> int:
    """Give torch ``threads`` intra-op threads (the default when None); returns the number set."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    n = default_threads() if threads is None else threads
    import torch

    torch.set_num_threads(n)
    log.debug("torch uses %d thread(s) in this process", n)
    return n
