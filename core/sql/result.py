"""SqlResult: what one statement gave back."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas


@dataclass
class SqlResult:
    statement: str                 # its text, as written
    kind: str                      # "rows" (a result table) | "done" (DDL, CREATE MODEL) | "job" (running in the background)
    frame: pandas.DataFrame | None = None
    message: str = ""              # one line: "Created model sections_tuned: tuning run … queued (100 steps; …)."
    job_dir: str | None = None     # the job folder (a sql job, or the tuning run of CREATE MODEL … AS SELECT)
    seconds: float = 0.0

    @property
    def rows(self) -> int | None:
        return None if self.frame is None else len(self.frame)


def rows_word(n: int) -> str:
    return f"{n} row{'s' * (n != 1)}"
