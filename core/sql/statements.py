"""Reading a script. Statements are split with sqlglot's tokenizer in DuckDB's dialect, so a `;` inside a
string, a quoted name, a comment or a $$ string never splits one. Each statement is then one of:

  create_model  CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name [OPTIONS(…)] [AS SELECT …]
  drop_model    DROP MODEL [IF EXISTS] name
  ml            any statement holding ML.GENERATE_TEXT / ML.EVALUATE / ML.TRAINING_INFO calls (core.sql.ml_calls)
  sql           everything else, which DuckDB runs verbatim

The head of CREATE/DROP MODEL (name and OPTIONS) is parsed with sqlglot's BigQuery dialect, the reference
workflow's own shape; the SELECT of CREATE MODEL … AS is kept as text and run by DuckDB as written."""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from core.sql.errors import SqlError
from core.sql.options import literal_value

DUCKDB = Dialect.get_or_raise("duckdb")
OPENING = {TokenType.L_PAREN: TokenType.R_PAREN, TokenType.L_BRACKET: TokenType.R_BRACKET,
           TokenType.L_BRACE: TokenType.R_BRACE}
CLOSING = set(OPENING.values())


def position(text: str, offset: int) -> tuple[int, int]:
    """(line, column), both 1-based, of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def where(text: str, offset: int) -> str:
    line, column = position(text, offset)
    return f"line {line}, column {column}"


def _unterminated(text: str) -> tuple[int, str] | None:
    """Where a quote, $$ string or comment opens and never closes (the tokenizer only says it failed)."""
    i = 0
    while i < len(text):
        two = text[i:i + 2]
        if two == "--":
            end = text.find("\n", i)
            i = len(text) if end == -1 else end + 1
            continue
        for opening, closing, what in (("/*", "*/", "comment"), ("$$", "$$", "$$ string")):
            if two == opening:
                end = text.find(closing, i + 2)
                if end == -1:
                    return i, what
                i = end + 2
                break
        else:
            if text[i] in "'\"":
                quote, j = text[i], i + 1
                while True:
                    j = text.find(quote, j)
                    if j == -1:
                        return i, "string" if quote == "'" else "quoted name"
                    if text[j + 1:j + 2] == quote:  # a doubled quote stands for the quote itself
                        j += 2
                        continue
                    break
                i = j + 1
            else:
                i += 1
    return None


def tokenize(text: str) -> list[Token]:
    try:
        return DUCKDB.tokenize(text)
    except TokenError:
        found = _unterminated(text)
        if found is None:
            raise SqlError("the statement cannot be read (a stray character?)", clause="the whole statement",
                           hint="Check the quotes and brackets of the statement.") from None
        offset, what = found
        error = SqlError(f"unterminated {what} starting at {where(text, offset)}: {text[offset:offset + 30]!r}",
                         clause=where(text, offset), hint=f"Close the {what}; inside a string, write '' for a quote.")
        error.offset = offset  # run_sql finds the statement it is in
        raise error from None


def split_statements(text: str) -> list[str]:
    """The statements of a script, in order, without their `;`; comments-only pieces are left out. An
    unterminated string or comment raises SqlError numbered with the statement it starts in."""
    try:
        tokens = tokenize(text)
    except SqlError as e:
        if getattr(e, "offset", None) is not None and e.statement is None:
            head = text[:e.offset]
            before = split_statements(head)
            e.statement = len(before) + (1 if not before or head.rstrip().endswith(";") else 0)
        raise
    out, start, seen = [], 0, False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if seen:
                out.append(text[start:token.start].strip())
            start, seen = token.end + 1, False
        else:
            seen = True
    if seen:
        out.append(text[start:].strip())
    return out


def words(tokens: list[Token], n: int = 6) -> list[str]:
    return [t.text.upper() for t in tokens[:n]]


def matching(tokens: list[Token], i: int) -> int:
    """Index of the bracket closing the one at tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].token_type in OPENING:
            depth += 1
        elif tokens[j].token_type in CLOSING:
            depth -= 1
            if depth == 0:
                return j
    raise SqlError(f"the bracket opened at {where_token(tokens[i])} is never closed",
                   clause=where_token(tokens[i]), hint="Add the missing `)`.")


def where_token(token: Token) -> str:
    return f"line {token.line}, column {max(1, token.col - len(token.text) + 1)}"


def top_level_args(tokens: list[Token], open_i: int, close_i: int) -> list[list[Token]]:
    """The comma-separated arguments between two matched brackets, as token lists."""
    args, current, depth = [], [], 0
    for t in tokens[open_i + 1:close_i]:
        if t.token_type in OPENING:
            depth += 1
        elif t.token_type in CLOSING:
            depth -= 1
        if t.token_type == TokenType.COMMA and depth == 0:
            args.append(current)
            current = []
        else:
            current.append(t)
    if current or args:
        args.append(current)
    return args


