"""The conditioning every generator takes: a typed value, never a dict mutated in place."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from emomotion.text.base import TextEmbedding


@dataclass(frozen=True)
class MotionCondition:
    """Text (embedded once per batch), optional emotion labels and their intensities, and which
    samples drop each condition (classifier-free guidance: training dropout or the unconditional pass)."""

    text: TextEmbedding | None
    emotion: torch.Tensor | None = None  # (B,) long, -1 = unknown / no label
    intensity: torch.Tensor | None = None  # (B,) float in [0, 1] scaling the emotion embedding
    drop_text: torch.Tensor | None = None  # (B,) bool
    drop_emotion: torch.Tensor | None = None  # (B,) bool

    @property
    def batch_size(self) -> int:
        if self.text is not None:
            return int(self.text.sentence.shape[0])
        if self.emotion is not None:
            return int(self.emotion.shape[0])
        raise ValueError("an empty condition has no batch size")

    def dropped(self, *, text: bool = True, emotion: bool = True) -> MotionCondition:
        """The same condition with text and/or emotion dropped for every sample."""
        b = self.batch_size
        device = self.text.sentence.device if self.text is not None else self.emotion.device  # type: ignore[union-attr]
        full = torch.ones(b, dtype=torch.bool, device=device)
        return replace(
            self,
            drop_text=full if text else self.drop_text,
            drop_emotion=full if emotion else self.drop_emotion,
        )

    def select(self, rows: torch.Tensor) -> MotionCondition:
        """The condition of some samples only (``rows``: a (B,) bool mask or indices)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        text = self.text
        if text is not None:
            text = TextEmbedding(text.sentence[rows], text.tokens[rows], text.mask[rows])
        return MotionCondition(
            text, pick(self.emotion), pick(self.intensity), pick(self.drop_text), pick(self.drop_emotion)
        )

    def to(self, device: torch.device | str) -> MotionCondition:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return MotionCondition(
            self.text.to(device) if self.text is not None else None,
            move(self.emotion),
            move(self.intensity),
            move(self.drop_text),
            move(self.drop_emotion),
        )


def concat_conditions(a: MotionCondition, b: MotionCondition) -> MotionCondition:
    """Stack two conditions along the batch (for one batched CFG pass)."""

    def cat(
        x: torch.Tensor | None, y: torch.Tensor | None, fill: float | bool, n: tuple[int, int]
    ) -> torch.Tensor | None:
        if x is None and y is None:
            return None
        ref = x if x is not None else y
        assert ref is not None
        x = x if x is not None else torch.full((n[0],), fill, dtype=ref.dtype, device=ref.device)
        y = y if y is not None else torch.full((n[1],), fill, dtype=ref.dtype, device=ref.device)
        return torch.cat([x, y])

    n = (a.batch_size, b.batch_size)
    text = None
    if a.text is not None and b.text is not None:
        la, lb = a.text.tokens.shape[1], b.text.tokens.shape[1]
        length = max(la, lb)
        pad = lambda t, l: torch.nn.functional.pad(t, (0, 0, 0, length - l))  # noqa: E731
        text = TextEmbedding(
            torch.cat([a.text.sentence, b.text.sentence]),
            torch.cat([pad(a.text.tokens, la), pad(b.text.tokens, lb)]),
            torch.cat(
                [
                    torch.nn.functional.pad(a.text.mask, (0, length - la)),
                    torch.nn.functional.pad(b.text.mask, (0, length - lb)),
                ]
            ),
        )
    return MotionCondition(
        text,
        cat(a.emotion, b.emotion, -1, n),
        cat(a.intensity, b.intensity, 1.0, n),
        cat(a.drop_text, b.drop_text, False, n),
        cat(a.drop_emotion, b.drop_emotion, False, n),
    )
