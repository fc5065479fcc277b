"""What a statement may not do, refused before it runs (DuckDB's own settings, core.sql.database, refuse
the same things again while it runs): statements that reach beyond the workspace's database or change
its safety settings, changes to the dataset and sample views, and files outside the allowed folders.

File names in the places DuckDB reads files from — `FROM 'data.jsonl'`, `JOIN 'x.csv'`, `COPY t FROM
'…'` and the first argument of read_csv / read_json / read_parquet / glob … — are checked here: a
relative name is looked up in WORKSPACE/files, the workspace, the current folder and the allowed
folders (the first that has it wins) and written into the statement as an absolute path, because DuckDB
itself reads no relative path once external access is off; a name outside the allowed folders, or a URL,
is refused."""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from sqlglot.tokens import Token, TokenType

from core.sql.database import FILES_DIR, allowed_dirs, quote_literal, source_views
from core.sql.errors import SqlError
from core.sql.statements import OPENING, matching, where_token, words

DOWNLOAD = "Results download from the page (CSV/Parquet) or print with `studio sql --csv` / `--json`."
REFUSED = {
    "ATTACH": ("ATTACH is not allowed: statements work in the workspace's own database only",
               "Read the other data as files instead: CREATE TABLE t AS SELECT * FROM 'WORKSPACE/files/data.parquet'."),
    "DETACH": ("DETACH is not allowed: the workspace's database is the only one", "Leave the statement out."),
    "INSTALL": ("extensions cannot be installed from a statement",
                "CSV, JSON and Parquet are read without extensions: read_csv, read_json, read_parquet."),
    "LOAD": ("extensions cannot be loaded from a statement",
             "CSV, JSON and Parquet are read without extensions: read_csv, read_json, read_parquet."),
    "FORCE": ("extensions cannot be installed from a statement",
              "CSV, JSON and Parquet are read without extensions: read_csv, read_json, read_parquet."),
    "SET": ("settings cannot be changed from a statement: they keep files outside the workspace out of reach",
            "To read another folder, allow it: studio sql --allow-dir DIR."),
    "RESET": ("settings cannot be changed from a statement: they keep files outside the workspace out of reach",
              "To read another folder, allow it: studio sql --allow-dir DIR."),
    "PRAGMA": ("PRAGMA statements are not allowed (they change settings)",
               "To see a table's columns, use DESCRIBE t or SELECT * FROM pragma_table_info('t')."),
    "EXPORT": ("EXPORT DATABASE is not allowed: statements write no files", DOWNLOAD),
    "IMPORT": ("IMPORT DATABASE is not allowed", "Read files into tables: CREATE TABLE t AS SELECT * FROM 'file.parquet'."),
    "USE": ("USE is not allowed: the workspace has one database", "Leave the statement out."),
    "BEGIN": ("transactions are not available: each statement is committed on its own", "Leave BEGIN/COMMIT out."),
    "START": ("transactions are not available: each statement is committed on its own", "Leave the statement out."),
    "COMMIT": ("transactions are not available: each statement is committed on its own", "Leave COMMIT out."),
    "ROLLBACK": ("transactions are not available: each statement is committed on its own", "Leave ROLLBACK out."),
    "ABORT": ("transactions are not available: each statement is committed on its own", "Leave ABORT out."),
    "END": ("transactions are not available: each statement is committed on its own", "Leave END out."),
    "CHECKPOINT": ("CHECKPOINT is not needed: the database is saved after every statement", "Leave it out."),
}
# Table functions whose first argument names files.
READERS = re.compile(r"^(read_\w+|parquet_\w+|glob|sniff_csv|iceberg_\w+|delta_scan)$", re.IGNORECASE)
NOT_TABLE_FROM = {"EXTRACT", "SUBSTRING", "TRIM", "OVERLAY", "DATE_PART"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_FILE_LIKE = re.compile(r"[/\\]|\.(csv|tsv|json|jsonl|ndjson|parquet|txt|gz|zst)$", re.IGNORECASE)


def _refuse_statement(tokens: list[Token]) -> None:
    w = words(tokens, 8)
    first = w[0] if w else ""
    if first in REFUSED:
        message, hint = REFUSED[first]
        raise SqlError(message, clause=first, hint=hint)
    if first == "CREATE" and "SECRET" in w[1:4]:
        raise SqlError("secrets cannot be created: statements read local files only", clause="CREATE SECRET",
                       hint="Copy the data into the workspace (WORKSPACE/files) and read it from there.")
    if first == "COPY":
        depth = 0
        for t in tokens[1:]:
            depth += t.token_type in OPENING
            depth -= t.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET)
            if depth == 0 and t.text.upper() == "TO":
                raise SqlError("COPY … TO is not allowed: statements write no files", clause="COPY … TO",
                               hint=f"Keep the rows in a table (CREATE TABLE t AS SELECT …). {DOWNLOAD}")


