"""The help screen (``?``): every key and what it does."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

__all__ = ["HELP_TEXT", "HelpScreen"]

HELP_TEXT = """\
# skybatch tui

| key | where | does |
|---|---|---|
| `j` / `k`, arrows | tables | move the cursor |
| `enter` | runs | open the run's detail |
| `/` | runs | filter runs (id, recipe, backend, state); `esc` clears |
| `n` | runs | plan and launch a new run |
| `c` | runs, detail | cancel the run (asks first) |
| `u` | runs, detail | resume the run (start workers again) |
| `o` | runs, detail | open results: SQL over view `results` |
| `r` | runs, detail | refresh now |
| `p` | anywhere | pause / resume automatic refresh |
| `+` / `-` | anywhere | refresh less / more often |
| `ctrl+p` | anywhere | command palette |
| `esc` | screens | go back |
| `?` | anywhere | this help |
| `q` | anywhere | quit (runs keep going) |

State glyphs: ○ pending · ▶ running · ⏸ stopped · ■ cancelled · ✔ done · ✘ failed.
Shard map: `·` pending · `▒` claimed · `█` done · `✘` failed (`░▒▓` = part of a cell done).
ETA column: `✔` finishes before the deadline, `⚠` would miss it.
"""


class HelpScreen(ModalScreen[None]):
    """Key reference; any of esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP_TEXT)

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
