"""Stick-figure animations of SMPL-22 joint sequences: gif / mp4 clips, grids of clips, png frames."""

from emomotion.render.animate import render_animation, render_frame, render_grid

__all__ = ["render_animation", "render_frame", "render_grid"]
