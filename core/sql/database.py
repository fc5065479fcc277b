"""The workspace's embedded DuckDB database, workspace/sql/studio.duckdb: opened for one statement and
closed right after, so a worker process and the page can both use it (DuckDB lets one process at a time
open a file for writing; a second one waits here a few seconds for the lock).

Every connection is made safe before a statement sees it, with DuckDB's own settings:
  allowed_directories     the workspace, the project's assets folder and the folders the caller allows
  enable_external_access  false: no other file, no URL, no extension download
  lock_configuration      true: no statement can change the two above (SET is also refused before running)
With these, DuckDB refuses any path outside the allowed folders, COPY … TO outside them and ATTACH of
another file; core.sql.safety refuses those statements before they run, with a clearer message.

The registered datasets (core.catalog) and the samples in assets/ are temporary views, made again on
every open from the catalog (never stored in the file): `<dataset>_train` / `<dataset>_eval` and
classification_train, classification_eval, summarization_train, summarization_eval."""
from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core import catalog
from core.sql.errors import SqlError

SQL_DIR = "sql"
DB_FILE = "studio.duckdb"
FILES_DIR = "files"  # where a user copies files to read them (WORKSPACE/files)
ASSETS = Path(__file__).resolve().parents[2] / "assets"
SAMPLES = ("classification_train", "classification_eval", "summarization_train", "summarization_eval")
LOCK_WAIT_S = 10.0
# One connection at a time in this process: a second connect to the same file would share the first
# one's locked configuration (DuckDB keeps one database instance per file and process).
_one_at_a_time = threading.Lock()


def database_path(workspace: str | Path) -> Path:
    return Path(workspace) / SQL_DIR / DB_FILE


def sql_name(text: str) -> str:
    """A dataset name as a table name: characters other than letters, digits and _ become _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def quote_literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def quote_name(text: str) -> str:
    return '"' + str(text).replace('"', '""') + '"'


def source_views(workspace: str | Path) -> dict[str, dict]:
    """The views every connection gets: {name: {"kind": "dataset" | "sample", "path", "rows"}}. A dataset's
    name wins over a sample's."""
    views = {}
    for name in SAMPLES:
        path = ASSETS / f"{name}.jsonl"
        if path.exists():
            views[name] = {"kind": "sample", "path": str(path), "rows": None}
    for name, entry in sorted(catalog.list_datasets(workspace).items()):
        for split in ("train", "eval"):
            path = entry.get(f"{split}_file")
            if path and Path(path).exists():
                views[f"{sql_name(name)}_{split}"] = {"kind": "dataset", "path": path, "dataset": name,
                                                      "rows": entry.get(f"{split}_rows")}
    return views


def allowed_dirs(workspace: str | Path, allow_dirs=()) -> list[Path]:
    """The folders whose files statements may read: the workspace, the assets, and `allow_dirs`."""
    out = [Path(workspace).resolve(), ASSETS.resolve()]
    for d in allow_dirs or ():
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise SqlError(f"the folder to allow, {d}, does not exist", clause="--allow-dir",
                           hint="Name an existing folder whose files statements may read.")
        out.append(path)
    return out


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    deadline = time.time() + LOCK_WAIT_S
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.time() > deadline:
                raise SqlError(f"the SQL database is busy: {str(e).splitlines()[0]}", clause="database",
                               hint="Another statement or a job is writing to it; run this one again in a moment.") \
                    from None
            time.sleep(0.2)


