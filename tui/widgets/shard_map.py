"""The shard map: every shard of a run as one cell, or many shards per cell at scale.

Each cell is a glyph *and* a colour, so the state never rests on colour alone:
``·`` pending, ``▒`` claimed, ``█`` done, ``✘`` failed. When the run has more shards than
the widget has cells (thousands of shards), each cell stands for a bucket of consecutive
shards: failed wins over claimed, and otherwise the shade (``·░▒▓█``) says how much of the
bucket is done. Rendering is O(shards) per refresh and the height is capped.
"""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from scheduler.store import ShardState

__all__ = ["ShardMap"]

_GLYPH = {
    ShardState.PENDING: ("·", "dim"),
    ShardState.CLAIMED: ("▒", "bold yellow"),
    ShardState.DONE: ("█", "green"),
    ShardState.FAILED: ("✘", "bold red"),
}
_SHADES = "·░▒▓█"


class ShardMap(Widget):
    """A grid of shard states that scales to thousands of shards."""

    DEFAULT_CSS = """
    ShardMap { height: auto; max-height: 12; }
    """

    states: reactive[tuple[ShardState, ...]] = reactive((), layout=True)
    """The state of each shard, in manifest order."""

    max_lines: reactive[int] = reactive(8, layout=True)
    """The most grid lines to draw; beyond that, cells hold several shards."""

    def _grid(self, width: int) -> tuple[int, list[tuple[str, str]]]:
        """(shards per cell, cells) for a grid ``width`` cells wide."""
        n = len(self.states)
        width = max(1, width)
        per_cell = max(1, -(-n // (width * self.max_lines)))
        cells: list[tuple[str, str]] = []
        for i in range(0, n, per_cell):
            bucket = self.states[i : i + per_cell]
            if per_cell == 1:
                cells.append(_GLYPH[bucket[0]])
                continue
            counts = Counter(bucket)
            if counts[ShardState.FAILED]:
                cells.append(_GLYPH[ShardState.FAILED])
            elif counts[ShardState.CLAIMED]:
                cells.append(_GLYPH[ShardState.CLAIMED])
            else:
                shade = int(counts[ShardState.DONE] / len(bucket) * (len(_SHADES) - 1))
                cells.append((_SHADES[shade], "green" if shade else "dim"))
        return per_cell, cells

    def legend(self, per_cell: int) -> Text:
        """Counts of each state, and the scale when cells hold several shards."""
        counts = Counter(self.states)
        text = Text()
        for state in ShardState:
            glyph, style = _GLYPH[state]
            text.append(glyph, style)
            text.append(f" {state.value} {counts[state]:,}   ")
        if per_cell > 1:
            text.append(f"(1 cell = {per_cell} shards)", "italic")
        return text

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        _, cells = self._grid(width)
        return 1 + -(-len(cells) // max(1, width))

    def render(self) -> Text:
        width = max(1, self.size.width)
        per_cell, cells = self._grid(width)
        text = self.legend(per_cell)
        for i, (glyph, style) in enumerate(cells):
            if i % width == 0:
                text.append("\n")
            text.append(glyph, style)
        return text
