"""The ML function calls of a statement: ML.GENERATE_TEXT(MODEL m, (SELECT …) | TABLE t, STRUCT(…)),
ML.EVALUATE(…) and ML.TRAINING_INFO(MODEL m). A call is found by its tokens (ML . NAME ( … ) with matched
brackets); its input subquery is kept as text for DuckDB to run as written, and its STRUCT is parsed with
sqlglot's BigQuery dialect, the reference workflow's own shape. Later the call's span is replaced, in the
statement's text, by the name of a temporary table holding its result, so the SQL around it (WHERE, ORDER
BY, JOIN, CREATE TABLE … AS) runs in DuckDB unchanged."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import Token, TokenType

from core.sql.errors import SqlError
from core.sql.options import literal_value
from core.sql.statements import matching, span, tokenize, top_level_args, unquote

ML_FUNCTIONS = ("GENERATE_TEXT", "EVALUATE", "TRAINING_INFO")


@dataclass
class MlCall:
    function: str                      # GENERATE_TEXT, EVALUATE or TRAINING_INFO
    model: str
    input_sql: str | None              # a SELECT DuckDB runs as written
    options: list[tuple[str, object]] = field(default_factory=list)
    start: int = 0                     # the call's span in the statement's text
    end: int = 0

    @property
    def title(self) -> str:
        return f"ML.{self.function}"


def _function_name(tokens: list[Token], i: int) -> bool:
    """tokens[i:] starts ML . NAME ("""
    return (i + 3 < len(tokens) and tokens[i].text.upper() == "ML" and tokens[i + 1].token_type == TokenType.DOT
            and tokens[i + 3].token_type == TokenType.L_PAREN)


def has_ml_call(tokens: list[Token]) -> bool:
    return any(_function_name(tokens, i) for i in range(len(tokens)))


def _struct_options(text: str, arg: list[Token], title: str) -> list[tuple[str, object]]:
    raw = span(text, arg)
    if arg[0].token_type != TokenType.STRUCT:
        raise SqlError(f"the third argument of {title} must be STRUCT(value AS name, …), not `{raw[:40]}`",
                       clause=f"{title} options", hint="e.g. STRUCT(0.0 AS temperature, 64 AS max_output_tokens)")
    try:
        tree = sqlglot.parse_one(f"SELECT {raw}", read="bigquery")
    except ParseError as e:
        first = (e.errors or [{}])[0]
        raise SqlError(f"the STRUCT of {title} cannot be parsed: {first.get('description') or e}",
                       clause=f"{title} STRUCT", hint="Write STRUCT(value AS name, …), e.g. STRUCT(0.0 AS temperature).") \
            from None
    struct = tree.expressions[0] if isinstance(tree, exp.Select) and tree.expressions else None
    if not isinstance(struct, exp.Struct):
        raise SqlError(f"the third argument of {title} must be one STRUCT(…)", clause=f"{title} STRUCT",
                       hint="e.g. STRUCT(0.0 AS temperature)")
    out = []
    for item in struct.expressions:
        if not isinstance(item, exp.PropertyEQ):
            raise SqlError(f"`{item.sql('bigquery')}` in the STRUCT of {title} has no name",
                           clause=f"{title} STRUCT", hint="Name every value: STRUCT(0.0 AS temperature, 16 AS max_output_tokens).")
        name = item.this.name.lower()
        out.append((name, literal_value(item.expression, f"{title} {name}")))
    return out


def _input_sql(text: str, arg: list[Token], title: str) -> str:
    if arg and arg[0].token_type == TokenType.L_PAREN and matching(arg, 0) == len(arg) - 1 and len(arg) > 2:
        inner = arg[1:-1]
        if inner[0].text.upper() not in ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "("):
            raise SqlError(f"the input of {title} must be a query, not `{span(text, inner)[:40]}`",
                           clause=f"{title} input", hint="Give (SELECT …) or TABLE name.")
        return span(text, inner)
    if arg and arg[0].text.upper() == "TABLE" and len(arg) > 1:
        return f"SELECT * FROM {span(text, arg[1:])}"
    raise SqlError(f"the second argument of {title} must be its input rows: (SELECT …) or TABLE name, "
                   f"not `{span(text, arg)[:40]}`", clause=f"{title} input",
                   hint=f"e.g. {title}(MODEL m, (SELECT input_text AS prompt FROM classification_eval))")


def _call(text: str, tokens: list[Token], i: int) -> tuple[MlCall, int]:
    name = tokens[i + 2].text.upper()
    if name not in ML_FUNCTIONS:
        near = difflib.get_close_matches(name, ML_FUNCTIONS, n=1, cutoff=0.5)
        raise SqlError(f"unknown function ML.{tokens[i + 2].text}" + (f"; did you mean ML.{near[0]}?" if near else ""),
                       clause=f"ML.{tokens[i + 2].text}", hint=f"The ML functions are {', '.join('ML.' + f for f in ML_FUNCTIONS)}.")
    title = f"ML.{name}"
    before = tokens[i - 1].token_type if i > 0 else None
    if before not in (TokenType.FROM, TokenType.JOIN):
        raise SqlError(f"{title} returns a table: it belongs in FROM or JOIN", clause=title,
                       hint=f"Write SELECT … FROM {title}(MODEL m, …).")
    close = matching(tokens, i + 3)
    args = top_level_args(tokens, i + 3, close)
    if not args or not args[0] or args[0][0].text.upper() != "MODEL" or len(args[0]) < 2:
        raise SqlError(f"the first argument of {title} must be MODEL name", clause=f"{title} MODEL",
                       hint=f"e.g. {title}(MODEL sections_tuned{', (SELECT …)' if name != 'TRAINING_INFO' else ''})")
    written = span(text, args[0][1:])
    model = unquote(written)
    if not model or (model == written and re.search(r"\s", model)):  # a quoted run name may hold spaces
        raise SqlError(f"`{span(text, args[0])}` names no model", clause=f"{title} MODEL",
                       hint="Quote a name with other characters than letters, digits and _: MODEL `my-model`.")
    call = MlCall(function=name, model=model, input_sql=None, start=tokens[i].start, end=tokens[close].end + 1)
    most = 1 if name == "TRAINING_INFO" else 3
    if len(args) > most:
        raise SqlError(f"{title} takes at most {most} argument{'s' * (most > 1)}, got {len(args)}", clause=title,
                       hint="Write ML.TRAINING_INFO(MODEL m)." if most == 1 else f"{title}(MODEL m, (SELECT …), STRUCT(…))")
    if name != "TRAINING_INFO":
        if len(args) < 2 or not args[1]:
            raise SqlError(f"{title} needs input rows after the model", clause=f"{title} input",
                           hint=f"e.g. {title}(MODEL m, (SELECT … FROM a_table))")
        call.input_sql = _input_sql(text, args[1], title)
        if len(args) == 3:
            call.options = _struct_options(text, args[2], title) if args[2] else []
        inner = tokenize(call.input_sql)
        if has_ml_call(inner):
            raise SqlError(f"the input of {title} holds another ML function", clause=f"{title} input",
                           hint="Save the inner result first: CREATE TABLE t AS SELECT * FROM ML.…(…); then use TABLE t.")
    return call, close


def find_ml_calls(text: str, tokens: list[Token]) -> list[MlCall]:
    calls, i = [], 0
    while i < len(tokens):
        if _function_name(tokens, i):
            call, close = _call(text, tokens, i)
            calls.append(call)
            i = close + 1
        else:
            i += 1
    return calls


def replace_calls(text: str, calls: list[MlCall], names: list[str]) -> str:
    """The statement with each call's span replaced by the name of the table holding its result."""
    out, last = [], 0
    for call, name in zip(calls, names):
        out += [text[last:call.start], name]
        last = call.end
    return "".join(out) + text[last:]
