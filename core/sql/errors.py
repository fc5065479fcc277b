"""SqlError: the one exception a statement raises. It says what is wrong, where (the statement's number
in the script, the clause or option) and what to do next, and it is raised before anything changed."""
from __future__ import annotations


class SqlError(ValueError):
    """A statement that cannot run. `statement`: its 1-based number in the script (set by run_sql);
    `clause`: where in it (e.g. "OPTIONS max_iteration", "line 2, column 14"); `hint`: what to do."""

    def __init__(self, message: str, *, statement: int | None = None, clause: str | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message, self.statement, self.clause, self.hint = message, statement, clause, hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # survives pickling (Streamlit's cache, multiprocessing) with every part
        return _rebuild, (self.message, self.statement, self.clause, self.hint)

    def describe(self) -> str:
        """The whole error on one or two lines: where, what, and the hint."""
        where = ", ".join(p for p in (f"statement {self.statement}" if self.statement else "", self.clause or "") if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}\n  {self.hint}" if self.hint else text


def _rebuild(message, statement, clause, hint) -> SqlError:
    return SqlError(message, statement=statement, clause=clause, hint=hint)
