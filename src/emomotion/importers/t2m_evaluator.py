"""Import the official T2M evaluator (Guo et al. 2022, as used by MDM / MMM) as an emomotion checkpoint.

Reads ``t2m/text_mot_match/model/finest.tar`` (keys ``movement_encoder``, ``text_encoder``,
``motion_encoder``: state_dicts) with ``torch.load(weights_only=True)`` and the GloVe files
``our_vab_data.npy`` (V, 300), ``our_vab_words.pkl`` (a list of words) and ``our_vab_idx.pkl``
(a dict word -> row). The pickles are read by an unpickler that allows no class at all, so only
plain lists, dicts and strings load. The vocabulary and its vectors go into the checkpoint, so
``embed_text`` works from POS-tagged tokens alone. The evaluator's own normalisation statistics
(MDM's ``t2m_mean.npy`` / ``t2m_std.npy``) must be given: they are not in ``finest.tar``.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emomotion.checkpoint import Checkpoint, save_checkpoint
from emomotion.configs import config_dict
from emomotion.errors import CheckpointError
from emomotion.importers.official import load_official
from emomotion.models.evaluator import FOOT_CONTACT_DIMS, POS_TAGS, Evaluator, EvaluatorConfig
from emomotion.skeleton import FEATURE_DIM
from emomotion.text import TextEncoderSpec

log = logging.getLogger(__name__)

PARTS = ("movement_encoder", "text_encoder", "motion_encoder")
TAR_LOCATIONS = (
    "finest.tar",
    "model/finest.tar",
    "text_mot_match/model/finest.tar",
    "t2m/text_mot_match/model/finest.tar",
)
GLOVE_PREFIX = "our_vab"


class _PlainUnpickler(pickle.Unpickler):
    """Loads builtin containers and scalars only: any class reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only plain lists and dicts are allowed"
        )


def _read_plain_pickle(path: Path) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError as exc:
        raise CheckpointError("GloVe file not found", path=path) from exc
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise CheckpointError(f"not a plain pickle of a list or dict: {exc}", path=path) from exc


