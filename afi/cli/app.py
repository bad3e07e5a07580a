"""The CLI's shared edge: global options, the error boundary, and output helpers.

Every command is wrapped by `command`, which turns AfiError / RegistryError into one red line on
stderr and an exit code (1 failure, 2 bad usage); tracebacks only with `afi --debug`.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import click
import typer
from typer.core import TyperArgument
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from afi.errors import AfiError, UsageError
from registry.errors import RegistryError


def _console_width() -> int | None:
    """Rich wraps at 80 columns when output is piped; tables read better unwrapped in files."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 200


console = Console(width=_console_width())
err_console = Console(stderr=True, width=_console_width())

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# Choices Typer checks and lists in --help (afi.leaderboard.METRICS; tests keep them in step).
Metric = Literal["psnr", "ssim", "ms_ssim", "lineart", "lpips"]
MetricOption = Annotated[Metric, typer.Option(help="The metric ranked (lineart, lpips: lower is better).")]


@dataclass
class AppState:
    """Options given before the command (`afi --db URL --debug run list`)."""

    db: str | None = None
    debug: bool = False
    _engine: Any = None

    def engine(self) -> Any:
        """The registry engine, schema checked; an empty database is upgraded on first use."""
        if self._engine is None:
            from afi.db import open_registry

            self._engine = open_registry(self.db)
        return self._engine

    def reset(self, db: str | None, debug: bool) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self.db, self.debug, self._engine = db, debug, None


state = AppState()


def new_app(help_text: str) -> typer.Typer:
    """A Typer (sub-)app with AFI's settings: no rich tracebacks, `-h` as well as `--help`."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def quiet_third_parties() -> None:
    """Libraries' warnings and chatter (torch's, Optuna's) tell a user nothing they can act on:
    shown with --debug only, here and in the processes this one starts (workers, trainers)."""
    warnings.simplefilter("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"
    logging.getLogger("optuna").setLevel(logging.WARNING)


def closed_pipe() -> typer.Exit:
    """The reader went away (`afi leaderboard --csv | head -3`): stop quietly, with click's exit
    code for it (1). Python would still flush stdout at exit and print the same error, so
    stdout is pointed at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return typer.Exit(1)


def command(fn: F) -> F:
    """The one error boundary: domain errors become one line and an exit code, nothing more."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            raise closed_pipe() from None
        except AfiError as exc:
            if state.debug:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except RegistryError as exc:
            if state.debug:
                raise
            raise fail(str(exc), 1) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except OSError as exc:
            if state.debug:
                raise
            if exc.errno not in DISK_FULL:
                raise fail(internal_error(exc)) from None
            where = exc.filename or "a file"
            raise fail(
                f"no room to write {where} ({exc.strerror}): free disk space or raise the file-size "
                "limit, or write elsewhere (AFI_HOME, -o), then rerun"
            ) from None
        except Exception as exc:  # a bug: still one line, the traceback is behind --debug
            if state.debug:
                raise
            raise fail(internal_error(exc)) from None

    return wrapper  # type: ignore[return-value]


# A full disk, a full quota, a file past the size limit: expected conditions, not bugs.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def internal_error(exc: BaseException) -> str:
    return (
        f"internal error: {type(exc).__name__}: {exc} (rerun with `afi --debug ...` "
        "for the traceback and report it)"
    )


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, never wrapped or coloured."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    table = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(format_cell(v)) for v in row))
    console.print(table)


def print_fields(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """A two-column key/value table for `show` commands."""
    table = Table(title=title, show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        text = json.dumps(value) if isinstance(value, (dict, list)) else format_cell(value)
        table.add_row(key, Text(text))
    console.print(table)


def parse_tags(items: Sequence[str]) -> dict[str, str]:
    """`--tag k=v` options into a dict; a malformed one is bad usage."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad tag {item!r}: use --tag key=value")
        tags[key.strip()] = value.strip()
    return tags


# Typer labels values by Python type (`<str>`, `<list[str]>`); help reads better with the
# conventional names, arguments by their own name (SPEC) and choices listed.
METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _metavar(param: Any) -> str:
    described = param.type_descriptor
    if isinstance(param, TyperArgument):
        return (param.name or "value").upper()
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices) + "]"
    if described.is_path:
        return "PATH"
    bare = param.bare_type().removeprefix("list[").removesuffix("]")
    return METAVARS.get(bare, bare.upper())


def conventional_metavars(command: click.Command) -> click.Command:
    """Give every parameter of `command` and its subcommands a conventional metavar, in place."""
    for param in command.params:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param.metavar is None and not flag:
            param.metavar = _metavar(param)
    for sub in getattr(command, "commands", {}).values():
        conventional_metavars(sub)
    return command