def target(tokens: list[Token]) -> tuple[str, str] | None:
    """(what, name) of the table or view a DDL/DML statement changes."""
    w = words(tokens, 8)
    i = None
    if w[:1] == ["DROP"] and w[1:2] and w[1] in ("TABLE", "VIEW"):
        i = 2
    elif w[:1] == ["CREATE"]:
        j = 3 if w[1:3] == ["OR", "REPLACE"] else 1
        j += w[j:j + 1] in (["TEMP"], ["TEMPORARY"])
        if w[j:j + 1] in (["TABLE"], ["VIEW"]):
            i = j + 1
    elif w[:2] in (["INSERT", "INTO"], ["DELETE", "FROM"]) or (w[:1] == ["ALTER"] and w[1:2] in (["TABLE"], ["VIEW"])):
        i = 2
    elif w[:1] in (["UPDATE"], ["TRUNCATE"]):
        i = 1
    if i is None:
        return None
    what = " ".join(w[:i])
    words_left = [t.text.upper() for t in tokens[i:i + 3]]
    if words_left[:2] == ["IF", "EXISTS"]:
        i += 2
    elif words_left[:3] == ["IF", "NOT", "EXISTS"]:
        i += 3
    if i >= len(tokens):
        return None
    end = i
    while end + 2 < len(tokens) and tokens[end + 1].token_type == TokenType.DOT:
        end += 2
    return what, tokens[end].text


def _refuse_source_views(tokens: list[Token], workspace: Path) -> None:
    found = target(tokens)
    if not found:
        return
    what, name = found
    view = source_views(workspace).get(name) or source_views(workspace).get(name.lower())
    if view is None:
        return
    source = (f"the registered dataset `{view['dataset']}`" if view["kind"] == "dataset"
              else "the samples in the project's assets folder")
    todo = (f"Remove the dataset itself with `studio data delete {view['dataset']}` or the Datasets page."
            if view["kind"] == "dataset" else "Use another name for your own table.")
    raise SqlError(f"`{name}` is a read-only view of {source}; {what} cannot change it", clause=f"{what} {name}",
                   hint=todo if what.startswith("DROP") else "Make your own table: CREATE TABLE my_rows AS SELECT * FROM "
                                                               f"{name}; then change that one.")


def _path_tokens(tokens: list[Token]) -> list[Token]:
    """The string tokens that name files: after FROM/JOIN, and the first argument of a reader function."""
    out, calls = [], []  # calls: the function each open bracket belongs to
    for i, t in enumerate(tokens):
        if t.token_type in OPENING:
            calls.append(tokens[i - 1].text.upper() if i else "")
        elif t.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET) and calls:
            calls.pop()
        before = tokens[i - 1].token_type if i else None
        in_function = bool(calls) and calls[-1] in NOT_TABLE_FROM  # EXTRACT(YEAR FROM '2024-01-01')
        after = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if before in (TokenType.FROM, TokenType.JOIN) and not in_function and after != TokenType.DCOLON and (
                t.token_type == TokenType.STRING or (t.token_type == TokenType.IDENTIFIER and _FILE_LIKE.search(t.text))):
            out.append(t)
        elif READERS.match(t.text) and i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN:
            close, depth = matching(tokens, i + 1), 0
            for inner in tokens[i + 2:close]:
                depth += inner.token_type in OPENING
                depth -= inner.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET)
                if depth == 0 and inner.token_type == TokenType.COMMA:
                    break
                if inner.token_type == TokenType.STRING:
                    out.append(inner)
    return out


def _inside(path: str, dirs: list[Path]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real == d or d in real.parents for d in dirs)


def _exists(path: Path) -> bool:
    return bool(glob.glob(str(path), recursive=True)) if glob.has_magic(str(path)) else path.exists()


def resolve_file(name: str, token: Token, workspace: Path, dirs: list[Path]) -> str:
    """The absolute path a file name in a statement stands for, once it is known to be readable."""
    at = where_token(token)
    if _URL.match(name):
        raise SqlError(f"only local files can be read, not {name}", clause=f"'{name}' ({at})",
                       hint=f"Download it into {workspace / FILES_DIR} first, then read it from there.")
    path = Path(name).expanduser()
    if path.is_absolute():
        chosen = path
    else:
        roots = [workspace / FILES_DIR, workspace, Path.cwd(), *dirs[2:]]
        chosen = next((root / path for root in roots if _exists(root / path)), None)
        if chosen is None:
            raise SqlError(f"no file `{name}` in {workspace / FILES_DIR}, the workspace or the current folder",
                           clause=f"'{name}' ({at})",
                           hint=f"Copy it into {workspace / FILES_DIR}, or give its full path.")
    chosen = Path(os.path.normpath(chosen))
    probe = str(chosen).split("*")[0].split("?")[0].split("[")[0] or "/"
    if not _inside(probe, dirs):
        raise SqlError(f"files outside the workspace cannot be read: {chosen}", clause=f"'{name}' ({at})",
                       hint=f"Copy it into {workspace / FILES_DIR}, or allow its folder (studio sql --allow-dir "
                            f"{chosen.parent}).")
    return str(chosen)


def check_statement(text: str, tokens: list[Token], workspace: str | Path, allow_dirs=()) -> str:
    """Refuse what a statement may not do; returns its text with file names made absolute."""
    workspace = Path(workspace).resolve()
    _refuse_statement(tokens)
    _refuse_source_views(tokens, workspace)
    dirs = allowed_dirs(workspace, allow_dirs)
    out = text
    for token in sorted(_path_tokens(tokens), key=lambda t: t.start, reverse=True):
        path = resolve_file(token.text, token, workspace, dirs)
        out = out[:token.start] + quote_literal(path) + out[token.end + 1:]
    return out
