"""Plan and launch: pick a recipe, set deadline and budget, see the planner's table, launch.

Planning and launching run in thread workers through the app's :class:`~tui._actions.Actions`
seam. Any :class:`~scheduler.errors.SkybatchError` (a bad recipe, no cloud enabled, no plan
within the budget) is shown on one line under the form; the screen never crashes on it.
"""

from __future__ import annotations

import glob
import os
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from scheduler.errors import SkybatchError
from tui import _format as fmt
from tui._actions import Launched, LaunchRequest, PlanResult
from tui.screens.confirm import ConfirmDialog
from tui.widgets._keyed_table import VimTable

__all__ = ["PlanScreen", "option_cells"]

BACKENDS = [("local (this machine)", "local"), ("skypilot (cloud)", "skypilot")]


def option_cells(option: dict[str, Any], *, chosen: bool) -> tuple[str, ...]:
    """One planner option as table cells (``plan --json`` option shape)."""
    offerings = option.get("offerings") or [{}]
    first = offerings[0] if offerings else {}
    where = "/".join(str(first[k]) for k in ("cloud", "region") if first.get(k)) or "–"
    p = option.get("p_on_time")
    return (
        "★" if chosen else "",
        f"{option.get('accelerator', '?')}×{option.get('accelerators_per_worker', 1)}",
        "spot" if option.get("spot") else "on-demand",
        str(option.get("workers", "?")),
        fmt.duration(float(option["hours"]) * 3600) if option.get("hours") is not None else "–",
        fmt.money(option.get("cost_usd")),
        "–" if p is None else f"{float(p) * 100:.0f}%",
        where,
        str(option.get("throughput_source", "")),
    )