def span(text: str, tokens: list[Token]) -> str:
    return text[tokens[0].start:tokens[-1].end + 1] if tokens else ""


def unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "`\"":
        return name[1:-1].replace(name[0] * 2, name[0])
    return name


# ---------------------------------------------------------------- CREATE MODEL / DROP MODEL

@dataclass
class CreateModel:
    name: str
    replace: bool
    if_not_exists: bool
    options: list[tuple[str, object]]     # as written, in order (duplicates are found by the schema check)
    select_sql: str | None                # the AS SELECT … text, run by DuckDB as written


@dataclass
class DropModel:
    name: str
    if_exists: bool


def is_create_model(tokens: list[Token]) -> bool:
    w = words(tokens)
    if w[:1] != ["CREATE"]:
        return False
    rest = w[3:] if w[1:3] == ["OR", "REPLACE"] else w[1:]
    return rest[:1] == ["MODEL"]


def is_drop_model(tokens: list[Token]) -> bool:
    return words(tokens, 2) == ["DROP", "MODEL"]


CREATE_FORM = ("Write it as CREATE [OR REPLACE] MODEL name OPTIONS (name = value, …) [AS SELECT …]; strings in "
               "'quotes', lists in [brackets].")


def _parse_head(head: str, clause: str, hint: str = CREATE_FORM):
    try:
        return sqlglot.parse_one(head, read="bigquery")
    except ParseError as e:
        first = (e.errors or [{}])[0]
        line, col = first.get("line"), first.get("col")
        at = f"line {line}, column {col}" if line else clause
        said = re.sub(r" for <class '[^']*'>", "", str(first.get("description") or e))  # no parser internals
        raise SqlError(f"{clause} cannot be parsed at {at}: {said}", clause=at,
                       hint=hint) from None


def _model_name(table: exp.Expression | None, statement: str) -> str:
    if not isinstance(table, exp.Table) or not table.name:
        raise SqlError(f"{statement} needs a model name", clause=statement,
                       hint=f"e.g. {statement} sections_tuned …")
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        raise SqlError(f"model names are one word here, not `{table.sql('bigquery')}`", clause=statement,
                       hint=f"Leave out the dataset prefix: `{table.name}`.")
    return table.name


def parse_create_model(text: str, tokens: list[Token]) -> CreateModel:
    """CREATE MODEL: the head (name, OPTIONS) through sqlglot; the AS SELECT body as text."""
    i = 3 if words(tokens, 3)[1:3] == ["OR", "REPLACE"] else 1
    i += 1  # MODEL
    as_at = None
    while i < len(tokens):
        t = tokens[i]
        if t.token_type in OPENING:
            i = matching(tokens, i) + 1
            continue
        if t.token_type == TokenType.ALIAS:
            as_at = i
            break
        i += 1
    head = text[:tokens[as_at].start] if as_at is not None else text
    tree = _parse_head(head, "CREATE MODEL")
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() != "MODEL":
        raise SqlError("this CREATE MODEL statement cannot be read", clause="CREATE MODEL",
                       hint="Write CREATE [OR REPLACE] MODEL name OPTIONS (…) [AS SELECT …].")
    options = []
    for prop in (tree.args.get("properties").expressions if tree.args.get("properties") else []):
        if not isinstance(prop, exp.Property):
            raise SqlError(f"`{prop.sql('bigquery')}` is not an option", clause="CREATE MODEL OPTIONS",
                           hint="Options are written name = value, separated by commas.")
        name = prop.name.lower()
        options.append((name, literal_value(prop.args.get("value"), f"OPTIONS {name}")))
    select_sql = None
    if as_at is not None:
        select_sql = text[tokens[as_at].end + 1:].strip()
        body = tokens[as_at + 1:]
        if body and body[0].token_type == TokenType.L_PAREN and matching(body, 0) == len(body) - 1:
            select_sql = span(text, body[1:-1])  # AS (SELECT …)
        if not select_sql:
            raise SqlError("AS is followed by nothing", clause="CREATE MODEL … AS",
                           hint="Give the training rows: AS SELECT … AS prompt, … AS label FROM a_table.")
    return CreateModel(name=_model_name(tree.this, "CREATE MODEL"), replace=bool(tree.args.get("replace")),
                       if_not_exists=bool(tree.args.get("exists")), options=options, select_sql=select_sql)


def parse_drop_model(text: str) -> DropModel:
    tree = _parse_head(text, "DROP MODEL", "Write it as DROP MODEL [IF EXISTS] name (one model).")
    tables = (tree.args.get("tables") or [tree.this]) if isinstance(tree, exp.Drop) else []
    if len(tables) != 1:
        raise SqlError("DROP MODEL takes one model name", clause="DROP MODEL", hint="DROP MODEL [IF EXISTS] name")
    return DropModel(name=_model_name(tables[0], "DROP MODEL"), if_exists=bool(tree.args.get("exists")))
