"""Colouring of depth and images for logs, figures and videos."""

from bts.visualization.colormap import colorize_depth

__all__ = ["colorize_depth"]
