"""Import of the official T2M evaluator: official key layout, GloVe pickles, its own stats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.errors import CheckpointError
from emomotion.importers.t2m_evaluator import import_t2m_evaluator, read_glove
from emomotion.models.evaluator import POS_TAGS, Evaluator, preset
from tests.conftest import shared_path

WORDS = ["unk", "sos", "eos", "a", "person", "walk", "forward", "sadly", "jump", "wave", "hand"]


def _official_tar(tmp: Path) -> tuple[Path, Evaluator]:
    """finest.tar as the official trainer saves it: three state_dicts plus optimiser state and counters."""
    torch.manual_seed(0)
    ref = Evaluator(preset("tiny", text_frontend="glove", word_dim=300, vocabulary=tuple(WORDS)))
    parts = {p: getattr(ref, p).state_dict() for p in ("movement_encoder", "text_encoder", "motion_encoder")}
    path = tmp / "t2m" / "text_mot_match" / "model" / "finest.tar"
    path.parent.mkdir(parents=True)
    torch.save({**parts, "opt_text_encoder": {"state": {}}, "epoch": 41, "iter": 1234}, path)
    return path, ref


def _glove(tmp: Path, vectors: np.ndarray) -> Path:
    folder = tmp / "glove"
    folder.mkdir()
    order = list(reversed(WORDS))  # rows in another order than the word list: the index maps them
    np.save(folder / "our_vab_data.npy", vectors[[WORDS.index(w) for w in order]])
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(WORDS))
    (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(order)}))
    return folder


def test_official_layout_imports_and_embeds_identically(tmp_path):
    _, ref = _official_tar(tmp_path)
    vectors = np.random.default_rng(0).standard_normal((len(WORDS), 300)).astype(np.float32)
    glove = _glove(tmp_path, vectors)
    mean = np.random.default_rng(1).standard_normal(263)
    std = np.random.default_rng(2).uniform(0.5, 2.0, 263)
    out = import_t2m_evaluator(tmp_path, glove, tmp_path / "ev.safetensors", mean=mean, std=std)
    ckpt = load_checkpoint(out)
    assert ckpt.kind == "evaluator" and ckpt.config["text_frontend"] == "glove"
    assert ckpt.config["motion_hidden"] == 128 and ckpt.config["vocabulary"] == WORDS
    np.testing.assert_allclose(ckpt.mean.numpy(), mean.astype(np.float32))
    model = ckpt.build_model()
    np.testing.assert_array_equal(model.word_vectors.numpy(), vectors)

    # motion: the imported model == the reference applied to (x - mean) / std without foot contacts
    ref.eval()
    x = np.random.default_rng(3).standard_normal((2, 48, 263)).astype(np.float32)
    got = model.embed_motion(x * std + mean, [48, 40])
    with torch.no_grad():
        norm = torch.from_numpy(x)
        norm[1, 40:] = 0
        want = ref.motion_encoder(ref.movement_encoder(norm[..., :-4]), torch.tensor([12, 10]))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

    # text: sos + words (VIP class overrides the tag, unknown -> unk/OTHER) + eos
    tokens = [["a/DET", "person/NOUN", "walk/VERB", "sadly/ADV", "zzz/NOUN"], ["jump/VERB"]]
    got = model.embed_text(tokens=tokens)
    rows = [["sos", "a", "person", "walk", "sadly", "unk", "eos"], ["sos", "jump", "eos"]]
    tags = [["OTHER", "DET", "NOUN", "Act_VIP", "Desc_VIP", "OTHER", "OTHER"], ["OTHER", "Act_VIP", "OTHER"]]
    words = torch.zeros(2, 7, 300)
    pos = torch.zeros(2, 7, len(POS_TAGS))
    for i, (r, t) in enumerate(zip(rows, tags, strict=True)):
        for j, (w, p) in enumerate(zip(r, t, strict=True)):
            words[i, j] = torch.from_numpy(vectors[WORDS.index(w)])
            pos[i, j, POS_TAGS[p]] = 1
    with torch.no_grad():
        want = ref.text_encoder(words, pos, torch.tensor([7, 3]))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert model.embed_text(["a person walks forward"]).shape == (1, 128)  # tagged on the fly


def test_glove_pickles_with_classes_are_refused(tmp_path):
    folder = _glove(tmp_path, np.zeros((len(WORDS), 300), np.float32))
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps([Path("x")]))
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_glove(folder)


def test_not_an_evaluator_checkpoint_is_a_clear_error(tmp_path):
    torch.save({"model": {}}, tmp_path / "finest.tar")
    glove = _glove(tmp_path, np.zeros((len(WORDS), 300), np.float32))
    with pytest.raises(CheckpointError, match="no movement_encoder"):
        import_t2m_evaluator(
            tmp_path, glove, tmp_path / "x.safetensors", mean=np.zeros(263), std=np.ones(263)
        )
    with pytest.raises(CheckpointError, match=r"no finest\.tar"):
        import_t2m_evaluator(
            tmp_path / "nowhere", glove, tmp_path / "x.safetensors", mean=np.zeros(263), std=np.ones(263)
        )


def test_shared_t2m_evaluator_stats_load_as_the_stats(tmp_path):
    mean_path = shared_path("humanml3d-sample", "t2m_evaluator_mean.npy")
    std_path = shared_path("humanml3d-sample", "t2m_evaluator_std.npy")
    tar, _ = _official_tar(tmp_path)
    glove = _glove(tmp_path, np.zeros((len(WORDS), 300), np.float32))
    ckpt = load_checkpoint(
        import_t2m_evaluator(tar, glove, tmp_path / "ev.safetensors", mean=mean_path, std=std_path)
    )
    np.testing.assert_allclose(ckpt.mean.numpy(), np.load(mean_path).astype(np.float32))
    np.testing.assert_allclose(ckpt.build_model().std.numpy(), np.load(std_path).astype(np.float32))
    assert not np.allclose(ckpt.mean.numpy(), np.load(shared_path("humanml3d-sample", "Mean.npy")))
