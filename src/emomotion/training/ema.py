"""Exponential moving average of a model's trainable parameters."""

from __future__ import annotations

import torch


class EMA:
    """Exponential moving average of the trainable parameters (float32); buffers are taken as they are.

    The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so that the average
    follows the first steps of a run instead of keeping the initial weights for thousands of steps (a
    short fine-tune at 0.995 would otherwise still hold half of the base weights after 150 steps)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().float().clone() for k, p in model.named_parameters() if p.requires_grad}

    def decay_at(self, updates: int) -> float:
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, updates: int) -> None:
        """Fold in ``model`` after ``updates`` earlier updates in this run."""
        decay = self.decay_at(updates)
        for k, p in model.named_parameters():
            if k in self.shadow:
                self.shadow[k].mul_(decay).add_(p.detach().float(), alpha=1 - decay)

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state_dict with the averaged parameters in place of the live ones."""
        return {k: self.shadow[k] if k in self.shadow else v.clone() for k, v in model.state_dict().items()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k in self.shadow:
            if k in state:
                self.shadow[k] = state[k].float().clone()