def _secure(con: duckdb.DuckDBPyConnection, dirs: list[Path]) -> None:
    listed = ", ".join(quote_literal(str(d).rstrip("/") + "/") for d in dirs)  # a trailing / : no sibling prefix
    con.execute(f"SET allowed_directories = [{listed}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _create_views(con: duckdb.DuckDBPyConnection, workspace: Path) -> None:
    for name, view in source_views(workspace).items():
        columns = "input_text, output_text" if view["kind"] == "sample" else "*"
        try:
            con.execute(f"CREATE TEMP VIEW {quote_name(name)} AS SELECT {columns} FROM "
                        f"read_json({quote_literal(view['path'])}, format = 'newline_delimited')")
        except duckdb.Error:
            continue  # a damaged catalog file hides its view only, never the database


@contextmanager
def open_database(workspace: str | Path, allow_dirs=(), create: bool = True):
    """A safe connection to the workspace's database with the dataset and sample views; closed after.
    create=False (a listing): before the first statement made the file, an in-memory database with the
    same views, so that looking at the page writes nothing."""
    workspace = Path(workspace).resolve()
    dirs = allowed_dirs(workspace, allow_dirs)
    path = database_path(workspace)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _one_at_a_time:
        con = _connect(path) if create or path.exists() else duckdb.connect(":memory:")
        try:
            _secure(con, dirs)
            _create_views(con, workspace)
            yield con
        finally:
            con.close()


# ---------------------------------------------------------------- DuckDB's errors, said plainly

_PREFIX = re.compile(r"^[A-Za-z ]*Error:\s*")
_CARET = re.compile(r"^LINE (\d+): (.*)$")


def _position(lines: list[str], text: str | None) -> str | None:
    """"line L, column C" from DuckDB's `LINE n: …` excerpt and the caret under it."""
    for i, line in enumerate(lines[:-1]):
        m = _CARET.match(line)
        if m and "^" in lines[i + 1]:
            number, excerpt = int(m.group(1)), m.group(2)
            caret = lines[i + 1].index("^") - len(f"LINE {number}: ")
            column = caret + 1
            if excerpt.startswith("...") and text is not None:  # DuckDB cut the start of a long line
                source = text.split("\n")[number - 1] if number <= text.count("\n") + 1 else ""
                found = source.find(excerpt[3:].rstrip(". "))
                column = found + caret - 3 + 1 if found >= 0 else column
            return f"line {number}, column {max(1, column)}"
    return None


def duckdb_error(e: duckdb.Error, text: str | None, workspace: Path, clause: str | None = None,
                 con: duckdb.DuckDBPyConnection | None = None) -> SqlError:
    """A DuckDB error as a SqlError: its first line, where (from DuckDB's caret when `text` is what DuckDB
    ran), and what to do. `con`, when open, lists the tables for an unknown one."""
    lines = [x for x in str(e).splitlines()]
    message = _PREFIX.sub("", lines[0]).strip() if lines else type(e).__name__
    details = [x.strip() for x in lines[1:] if x.strip() and not _CARET.match(x) and set(x.strip()) != {"^"}]
    at = _position(lines, text)
    hint = " ".join(details) or None
    if isinstance(e, duckdb.PermissionException):
        path = re.search(r'"(.*?)"', message)
        shown = path.group(1) if path else "a file"
        return SqlError(f"files outside the workspace cannot be read: {shown}", clause=clause or at,
                        hint=f"Copy it into {workspace / FILES_DIR}, or allow its folder (studio sql --allow-dir DIR).")
    if isinstance(e, duckdb.ParserException):
        hint = "Check the SQL near that point (a missing comma, quote or bracket?)."
    elif isinstance(e, duckdb.CatalogException) and "does not exist" in message:
        names = table_names(con) if con is not None else sorted(source_views(workspace))
        hint = f"The tables are: {', '.join(names)}." if names else "There are no tables yet."
        meant = re.search(r'Did you mean "(.*?)"', " ".join(details))
        if meant and meant.group(1) in names:  # DuckDB also offers its own catalog's names (pg_sequences …)
            hint = f'Did you mean "{meant.group(1)}"? {hint}'
        elif "Did you mean" not in " ".join(details) and details:
            hint = " ".join(details) + " " + hint
    elif hint is None:
        hint = "Fix the statement and run it again."
    where = ", ".join(p for p in (clause, at) if p) or None
    return SqlError(message, clause=where, hint=hint)


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The names a statement can read: the user's tables and views, the datasets and the samples."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal UNION SELECT view_name FROM duckdb_views() "
        "WHERE NOT internal AND view_name NOT LIKE '\\_\\_ml\\_%' ESCAPE '\\' ORDER BY 1").fetchall()]


# ---------------------------------------------------------------- what is in the database

def list_tables(workspace: str | Path, count_rows: bool = True) -> list[dict]:
    """Tables and views: {"name", "kind": "table" | "view" | "dataset" | "sample", "columns", "rows"}.
    Rows of a user's view are not counted (it may read a large file each time): None."""
    views = source_views(workspace)
    with open_database(workspace, create=False) as con:
        found = con.execute(
            "SELECT table_name, 'table' FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
            "UNION ALL SELECT view_name, CASE WHEN temporary THEN 'temp' ELSE 'view' END FROM duckdb_views() "
            "WHERE NOT internal ORDER BY 1").fetchall()
        columns: dict[str, list[str]] = {}
        for table, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                                         "ORDER BY table_name, column_index").fetchall():
            columns.setdefault(table, []).append(column)
        out = []
        for name, kind in found:
            if kind == "temp" and name not in views:
                continue  # a statement's own temporary result
            kind = views[name]["kind"] if kind == "temp" else kind
            rows = views[name]["rows"] if name in views else None
            if count_rows and (kind == "table" or (kind == "sample" and rows is None)):
                rows = con.execute(f"SELECT count(*) FROM {quote_name(name)}").fetchone()[0]
            out.append({"name": name, "kind": kind, "columns": columns.get(name, []), "rows": rows})
    order = {"table": 0, "view": 1, "dataset": 2, "sample": 3}
    return sorted(out, key=lambda t: (order[t["kind"]], t["name"]))
