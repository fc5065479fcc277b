"""The options of CREATE MODEL, ML.GENERATE_TEXT and ML.EVALUATE: names, types, allowed values and
defaults, with the reference workflow's names (a few marked `studio` are this studio's own). A value is a
constant written in SQL (string, number, TRUE/FALSE, NULL, [list]); an unknown name gets a did-you-mean,
a wrong type says the type expected, and nothing runs until every option is right."""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlglot import exp

from core.catalog import SPLITS
from core.config import BUNDLED_MODEL, ConfigError, GenerationConfig
from core.names import DEVICES, EVAL_TASKS
from core.sql.errors import SqlError

KIND_WORDS = {"string": "a string in 'quotes'", "integer": "a whole number", "number": "a number",
              "boolean": "TRUE or FALSE", "string_list": "a list of strings like ['label']"}
# evaluation_task (CREATE MODEL) as the reference writes it → the studio's task names.
EVALUATION_TASKS = {t.upper(): t for t in EVAL_TASKS}


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    default: object = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False              # low itself is not allowed
    example: str = ""
    studio: bool = False                # not in the reference workflow: the studio's own
    tuning: bool = False                # CREATE MODEL: only with AS SELECT (a tuning run)


def _schema(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


CREATE_MODEL = _schema(
    Option("endpoint", "string", None, example=f"endpoint = '{BUNDLED_MODEL}'"),
    Option("evaluation_task", "string", None, tuple(EVALUATION_TASKS), example="evaluation_task = 'CLASSIFICATION'"),
    Option("prompt_col", "string", "prompt", example="prompt_col = 'prompt'", tuning=True),
    Option("input_label_cols", "string_list", ["label"], example="input_label_cols = ['label']", tuning=True),
    Option("max_iterations", "integer", None, low=1, high=100_000, example="max_iterations = 100", tuning=True),
    Option("learning_rate_multiplier", "number", 1.0, low=0, high=100, low_open=True,
           example="learning_rate_multiplier = 1.0", tuning=True),
    Option("data_split_method", "string", "AUTO_SPLIT", SPLITS, example="data_split_method = 'RANDOM'", tuning=True),
    Option("data_split_eval_fraction", "number", 0.2, low=0, high=1, low_open=True,
           example="data_split_eval_fraction = 0.2", tuning=True),
    Option("data_split_col", "string", None, example="data_split_col = 'is_eval'", tuning=True),
    Option("batch_size", "integer", None, low=1, high=1024, example="batch_size = 8", studio=True, tuning=True),
    Option("lora_rank", "integer", 8, low=1, high=512, example="lora_rank = 8", studio=True, tuning=True),
    Option("max_seq_length", "integer", None, low=16, high=32768, example="max_seq_length = 512", studio=True,
           tuning=True),
    Option("device", "string", "auto", DEVICES, example="device = 'cpu'", studio=True),
)

GENERATE_TEXT = _schema(
    Option("max_output_tokens", "integer", 128, low=1, high=8192, example="16 AS max_output_tokens"),
    Option("temperature", "number", 0.0, low=0, high=5, example="0.0 AS temperature"),
    Option("top_k", "integer", 40, low=0, high=100_000, example="40 AS top_k"),
    Option("top_p", "number", 0.95, low=0, high=1, low_open=True, example="0.95 AS top_p"),
    Option("stop_sequences", "string_list", [], example="['\\n'] AS stop_sequences"),
    Option("flatten_json_output", "boolean", False, example="TRUE AS flatten_json_output"),
)

EVALUATE = _schema(
    Option("task_type", "string", None, EVAL_TASKS, example="'classification' AS task_type"),
)


def literal_value(node: exp.Expression | None, clause: str):
    """A SQL constant as a Python value; anything computed is refused (options are read before any query)."""
    if isinstance(node, exp.Paren):
        return literal_value(node.this, clause)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Neg):
        value = literal_value(node.this, clause)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, exp.Array):
        return [literal_value(v, clause) for v in node.expressions]
    shown = node.sql("bigquery") if node is not None else "nothing"
    raise SqlError(f"`{shown}` is not a constant", clause=clause,
                   hint="Options take constants: 'text', 12, 0.5, TRUE, ['a', 'b'].")


def _shown(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return "NULL" if value is None else str(value)


def suggest(value: str, choices: list[str]) -> str | None:
    """The allowed value meant: one inside the value or the value inside it ('RANDOM_SPLIT' → RANDOM,
    'classify' → classification), else the closest spelling."""
    inside = [c for c in choices if c in value or value in c]
    if inside:
        return max(inside, key=len)
    near = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return near[0] if near else None


def _typed(option: Option, value, clause: str):
    kind, words = option.kind, KIND_WORDS[option.kind]
    wrong = SqlError(f"option `{option.name}` must be {words}, got {_shown(value)}", clause=clause,
                     hint=f"e.g. {option.example}")
    if kind == "string":
        if not isinstance(value, str):
            raise wrong
        if option.choices:
            normal = {c.upper(): c for c in option.choices}
            if value.upper() not in normal:
                near = suggest(value.upper(), list(normal))
                raise SqlError(f"`{option.name}` cannot be '{value}'" + (f"; did you mean '{normal[near]}'?" if near else ""),
                               clause=clause, hint=f"Use one of {', '.join(option.choices)}.")
            return normal[value.upper()]
        if not value.strip():
            raise SqlError(f"option `{option.name}` cannot be empty", clause=clause, hint=f"e.g. {option.example}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "string_list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong
    if kind == "integer" and not isinstance(value, int):
        raise wrong
    below = option.low is not None and (value <= option.low if option.low_open else value < option.low)
    if below or (option.high is not None and value > option.high):
        low = f"more than {option.low:g}" if option.low_open else f"at least {option.low:g}"
        raise SqlError(f"option `{option.name}` must be {low} and at most {option.high:g}, got {_shown(value)}",
                       clause=clause, hint=f"e.g. {option.example}")
    return float(value) if kind == "number" else value


def check_options(given: list[tuple[str, object]], schema: dict[str, Option], where: str) -> dict:
    """The options as written, checked against `schema` and completed with its defaults. `where` names
    the clause in errors ("OPTIONS", "ML.GENERATE_TEXT STRUCT")."""
    out, seen = {}, set()
    for name, value in given:
        clause = f"{where} {name}"
        if name not in schema:
            near = difflib.get_close_matches(name, list(schema), n=1, cutoff=0.6)
            raise SqlError(f"unknown option `{name}`" + (f"; did you mean `{near[0]}`?" if near else ""), clause=clause,
                           hint=f"{where} takes {', '.join(schema)}.")
        if name in seen:
            raise SqlError(f"option `{name}` is given twice", clause=clause, hint="Keep one of them.")
        seen.add(name)
        if value is None:  # NULL: the default
            continue
        out[name] = _typed(schema[name], value, clause)
    for name, option in schema.items():
        out.setdefault(name, list(option.default) if isinstance(option.default, list) else option.default)
    return out


def generation_config(options: dict) -> GenerationConfig:
    """ML.GENERATE_TEXT's STRUCT as the studio's generation settings."""
    try:
        return GenerationConfig(max_output_tokens=options["max_output_tokens"], temperature=options["temperature"],
                                top_k=options["top_k"], top_p=options["top_p"],
                                stop_sequences=list(options["stop_sequences"]))
    except ConfigError as e:
        raise SqlError(str(e), clause="ML.GENERATE_TEXT STRUCT", hint="Change the value in the STRUCT.") from None
