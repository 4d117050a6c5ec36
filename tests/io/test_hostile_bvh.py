"""Hostile BVH input: the issue's hostile edits through the CLI and a dataset build, and a bounded fuzz
run in a sandboxed worker (address-space and time limits) that must see only typed errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from bench.fuzz_cases import MAX_MESSAGE_BYTES, Worker, hostile_edits, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomotion.cli import main
from tests.conftest import shared_path

GOOD = ("dataset-1_bow_sad_001.bvh", "dataset-1_dash_normal_001.bvh")


def _good(name: str = GOOD[0]) -> Path:
    return shared_path("bandai", "dataset-1", "data", name)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, data in hostile_edits(_good().read_bytes()).items():
        paths[name] = folder / f"{name}.bvh"
        paths[name].write_bytes(data)
    return paths


def test_each_hostile_edit_is_one_short_error_line_and_a_bom_converts(hostile, tmp_path, capsys):
    for name, path in hostile.items():
        rc = main(["convert", str(path), "--to", "joints", "--out", str(tmp_path / f"{name}.npy")])
        err = capsys.readouterr().err
        if name == "bom":
            assert rc == 0, err
            assert (tmp_path / "bom.npy").stat().st_size > 0
            continue
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert rc == 2 and len(lines) == 1 and len(lines[0].encode()) < MAX_MESSAGE_BYTES, (name, err[:500])
        assert str(path) in lines[0] and "line " in lines[0]


def test_a_folder_mixing_hostile_and_good_files_builds_every_good_clip(hostile, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for path in hostile.values():
        (src / path.name).write_bytes(path.read_bytes())
    for name in GOOD:
        (src / name).write_bytes(_good(name).read_bytes())
    args = ["data", "build", "bvh", "--input", str(src), "--ratios", "1,0,0"]
    rc = main([*args, "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    built = sorted(Path(c["source_file"]).name for c in manifest["clips"].values())
    assert built == sorted([*GOOD, "bom.bvh"])
    skipped = {Path(s["path"]).name: s for s in manifest["skipped"]}
    assert set(skipped) == {f"{n}.bvh" for n in hostile if n != "bom"}
    for entry in skipped.values():
        assert entry["line"] >= 1 and entry["reason"].startswith(f"line {entry['line']}: ")
    capsys.readouterr()
    rc = main([*args, "--out", str(tmp_path / "strict"), "--strict"])
    err = capsys.readouterr().err
    assert rc == 2 and "--strict: 6 input(s) skipped" in err
    assert (tmp_path / "strict" / "manifest.json").exists()  # the good clips are still built


@pytest.fixture(scope="module")
def worker():
    w = Worker(mem_mb=2048, timeout=10.0)
    yield w
    w.close()


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    names = ("dataset-1_dash_normal_001.bvh", "dataset-1_bow_sad_001.bvh", "dataset-1_run_happy_001.bvh")
    seeds = [_good(n).read_bytes() for n in names]
    return seeds + [shared_path("bvh-samples", "xsens_mvn_000001.bvh").read_bytes()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_fuzzed_files_through_the_pipeline_only_raise_typed_errors(
    worker, seeds, tmp_path_factory, choice, seed
):
    data, ops = mutate(seeds[choice], random.Random(seed))
    path = tmp_path_factory.getbasetemp() / "fuzz-case.bvh"
    path.write_bytes(data)
    record = worker.run(path)
    assert record["outcome"] in ("ok", "typed"), (ops, record)
    assert record["seconds"] < 10.0
