"""A DataTable whose rows are keyed by id and updated by diff, with vi-style keys.

A live monitor must not rebuild its table on every refresh: that resets the cursor and
the scroll position. :meth:`KeyedTable.sync` adds new rows, removes gone ones and touches
only the cells whose text changed, then puts the cursor back on the row it was on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

__all__ = ["Cell", "KeyedTable", "VimTable"]

Cell = str | Text


class VimTable(DataTable[Cell]):
    """A DataTable where ``j``/``k`` move the cursor too."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class KeyedTable(VimTable):
    """A row-cursor DataTable synced from ``{row_key: cells}``."""

    #: (column key, label) pairs; subclasses set it.
    COLUMNS: Sequence[tuple[str, str]] = ()

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self.syncs = 0
        """How many times :meth:`sync` ran (tests wait on it)."""

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def sync(self, rows: Mapping[str, Sequence[Cell]]) -> None:
        """Make the table show ``rows`` (in their order for new rows), changing only diffs."""
        keep = self.current_key
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
        kept = list(self._cells)
        if list(rows)[: len(kept)] != kept:
            # The order changed (a new run sorts first): rebuild, the cursor follows its key.
            self.clear()
            self._cells = {}
        columns = [key for key, _ in self.COLUMNS]
        for key, cells in rows.items():
            new = tuple(cells)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*new, key=key)
            elif old != new:
                for column, before, after in zip(columns, old, new, strict=True):
                    if before != after:
                        # A longer value ("cancelled" after "running") widens its column.
                        self.update_cell(key, column, after, update_width=True)
            self._cells[key] = new
        if keep is not None and keep in self._cells:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)
        self.syncs += 1
