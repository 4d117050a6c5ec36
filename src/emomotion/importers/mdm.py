"""Import an official MDM checkpoint (GuyTevet/motion-diffusion-model) as an emomotion checkpoint.

Reads ``model*.pt`` (a flat state_dict, or ``{'model', 'model_avg'}`` from EMA runs) with
``torch.load(weights_only=True)`` and its ``args.json`` (architecture, diffusion steps, schedule,
text encoder). CLIP weights (``clip_model.*``) are dropped: the text encoder stays outside the
model and is loaded from the local folder given. Official checkpoints carry no normalisation
statistics; MDM reads them from its HumanML3D folder, so pass that folder (``Mean.npy``/``Std.npy``).
"""

from __future__ import annotations

import json
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
from emomotion.models.mdm import MDMConfig
from emomotion.text import TextEncoderSpec

log = logging.getLogger(__name__)
OFFICIAL_HEADS = 4  # hard-coded in the official get_model_args
CLIP_CONTEXT = 20 + 2  # MDM keeps 20 prompt tokens for HumanML3D, between CLIP's start and end tokens


def read_official_state(path: Path, *, use_ema: bool = True) -> dict[str, torch.Tensor]:
    raw = load_official(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"expected a state_dict, found {type(raw).__name__}", path=path)
    if "model" in raw and isinstance(raw["model"], dict):
        key = "model_avg" if use_ema and isinstance(raw.get("model_avg"), dict) else "model"
        log.info("%s: using the %s weights", path, key)
        raw = raw[key]
    state = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    return {k: v for k, v in state.items() if not k.startswith("clip_model.") and not k.endswith(".pe")}


def mdm_config_from(args: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> MDMConfig:
    try:
        latent = state["input_process.poseEmbedding.weight"].shape[0]
        input_dim = state["input_process.poseEmbedding.weight"].shape[1]
        text_dim = state["embed_text.weight"].shape[1]
    except KeyError as exc:
        raise CheckpointError(f"not an MDM state_dict: {exc.args[0]} missing", path=path) from exc
    arch = args.get("arch", "trans_enc")
    stack = "seqTransEncoder" if arch == "trans_enc" else "seqTransDecoder"
    layer_ids = {int(m.group(1)) for k in state if (m := re.match(rf"{stack}\.layers\.(\d+)\.", k))}
    if not layer_ids:
        raise CheckpointError(f"no {stack} layers in the state_dict (arch {arch!r} in args.json?)", path=path)
    ff = state[f"{stack}.layers.0.linear1.weight"].shape[0]
    if args.get("latent_dim", latent) != latent:
        raise CheckpointError(f"args.json latent_dim {args['latent_dim']} != weights {latent}", path=path)
    return MDMConfig(
        latent_dim=latent,
        ff_size=ff,
        num_layers=max(layer_ids) + 1,
        num_heads=int(args.get("heads", OFFICIAL_HEADS)),
        dropout=0.1,
        arch=arch,
        input_dim=input_dim,
        text_dim=text_dim,
        cond_mask_prob=float(args.get("cond_mask_prob", 0.1)),
        max_len=int(args.get("pos_embed_max_len", 5000)),
        memory="tokens" if args.get("text_encoder_type", "clip") == "bert" else "sentence",
        emb_trans_dec=bool(args.get("emb_trans_dec", False)),
        mask_frames=bool(args.get("mask_frames", False)),  # the official default: padding is attended
    )


def import_mdm(
    model_path: str | Path,
    out: str | Path,
    *,
    stats: str | Path,
    args_path: str | Path | None = None,
    text_encoder_path: str | None = None,
    use_ema: bool = True,
) -> Path:
    model_path = Path(model_path)
    args_path = Path(args_path) if args_path else model_path.parent / "args.json"
    try:
        args = json.loads(args_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(
            "args.json not found beside the checkpoint (pass --args)", path=args_path
        ) from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"args.json is not valid JSON: {exc}", path=args_path) from exc
    state = read_official_state(model_path, use_ema=use_ema)
    cfg = mdm_config_from(args, state, model_path)
    if cfg.input_dim != 263:
        raise CheckpointError(
            f"only HumanML3D (263-dim) models are supported, this one has {cfg.input_dim}", path=model_path
        )
    mean, std = load_stats(Path(stats))
    encoder = "distilbert" if args.get("text_encoder_type", "clip") == "bert" else "clip"
    # stored absolute: the checkpoint is used from other directories
    encoder_path = str(Path(text_encoder_path).resolve()) if text_encoder_path else None
    spec = TextEncoderSpec(encoder, encoder_path, CLIP_CONTEXT if encoder == "clip" else 77)
    step = int(m.group(1)) if (m := re.search(r"(\d+)", model_path.stem)) else 0
    diffusion = {
        "steps": int(args.get("diffusion_steps", 1000)),
        "schedule": args.get("noise_schedule", "cosine"),
    }
    ckpt = Checkpoint(
        kind="mdm",
        config=config_dict(cfg),
        model_state=state,
        mean=torch.as_tensor(mean),
        std=torch.as_tensor(std),
        text_encoder=spec,
        step=step,
        extra={"diffusion": diffusion, "imported_from": str(model_path), "official_args": args},
    )
    ckpt.build_model(use_ema=False)  # fails here, with the reason, if the weights do not fit
    return save_checkpoint(out, ckpt)
