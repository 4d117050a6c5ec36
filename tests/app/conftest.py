"""A tiny emotion-conditioned MDM trained in seconds, shared by the web-demo tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from emomotion.app import AppLimits, DemoRunner, RunningApp, launch_app, load_models
from emomotion.sampling.diffusion import DiffusionConfig
from emomotion.training.config import TrainConfig
from emomotion.training.mdm import MDMRun, run_mdm
from tests.conftest import build_synthetic

LIMITS = AppLimits(max_prompt_chars=200, max_seconds=6.0, max_samples=3)


def train_tiny(root: Path, *, emotions: bool, steps: int = 5) -> Path:
    data = root / "data"
    if not data.exists():
        build_synthetic(data)
    run = MDMRun(
        data=data,
        out=root / ("emo" if emotions else "text"),
        preset="tiny",
        diffusion=DiffusionConfig(50),
        train=TrainConfig(steps=steps, batch_size=8, lr=1e-3, save_every=steps, log_every=1),
        max_frames=64,
        emotion_conditioning=emotions,
    )
    return run_mdm(run)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Two tiny MDM checkpoints: one with emotion conditioning, one text only."""
    root = tmp_path_factory.mktemp("app_models")
    return {"emo": train_tiny(root, emotions=True), "text": train_tiny(root, emotions=False)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served(tiny_models, tmp_path_factory) -> Iterator[RunningApp]:
    """The demo serving both tiny models on a free localhost port, closed after the session."""
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'emomotion[app]')")
    models = load_models([tiny_models["emo"], tiny_models["text"]], LIMITS)
    runner = DemoRunner(models, tmp_path_factory.mktemp("served_out"), LIMITS)
    app = launch_app(runner, port=free_port())
    try:
        yield app
    finally:
        app.close()
