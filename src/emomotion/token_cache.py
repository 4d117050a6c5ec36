"""A cache of the motion tokens of a dataset split under one VQ-VAE, which is never stale.

The key hashes everything the tokens depend on: the VQ's config and every tensor of its state_dict
(weights and codebook), the normalisation statistics, and the bytes of every feature file of the
split (plus the clip ids). Change any of them and the key changes; a cache file is written
atomically, so a partly written one is never read. Tokens are of whole clips, encoded one clip at a
time (no padding effects).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from emomotion.data import layout
from emomotion.data.dataset import MotionDataset
from emomotion.errors import CheckpointError
from emomotion.io.atomic import atomic_path
from emomotion.models.vqvae import VQVAE
from emomotion.progress import progress_bar

log = logging.getLogger(__name__)


def vq_fingerprint(model: VQVAE) -> str:
    h = hashlib.sha256(json.dumps(asdict(model.cfg), sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def dataset_fingerprint(dataset: MotionDataset) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(dataset.mean, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(dataset.std, dtype=np.float32).tobytes())
    for clip_id in dataset.ids:
        h.update(clip_id.encode())
        with open(dataset.root / layout.FEATURES_DIR / f"{clip_id}.npy", "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def cache_key(model: VQVAE, dataset: MotionDataset) -> str:
    return hashlib.sha256((vq_fingerprint(model) + dataset_fingerprint(dataset)).encode()).hexdigest()[:32]


@torch.no_grad()
def encode_clips(
    model: VQVAE, dataset: MotionDataset, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """clip id -> tokens (T // 4,) (or (T // 4, Q)) of the whole normalised clip."""
    model = model.eval().to(device)
    out: dict[str, torch.Tensor] = {}
    with progress_bar("clips", transient=True) as progress:
        task = progress.add_task("encoding clips", total=len(dataset.ids))
        for clip_id in dataset.ids:
            data = np.load(dataset.root / layout.FEATURES_DIR / f"{clip_id}.npy")
            motion = (data.astype(np.float32) - dataset.mean) / dataset.std
            x = torch.from_numpy(np.ascontiguousarray(motion, dtype=np.float32))[None].to(
                device
            )  # (1, T, 263)
            out[clip_id] = model.encode(x)[0].cpu()
            progress.update(task, advance=1)
    return out


def encode_dataset(
    model: VQVAE,
    dataset: MotionDataset,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Tokens of every clip of ``dataset``, read from ``cache_dir`` when the same VQ and data were
    encoded before, else encoded and stored there."""
    if cache_dir is None:
        return encode_clips(model, dataset, device)
    cache_dir = Path(cache_dir)
    path = cache_dir / f"tokens-{cache_key(model, dataset)}.pt"
    if path.is_file():
        try:
            tokens = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for unreadable files
            raise CheckpointError(f"unreadable token cache: {exc}", path=path) from exc
        log.info("tokens of %d clips read from %s", len(tokens), path)
        return tokens
    tokens = encode_clips(model, dataset, device)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(tokens, tmp)
    log.info("tokens of %d clips cached in %s", len(tokens), path)
    return tokens
