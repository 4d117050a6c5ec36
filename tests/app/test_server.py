"""The served demo over HTTP: localhost only, queued requests, files only from its output folder."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from emomotion.app import UIRequest

gradio_client = pytest.importorskip("gradio_client", reason="gradio is not installed")
httpx = pytest.importorskip("httpx", reason="gradio is not installed")


def api_args(prompt: str, served, *, seconds: float = 2.0, emotion: str = "Sadness") -> dict:
    model = next(iter(served.runner.models))
    return {
        "prompt": prompt,
        "model": model,
        "emotion": emotion,
        "intensity": 0.8,
        "sampler": "dpmpp",
        "steps": 5,
        "seconds": seconds,
        "num": 1,
        "seed": 1,
        "guidance": 2.5,
        "api_name": "/generate",
    }


def test_binds_to_localhost_and_serves_the_page(served):
    assert served.url.startswith("http://127.0.0.1:")
    page = httpx.get(served.url, timeout=10)
    assert page.status_code == 200 and "emomotion" in page.text


def test_concurrent_requests_wait_in_the_queue(served):
    client = gradio_client.Client(served.url, verbose=False)
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results[i] = client.predict(**{**api_args(f"a person walks, take {i}", served), "seed": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 3
    for video, files, status in results.values():
        assert "1 motion(s) of 2 s (Sadness, intensity 0.8)" in status
        assert Path(video["video"] if isinstance(video, dict) else video).stat().st_size > 0
        assert sorted(Path(f).suffix for f in files) == [".bvh", ".mp4", ".npy", ".npy"]


def test_refused_request_reports_the_reason(served):
    client = gradio_client.Client(served.url, verbose=False)
    with pytest.raises(Exception, match="the limit is 200"):
        client.predict(**api_args("a person walks " * 20, served))


def test_only_the_output_folder_is_served(served, tiny_models):
    out = served.runner.out
    model = next(iter(served.runner.models))
    served.runner.run(UIRequest("a person knocks", model, seconds=2.0, steps=3))
    produced = next(p for p in out.rglob("*.mp4"))
    base = served.url.rstrip("/") + "/gradio_api/file="
    assert httpx.get(base + str(produced), timeout=10).status_code == 200
    for secret in (tiny_models["emo"], Path("/etc/passwd"), Path(__file__)):
        assert httpx.get(base + str(secret), timeout=10).status_code == 403, secret


def test_restyle_tab_over_http(served, tmp_path):
    import numpy as np

    from emomotion.features import recover_joints
    from emomotion.generate import MotionGenerator
    from tests.conftest import build_synthetic

    data = build_synthetic(tmp_path / "data")
    clip_id = (data / "train.txt").read_text().split()[0]
    feats = np.load(data / "new_joint_vecs" / f"{clip_id}.npy")[:48]
    upload = tmp_path / "walk.npy"
    np.save(upload, recover_joints(feats).astype(np.float32))  # a joints file, as a user would upload
    assert isinstance(next(iter(served.runner.models.values())).generator, MotionGenerator)
    client = gradio_client.Client(served.url, verbose=False)
    model = next(iter(served.runner.models))
    _video, files, status = client.predict(
        gradio_client.handle_file(str(upload)), model, "Anger", 0.5, 1.0, 5, 0, api_name="/restyle"
    )
    assert "restyled as Anger" in status and sorted(Path(f).suffix for f in files) == [
        ".bvh",
        ".mp4",
        ".npy",
        ".npy",
    ]
    with pytest.raises(Exception, match=r"[Ss]trength must be between 0 and 1"):
        client.predict(
            gradio_client.handle_file(str(upload)), model, "Anger", 1.5, 1.0, 5, 0, api_name="/restyle"
        )


def test_bad_api_values_get_a_clear_message_and_one_log_line(served, capfd, caplog):
    client = gradio_client.Client(served.url, verbose=False)
    capfd.readouterr()
    with caplog.at_level("INFO", logger="emomotion.app.server"):
        for key, value, match in [
            ("steps", "abc", "Steps must be a whole number"),
            ("guidance", "nan", "Guidance"),
        ]:
            with pytest.raises(Exception, match=match):
                client.predict(**{**api_args("a person walks", served), key: value})
    refused = [r for r in caplog.records if r.getMessage().startswith("request refused")]
    assert len(refused) == 2 and all("\n" not in r.getMessage() for r in refused)
    assert "Traceback" not in capfd.readouterr().err
