"""The default number of torch threads never oversubscribes: the cores shared among a launcher's local
processes, OMP_NUM_THREADS when the user set it, ``--threads`` over both."""

from __future__ import annotations

import pytest
import torch

from emomotion import threads
from emomotion.cli import main
from emomotion.errors import ConfigError


@pytest.fixture
def restore_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_default_shares_the_cores_among_local_processes(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert threads.default_threads() == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert threads.default_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.default_threads() == 1  # at least one
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3  # the user's (or the launcher's) choice wins


def test_bad_values_are_clear_errors(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ConfigError, match="OMP_NUM_THREADS"):
        threads.default_threads()
    with pytest.raises(ConfigError, match="--threads"):
        threads.configure_threads(0)


def test_cli_threads_option_sets_torch_threads(restore_threads, capsys):
    assert main(["--threads", "2", "joint-maps"]) == 0
    assert torch.get_num_threads() == 2
    assert main(["joint-maps"]) == 0  # the default: OMP_NUM_THREADS=1 from the test session
    assert torch.get_num_threads() == 1
    assert main(["--threads", "0", "joint-maps"]) == 2  # a usage error
