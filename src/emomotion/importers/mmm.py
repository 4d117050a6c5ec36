"""Import official MMM checkpoints (exitudio/MMM) as one emomotion checkpoint of kind ``mmm``.

Reads the VQ-VAE file ``{'net': state_dict}`` (keys ``vqvae.encoder.model.*``, ``vqvae.decoder.model.*``,
``vqvae.quantizer.codebook``) and the transformer file ``{'trans': state_dict}`` (``trans_base.*``,
``trans_head.*``) with ``torch.load(weights_only=True)``; sizes are read off the weights.

The transformer file also holds a full VQ copy under ``trans_base.vqvae.vqvae.*``. The official code
loads that file after the VQ file, so the copy silently wins; here the VQ is taken from the VQ file,
deliberately, and the copy is only compared with it: if any tensor differs a warning is logged
(the transformer may then have been trained on another VQ's tokens). Keys with no counterpart are
dropped: the copy, the unused ``trans_base.pos_embedding`` table and the constant
``cross_att.N.attn.mask`` buffers.

The official quantizer saves only its codebook. Its EMA state is set as the official initialisation
does (``code_sum = codebook``, ``code_count = 1``, initialised): a later VQ fine-tune continues from
the trained codebook instead of re-initialising it from the first batch. Official checkpoints carry
no normalisation statistics or text encoder: pass the HumanML3D folder (``Mean.npy``/``Std.npy``) the
model was trained with, and the local CLIP ViT-B/32 (a Hugging Face folder or OpenAI's ``ViT-B-32.pt``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from emomotion.checkpoint import Checkpoint, save_checkpoint
from emomotion.configs import config_dict
from emomotion.data.layout import load_stats
from emomotion.errors import CheckpointError
from emomotion.importers.official import load_official
from emomotion.models.masked import MMM, MaskedTransformerConfig, MMMConfig
from emomotion.models.vqvae import VQVAEConfig
from emomotion.text import TextEncoderSpec

log = logging.getLogger(__name__)
OFFICIAL_HEADS = 16  # n_head_gpt; not recoverable from the weights
_DROPPED = re.compile(r"^trans_base\.(vqvae\.|pos_embedding\.)|\.attn\.mask$")


def _read(path: Path, key: str) -> dict[str, torch.Tensor]:
    raw = load_official(path)
    if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
        raise CheckpointError(f"expected a dict with a {key!r} state_dict", path=path)
    return {k.removeprefix("module."): v for k, v in raw[key].items()}


def _count(state: dict[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def vq_config_from(state: dict[str, torch.Tensor], path: Path) -> VQVAEConfig:
    """Sizes of an official VQ state_dict (keys without the ``vqvae.`` prefix)."""
    try:
        num_codes, code_dim = state["quantizer.codebook"].shape
        width, input_dim, _ = state["encoder.model.0.weight"].shape
    except KeyError as exc:
        raise CheckpointError(f"not an MMM VQ-VAE state_dict: no {exc.args[0]}", path=path) from exc
    down_t = _count(state, r"encoder\.model\.(\d+)\.0\.weight$")
    depth = _count(state, r"encoder\.model\.2\.1\.model\.(\d+)\.conv1\.weight$")
    return VQVAEConfig(
        num_codes=int(num_codes),
        code_dim=int(code_dim),
        width=int(width),
        depth=depth,
        down_t=down_t,
        input_dim=int(input_dim),
    )


def trans_config_from(state: dict[str, torch.Tensor], path: Path, num_heads: int) -> MaskedTransformerConfig:
    try:
        embed_dim, code_dim = state["trans_base.to_emb.weight"].shape
        text_dim = state["trans_base.cond_emb.weight"].shape[1]
        block_size = state["trans_base.pos_embed.embed"].shape[0]
        num_codes = state["trans_head.head.weight"].shape[0]
        ff = state["trans_head.blocks.0.mlp.0.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"not an MMM transformer state_dict: no {exc.args[0]}", path=path) from exc
    local = _count(state, r"trans_base\.cross_att\.(\d+)\.")
    base_blocks = _count(state, r"trans_base\.blocks\.(\d+)\.")
    head_blocks = _count(state, r"trans_head\.blocks\.(\d+)\.")
    if base_blocks != head_blocks - local:
        raise CheckpointError(
            f"{base_blocks} base blocks, {head_blocks} head blocks and {local} cross-attention blocks do not "
            "fit the MMM layout (base = head - cross)",
            path=path,
        )
    return MaskedTransformerConfig(
        num_codes=int(num_codes),
        code_dim=int(code_dim),
        embed_dim=int(embed_dim),
        text_dim=int(text_dim),
        block_size=int(block_size),
        num_layers=head_blocks,
        num_local_layers=local,
        num_heads=num_heads,
        ff_rate=int(ff) // int(embed_dim),
        text_drop_prob=0.0,  # the official training never drops the text (att_txt=None)
    )


def _ema_state(codebook: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "quantizer.code_sum": codebook.clone(),
        "quantizer.code_count": torch.ones(codebook.shape[0]),
        "quantizer.usage": torch.zeros(codebook.shape[0]),
        "quantizer.reset_count": torch.zeros((), dtype=torch.long),
        "quantizer.initted": torch.ones((), dtype=torch.bool),
    }


def import_mmm(
    vq_path: str | Path,
    trans_path: str | Path,
    out: str | Path,
    *,
    stats: str | Path,
    text_encoder_path: str | None = None,
    num_heads: int = OFFICIAL_HEADS,
) -> Path:
    """Official ``net_last.pth`` (VQ) + ``net_last.pth`` (transformer) -> one ``mmm`` checkpoint at ``out``."""
    vq_path, trans_path = Path(vq_path), Path(trans_path)
    net = _read(vq_path, "net")
    if not all(k.startswith("vqvae.") for k in net):
        raise CheckpointError("VQ keys must start with 'vqvae.' (official HumanVQVAE layout)", path=vq_path)
    vq_state = {k.removeprefix("vqvae."): v.float() for k, v in net.items()}
    vq_cfg = vq_config_from(vq_state, vq_path)
    trans = _read(trans_path, "trans")
    trans_cfg = trans_config_from(trans, trans_path, num_heads)

    copy = {
        k.removeprefix("trans_base.vqvae.vqvae."): v
        for k, v in trans.items()
        if k.startswith("trans_base.vqvae.")
    }
    differing = sorted(k for k, v in vq_state.items() if k in copy and not torch.equal(copy[k].float(), v))
    missing = sorted(set(vq_state) - set(copy))
    if copy and (differing or missing):
        log.warning(
            "%s: the transformer's VQ copy differs from %s in %d tensor(s) (e.g. %s); using the VQ file's "
            "weights: the transformer may have been trained on another VQ's tokens",
            trans_path,
            vq_path,
            len(differing) + len(missing),
            (differing + missing)[:3],
        )

    cfg = MMMConfig(vq_cfg, trans_cfg)
    state = {f"vq.{k}": v for k, v in vq_state.items()}
    state.update({f"vq.{k}": v for k, v in _ema_state(vq_state["quantizer.codebook"]).items()})
    state.update({f"trans.{k}": v.float() for k, v in trans.items() if not _DROPPED.search(k)})
    model = MMM(cfg)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"weights do not match the MMM layout: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}",
            path=trans_path,
        )
    mean, std = load_stats(Path(stats))
    ckpt = Checkpoint(
        kind="mmm",
        config={"vq": config_dict(cfg.vq), "trans": config_dict(cfg.trans)},
        model_state=model.state_dict(),
        mean=torch.as_tensor(mean, dtype=torch.float32),
        std=torch.as_tensor(std, dtype=torch.float32),
        text_encoder=TextEncoderSpec(
            "clip", str(Path(text_encoder_path).resolve()) if text_encoder_path else None, 77
        ),
        extra={
            "imported_from": {"vq": str(vq_path), "trans": str(trans_path)},
            "num_heads_assumed": num_heads,
        },
    )
    log.info(
        "imported MMM: VQ %d x %d (width %d), transformer %.1fM parameters",
        vq_cfg.num_codes,
        vq_cfg.code_dim,
        vq_cfg.width,
        sum(p.numel() for p in model.trans.parameters()) / 1e6,
    )
    return save_checkpoint(Path(out), ckpt)