def read_glove(glove_dir: str | Path, prefix: str = GLOVE_PREFIX) -> tuple[list[str], np.ndarray]:
    """The vocabulary (word of each row) and the vectors ``(V, 300)`` of the official GloVe files."""
    glove_dir = Path(glove_dir)
    data_path = glove_dir / f"{prefix}_data.npy"
    try:
        vectors = np.load(data_path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise CheckpointError("GloVe vectors not found", path=data_path) from exc
    except ValueError as exc:
        raise CheckpointError(f"not a plain .npy array: {exc}", path=data_path) from exc
    if vectors.ndim != 2:
        raise CheckpointError(f"GloVe vectors must be (V, D), got {vectors.shape}", path=data_path)
    words = _read_plain_pickle(glove_dir / f"{prefix}_words.pkl")
    index = _read_plain_pickle(glove_dir / f"{prefix}_idx.pkl")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise CheckpointError("expected a list of words", path=glove_dir / f"{prefix}_words.pkl")
    if not isinstance(index, dict):
        raise CheckpointError("expected a dict word -> row", path=glove_dir / f"{prefix}_idx.pkl")
    rows: list[int] = []
    for word in words:
        row = index.get(word)
        if not isinstance(row, int) or not 0 <= row < vectors.shape[0]:
            raise CheckpointError(
                f"word {word!r} has row {row!r}, outside the {vectors.shape[0]} vectors",
                path=glove_dir / f"{prefix}_idx.pkl",
            )
        rows.append(row)
    return list(words), np.asarray(vectors[rows], dtype=np.float32)


def find_tar(folder_or_tar: str | Path) -> Path:
    """``finest.tar`` itself, or found under a checkpoints folder at its usual places."""
    path = Path(folder_or_tar)
    if path.is_file():
        return path
    for rel in TAR_LOCATIONS:
        if (path / rel).is_file():
            return path / rel
    raise CheckpointError(f"no finest.tar here (looked for {', '.join(TAR_LOCATIONS)})", path=path)


def read_official_evaluator(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The three state_dicts of ``finest.tar``."""
    raw = load_official(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"expected a dict, found {type(raw).__name__}", path=path)
    missing = [p for p in PARTS if not isinstance(raw.get(p), dict)]
    if missing:
        raise CheckpointError(f"not a T2M evaluator checkpoint: no {', '.join(missing)}", path=path)
    return {p: {k: v for k, v in raw[p].items() if isinstance(v, torch.Tensor)} for p in PARTS}


def evaluator_config_from(
    parts: dict[str, dict[str, torch.Tensor]], vocabulary: list[str], path: Path
) -> EvaluatorConfig:
    """Sizes read from the weight shapes (the official sizes for the released evaluator)."""
    try:
        conv0 = parts["movement_encoder"]["main.0.weight"]  # (hidden, 259, 4)
        conv1 = parts["movement_encoder"]["main.3.weight"]  # (latent, hidden, 4)
        text_in = parts["text_encoder"]["input_emb.weight"]  # (text_hidden, 300)
        pos = parts["text_encoder"]["pos_emb.weight"]  # (300, 15)
        motion_in = parts["motion_encoder"]["input_emb.weight"]  # (motion_hidden, latent)
        out = parts["motion_encoder"]["output_net.3.weight"]  # (D, motion_hidden)
    except KeyError as exc:
        raise CheckpointError(f"unexpected evaluator layout: {exc.args[0]} missing", path=path) from exc
    if pos.shape[1] != len(POS_TAGS):
        raise CheckpointError(f"POS one-hot width {pos.shape[1]} != {len(POS_TAGS)}", path=path)
    return EvaluatorConfig(
        text_frontend="glove",
        word_dim=int(text_in.shape[1]),
        movement_hidden=int(conv0.shape[0]),
        movement_latent=int(conv1.shape[0]),
        motion_hidden=int(motion_in.shape[0]),
        text_hidden=int(text_in.shape[0]),
        embed_dim=int(out.shape[0]),
        input_dim=int(conv0.shape[1]) + FOOT_CONTACT_DIMS,
        vocabulary=tuple(vocabulary),
    )


def _stats(value: str | Path | np.ndarray, name: str) -> np.ndarray:
    arr = np.load(value, allow_pickle=False) if isinstance(value, str | Path) else np.asarray(value)
    if arr.shape != (FEATURE_DIM,):
        raise CheckpointError(
            f"{name} must have shape ({FEATURE_DIM},), got {arr.shape}",
            path=value if isinstance(value, str | Path) else None,
        )
    return arr.astype(np.float32)


def import_t2m_evaluator(
    folder_or_tar: str | Path,
    glove_dir: str | Path,
    out: str | Path,
    *,
    mean: str | Path | np.ndarray,
    std: str | Path | np.ndarray,
) -> Path:
    """Convert the official evaluator (+ GloVe + its Mean/Std) into one checkpoint of kind ``evaluator``."""
    tar = find_tar(folder_or_tar)
    parts = read_official_evaluator(tar)
    vocabulary, vectors = read_glove(glove_dir)
    cfg = evaluator_config_from(parts, vocabulary, tar)
    if vectors.shape[1] != cfg.word_dim:
        raise CheckpointError(
            f"GloVe vectors are {vectors.shape[1]}-d, the text encoder expects {cfg.word_dim}",
            path=Path(glove_dir),
        )
    model = Evaluator(cfg)
    state = {f"{part}.{k}": v for part, sd in parts.items() for k, v in sd.items()}
    state["word_vectors"] = torch.from_numpy(vectors)
    model.set_stats(_stats(mean, "mean"), _stats(std, "std"))
    state["mean"], state["std"] = model.mean.clone(), model.std.clone()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"weights do not match the evaluator: missing {missing[:5]}, unexpected {unexpected[:5]}",
            path=tar,
        )
    ckpt = Checkpoint(
        "evaluator",
        config_dict(cfg),
        model.state_dict(),
        model.mean.clone(),
        model.std.clone(),
        TextEncoderSpec("glove", max_length=cfg.max_text_tokens + 2),  # the vocabulary is in the weights
        0,
        extra={"imported_from": str(tar), "glove": str(glove_dir)},
    )
    path = save_checkpoint(out, ckpt)
    log.info("imported the T2M evaluator %s (%d words) -> %s", tar, len(vocabulary), path)
    return path
