"""OpenAI's own CLIP checkpoint (``ViT-B-32.pt``, what MDM and MMM load through the ``clip`` package)
as a Hugging Face CLIP text tower, without the ``clip`` package and without downloads.

The file is a TorchScript archive (or a plain state_dict). Only the text tower is kept: its keys are
renamed to ``CLIPTextModelWithProjection``'s (``transformer.resblocks.N.attn.in_proj_*`` split into
q/k/v, ``mlp.c_fc``/``c_proj`` -> ``fc1``/``fc2``, ``ln_final``, ``text_projection`` transposed), the
architecture is read off the weights (heads = width / 64 as in OpenAI's code, QuickGELU), and the
tokenizer is built from OpenAI's BPE merges file ``bpe_simple_vocab_16e6.txt.gz``, looked for beside
the checkpoint and in an installed ``clip`` or ``open_clip`` package.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
import zipfile
from pathlib import Path

import torch

from emomotion.errors import ConfigError

log = logging.getLogger(__name__)

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)$")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def find_bpe(checkpoint: Path) -> Path:
    candidates = [checkpoint.parent / BPE_FILE]
    for package in ("clip", "open_clip"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            candidates += [Path(p) / BPE_FILE for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"CLIP's BPE vocabulary {BPE_FILE} not found beside the checkpoint or in an installed clip / "
        "open_clip package; put it next to the .pt file",
        path=checkpoint,
    )


def clip_tokenizer(bpe_path: Path, max_length: int):
    """A Hugging Face CLIP tokenizer with OpenAI's vocabulary: 256 byte symbols, the same with the word
    end marker, one symbol per merge, then the two special tokens (ids in OpenAI's order)."""
    from transformers import CLIPTokenizer

    try:
        with gzip.open(bpe_path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the BPE merges: {exc}", path=bpe_path) from exc
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1] if line.strip()]
    if any(len(m) != 2 for m in merges):
        raise ConfigError("BPE merges file has a line that is not one pair", path=bpe_path)
    symbols = list(_bytes_to_unicode().values())
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), SOT, EOT]
    return CLIPTokenizer(
        vocab={s: i for i, s in enumerate(vocab)},
        merges=[tuple(m) for m in merges],
        model_max_length=max_length,
    )


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        with zipfile.ZipFile(path) as zf:
            scripted = any(n.endswith("constants.pkl") for n in zf.namelist())
    except zipfile.BadZipFile as exc:
        raise ConfigError("not a CLIP checkpoint (not a zip archive)", path=path) from exc
    try:
        if scripted:  # OpenAI's released files are TorchScript archives
            return {
                k: v.float() for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()
            }
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot read the CLIP checkpoint: {exc}", path=path) from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ConfigError("CLIP checkpoint holds no state_dict", path=path)
    return {k.removeprefix("module."): v.float() for k, v in state.items() if isinstance(v, torch.Tensor)}


def convert_text_tower(state: dict[str, torch.Tensor], path: Path) -> tuple[object, dict[str, torch.Tensor]]:
    """OpenAI text-tower weights -> (CLIPTextConfig, CLIPTextModelWithProjection state_dict)."""
    from transformers import CLIPTextConfig

    needed = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection")
    missing = [k for k in needed if k not in state]
    if missing:
        raise ConfigError(f"not an OpenAI CLIP checkpoint: lacks {', '.join(missing)}", path=path)
    vocab, width = state["token_embedding.weight"].shape
    context = state["positional_embedding"].shape[0]
    layers = 1 + max(int(m.group(1)) for k in state if (m := _BLOCK.match(k)))
    ff = state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    config = CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=ff,
        num_hidden_layers=layers,
        num_attention_heads=width // 64 if width >= 64 else 1,
        max_position_embeddings=context,
        projection_dim=state["text_projection"].shape[1],
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    out = {
        "text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
        "text_model.final_layer_norm.weight": state["ln_final.weight"],
        "text_model.final_layer_norm.bias": state["ln_final.bias"],
        "text_projection.weight": state["text_projection"].t().contiguous(),
    }
    rename = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    rename["attn.out_proj"] = "self_attn.out_proj"
    for key, value in state.items():
        m = _BLOCK.match(key)
        if not m:
            continue
        prefix, rest = f"text_model.encoder.layers.{m.group(1)}.", m.group(2)
        if rest.startswith("attn.in_proj_"):
            kind = rest.removeprefix("attn.in_proj_")  # weight | bias
            for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0), strict=True):
                out[f"{prefix}self_attn.{name}_proj.{kind}"] = part.contiguous()
            continue
        module, _, param = rest.rpartition(".")
        if module not in rename:
            raise ConfigError(f"unexpected CLIP text weight {key}", path=path)
        out[f"{prefix}{rename[module]}.{param}"] = value
    return config, out


def load_openai_clip(path: Path, max_length: int):
    """(tokenizer, CLIPTextModelWithProjection in float32 eval mode) from OpenAI's ``.pt`` file."""
    from transformers import CLIPTextModelWithProjection

    state = _read_state(path)
    config, weights = convert_text_tower(state, path)
    model = CLIPTextModelWithProjection(config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ConfigError(
            f"CLIP conversion mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}", path=path
        )
    tokenizer = clip_tokenizer(find_bpe(path), min(max_length, config.max_position_embeddings))
    if len(tokenizer) != config.vocab_size:
        raise ConfigError(
            f"BPE vocabulary has {len(tokenizer)} tokens but the checkpoint embeds {config.vocab_size}",
            path=path,
        )
    log.info(
        "loaded OpenAI CLIP text tower from %s (%d layers, width %d)",
        path,
        config.num_hidden_layers,
        config.hidden_size,
    )
    return tokenizer, model.float().eval()