class PlanScreen(Screen[None]):
    """The form, the planner's options and the launch button."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+l", "launch", "Launch"),
    ]

    def __init__(self, *, recipe: str = "", store: str = "./runs") -> None:
        super().__init__()
        self.recipe = recipe
        self.store = store
        self.plan: PlanResult | None = None
        self.planned_for: tuple[str, str | None, float | None] | None = None
        """The form (recipe, deadline, budget) that :attr:`plan` answers."""
        self.busy = False
        self.launched: str | None = None
        """The run id of the last launch (tests read it)."""
        self.plans = 0
        """Finished plan attempts, successful or not (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Vertical(id="plan-form"):
            with Horizontal(classes="field"):
                yield Label("recipe", classes="label")
                # The placeholder reads as an instruction, not a value that looks filled in.
                yield Input(
                    self.recipe, placeholder="type a recipe path (→ completes)", id="recipe"
                )
            with Horizontal(classes="field"):
                yield Label("deadline", classes="label")
                yield Input(placeholder="recipe's", id="deadline")
                yield Label("budget $", classes="label")
                yield Input(placeholder="recipe's", id="budget")
            with Horizontal(classes="field"):
                yield Label("backend", classes="label")
                yield Select(BACKENDS, value="local", allow_blank=False, id="backend")
                yield Label("workers", classes="label")
                yield Input("1", id="workers")
            with Horizontal(classes="field"):
                yield Button("Plan", id="plan", variant="primary")
                yield Button("Launch", id="launch", variant="success")
        yield Static("", id="plan-line")
        yield VimTable(id="options", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "plan & launch (empty deadline/budget: the recipe's)"
        table = self.query_one("#options", DataTable)
        table.add_columns(
            "", "accelerator", "spot", "workers", "hours", "cost", "P(on time)", "where", "source"
        )
        self.query_one("#recipe", Input).focus()
        self.find_recipes()

    @work(thread=True, group="recipes")
    def find_recipes(self) -> None:
        """Offer the recipe files under ./recipes as completions (file I/O: a thread)."""
        found = sorted(glob.glob(os.path.join("recipes", "**", "*.y*ml"), recursive=True))
        if found:
            self.app.call_from_thread(self._set_suggester, found)

    def _set_suggester(self, found: list[str]) -> None:
        self.query_one("#recipe", Input).suggester = SuggestFromList(found)

    # -- reading the form
    def _form(self) -> tuple[str, str | None, float | None, str, int | None]:
        recipe = self.query_one("#recipe", Input).value.strip()
        if not recipe:
            raise SkybatchError("give a recipe file, e.g. recipes/embed-minilm.yaml")
        deadline = self.query_one("#deadline", Input).value.strip() or None
        budget_text = self.query_one("#budget", Input).value.strip().lstrip("$")
        try:
            budget = float(budget_text) if budget_text else None
        except ValueError:
            raise SkybatchError(f"budget {budget_text!r} is not a number of dollars") from None
        backend = str(self.query_one("#backend", Select).value)
        workers_text = self.query_one("#workers", Input).value.strip()
        try:
            workers = int(workers_text) if workers_text else None
        except ValueError:
            raise SkybatchError(f"workers {workers_text!r} is not a whole number") from None
        return recipe, deadline, budget, backend, workers

    def _say(self, message: str, *, error: bool = False) -> None:
        line = message.splitlines()[0] if message else ""
        self.query_one("#plan-line", Static).update(f"✘ {line}" if error else line)

    # -- plan
    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_plan()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "plan":
            self.action_plan()
        elif event.button.id == "launch":
            self.action_launch()

    def action_plan(self) -> None:
        """Ask the planner for options."""
        try:
            recipe, deadline, budget, _, _ = self._form()
        except SkybatchError as e:
            self._say(str(e), error=True)
            self.plans += 1
            return
        self._say(f"planning {recipe}…")
        self._plan(recipe, deadline, budget)

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def _plan(self, recipe: str, deadline: str | None, budget: float | None) -> None:
        try:
            result = self.app.actions.plan(recipe, deadline=deadline, budget_usd=budget)  # type: ignore[attr-defined]
        except SkybatchError as e:
            self.app.call_from_thread(self._plan_failed, str(e))
            return
        except Exception as e:  # a bug in a provider must not take the TUI down
            self.app.call_from_thread(self._plan_failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._show_plan, result, (recipe, deadline, budget))

    def _plan_failed(self, message: str) -> None:
        self._say(message, error=True)
        self.plans += 1

    def _show_plan(
        self, result: PlanResult, planned_for: tuple[str, str | None, float | None]
    ) -> None:
        self.plan, self.planned_for = result, planned_for
        table = self.query_one("#options", DataTable)
        table.clear()
        for i, option in enumerate(result.options):
            table.add_row(*option_cells(option, chosen=i == result.chosen), key=str(i))
        if result.chosen is not None and result.options:
            table.move_cursor(row=result.chosen, animate=False)
            self._say(f"{len(result.options)} options · ★ = the planner's choice · enter launches")
        else:
            self._say(f"no option meets the deadline and budget: {result.reason or 'see plan'}")
        table.focus()
        self.plans += 1

    # -- launch
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_launch()

    def _chosen_option(self) -> tuple[int | None, dict[str, Any] | None]:
        if self.plan is None or not self.plan.options:
            return None, None
        table = self.query_one("#options", DataTable)
        index = table.cursor_row if table.row_count else self.plan.chosen
        return (index, self.plan.options[index]) if index is not None else (None, None)

    def action_launch(self) -> None:
        """Confirm, then launch the recipe on the chosen option (or locally)."""
        if self.busy:
            return
        try:
            recipe, deadline, budget, backend, workers = self._form()
        except SkybatchError as e:
            self._say(str(e), error=True)
            return
        index, option = self._chosen_option()
        if backend == "skypilot" and option is None:
            self._say("plan first, then choose an option to launch on SkyPilot", error=True)
            return
        if backend == "skypilot" and self.planned_for != (recipe, deadline, budget):
            # The launcher plans again from the form and takes the option by its index.
            self._say(
                "the recipe, deadline or budget changed since the plan: plan again", error=True
            )
            return
        request = LaunchRequest(
            recipe_path=recipe,
            backend=backend,
            store=self.store,
            deadline=deadline,
            budget_usd=budget,
            option=option if backend == "skypilot" else None,
            option_index=index if backend == "skypilot" else None,
            workers=workers,
        )
        if request.option is not None:
            cells = option_cells(request.option, chosen=False)
            what = f"{cells[1]} {cells[2]} × {request.option.get('workers')} workers"
        else:
            what = f"{workers or 1} local worker(s)"

        def answered(yes: bool | None) -> None:
            if yes:
                self._launch(request)

        self.app.push_screen(
            ConfirmDialog(f"Launch {recipe} on {what}?", yes="Launch", no="Back"), answered
        )

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch(self, request: LaunchRequest) -> None:
        self.busy = True
        self.app.call_from_thread(self._say, f"launching {request.recipe_path}…")
        try:
            launched = self.app.actions.launch(request)  # type: ignore[attr-defined]
        except SkybatchError as e:
            self.app.call_from_thread(self._say, str(e), error=True)
            return
        except Exception as e:  # a bug in a provider must not take the TUI down
            self.app.call_from_thread(self._say, f"{type(e).__name__}: {e}", error=True)
            return
        finally:
            self.busy = False
        self.launched = launched.run_id
        self.app.call_from_thread(self._launched, launched)

    def _launched(self, launched: Launched) -> None:
        if launched.store.rstrip("/") != self.store.rstrip("/"):
            # The run lives in another store (a cloud run's bucket): say where to watch it.
            self._say(
                f"launched {launched.run_id} in {launched.store}; watch it with "
                f"`skybatch tui --store {launched.store}`"
            )
            return
        self.app.pop_screen()
        self.app.open_run(launched.run_id)  # type: ignore[attr-defined]
        self.app.notify(f"launched {launched.run_id}")
