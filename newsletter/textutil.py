"""Small text helpers shared by feed normalising and rendering (no heavy imports)."""

from __future__ import annotations


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` at a word boundary to at most ``limit`` characters, adding an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"
