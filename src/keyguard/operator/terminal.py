"""Where the operator commands write and read: results to stdout, prompts, progress and errors to stderr.

rich does the terminal work: colour for the words a person scans for (FAILED, HELD, CONTAINED ...) and a
progress display, both only on a terminal: never in a pipe, with NO_COLOR set, or with --no-color. In
--format json, an error is one JSON document on stdout (scripts read one document whatever happens).
Only the CLI imports this module; the Lambda functions never do (rich is not in their package)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

STYLES = {
    "FAILED": "bold red",
    "release FAILED": "bold red",
    "INCOMPLETE": "bold red",
    "STILL ACTIVE": "bold red",
    "HELD": "bold yellow",
    "CONTAINED": "bold green",
    "contained": "green",
    "would-contain": "yellow",
    "RELEASED": "bold cyan",
    "released": "cyan",
}
_WORDS = re.compile(r"\b(" + "|".join(sorted((re.escape(w) for w in STYLES), key=len, reverse=True)) + r")\b")


class NoAnswer(Exception):
    """A question nobody can answer: stdin is closed or at its end."""


class Console:
    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        stdin: TextIO | None = None,
        *,
        json_mode: bool = False,
        color: bool | None = None,
        command: str | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        self.json_mode = json_mode
        self.command = command
        wanted = color if color is not None else True
        self.color = wanted and not os.environ.get("NO_COLOR") and _is_tty(self.out) and not json_mode
        self.progress_enabled = _is_tty(self.err) and not json_mode
        self._rich: Any = None

    # ---------------------------------------------------------------- output
    def print(self, text: str = "") -> None:
        if self.color:
            self._console().print(self._styled(text))
        else:
            print(text, file=self.out)

    def table(self, headers: Any, rows: Any, *, title: str | None = None) -> None:
        """A table: rich's on a terminal, the plain aligned text (keyguard.operator.render) in a pipe."""
        if not self.color:
            from keyguard.operator.render import table

            if title:
                print(title, file=self.out)
            print(table(headers, rows), file=self.out)
            return
        from rich import box
        from rich.table import Table

        grid = Table(*headers, title=title, title_justify="left", box=box.SIMPLE_HEAD, highlight=False)
        for row in rows:
            grid.add_row(*[self._styled("-" if v is None or v == "" else str(v)) for v in row])
        self._console().print(grid)

    def document(self, doc: Any) -> None:
        print(json.dumps(doc, indent=2, default=str), file=self.out)

    def warn(self, text: str) -> None:
        print(f"keyguard: {text}", file=self.err)

    def fail(self, text: str, code: int) -> int:
        """The one error a command ends with: a line on stderr, or one JSON document in --format json."""
        if self.json_mode:
            from keyguard.cli import error_document

            self.document(error_document(self.command, text, code))
        else:
            self.warn(text)
        return code

    def _console(self) -> Any:
        if self._rich is None:
            from rich.console import Console as Rich

            self._rich = Rich(file=self.out, highlight=False, markup=False, emoji=False, soft_wrap=True)
        return self._rich

    def _styled(self, text: str) -> Any:
        from rich.text import Text

        styled = Text(text)
        for match in _WORDS.finditer(text):
            styled.stylize(STYLES[match.group(1)], match.start(), match.end())
        return styled

    # ---------------------------------------------------------------- questions
    def ask(self, question: str, *, hint: str = "pass --yes to go ahead without a question") -> str:
        stream = self.stdin
        if stream is None or getattr(stream, "closed", False):
            raise NoAnswer(f"cannot ask ({question.strip()}): stdin is closed; {hint}")
        self.err.write(question)
        self.err.flush()
        try:
            line = stream.readline()
        except (OSError, ValueError) as e:  # a closed or unreadable descriptor
            raise NoAnswer(f"cannot read an answer ({e.__class__.__name__}): {hint}") from e
        if line == "":
            self.err.write("\n")
            raise NoAnswer(f"no answer: stdin is empty (e.g. </dev/null or a script); {hint}")
        return line.strip()

    def confirm(self, question: str) -> bool:
        return self.ask(f"{question} [y/N] ").lower() in ("y", "yes")

    # ---------------------------------------------------------------- progress
    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """A progress display on stderr when it is a terminal; otherwise nothing. Yields advance(n=1)."""
        if not self.progress_enabled:
            yield lambda n=1: None
            return
        from rich.console import Console as Rich
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=Rich(file=self.err), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
