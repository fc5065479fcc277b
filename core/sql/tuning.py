"""CREATE MODEL … AS SELECT: the SELECT's rows become a tuning run named after the model. The prompt
column (prompt_col) and the label column (the first of input_label_cols) are written as input_text /
output_text JSONL under workspace/sql/data/<model>-<stamp>/, split by data_split_method as the catalog
splits datasets (core.catalog.split_rows), and handed to the studio's one request path
(core.requests.tune_config) with the template "{input_text}": the model learns the prompt exactly as the
SELECT wrote it, which is also how ML.GENERATE_TEXT and ML.EVALUATE ask it later."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from core import jobs, runs
from core.catalog import COLUMN_SPLITS, split_rows
from core.config import ConfigError
from core.data import MIN_EXAMPLES, DataError
from core.data_types import Dataset
from core.inventory import guess_task
from core.names import SQL_DIR, TASKS
from core.requests import tune_config
from core.sql.errors import SqlError
from core.sql.ml_functions import is_blank
from core.sql.options import EVALUATION_TASKS
from core.templates import PLACEHOLDER

DATA_DIR = "data"
CLAUSE = "CREATE MODEL … AS SELECT"


def _column(frame, wanted: str, option: str, role: str) -> str:
    found = next((c for c in frame.columns if str(c) == wanted), None)
    found = found or next((c for c in frame.columns if str(c).lower() == wanted.lower()), None)
    if found is None:
        raise SqlError(f"the SELECT has no `{wanted}` column (it has {', '.join(map(str, frame.columns))}); "
                       f"{option} names the column that holds {role}", clause=f"{CLAUSE} ({option})",
                       hint=f"Name it in the SELECT (… AS {wanted}) or set {option} to one of its columns.")
    return found


def _texts(frame, column: str, option: str) -> list[str]:
    values = frame[column].tolist()
    empty = [i + 1 for i, v in enumerate(values) if is_blank(v)]
    if empty:
        raise SqlError(f"{len(empty)} of {len(values)} rows have an empty or NULL `{column}` (row {empty[0]} first)",
                       clause=f"{CLAUSE} ({option})",
                       hint=f"Leave them out: … WHERE {column} IS NOT NULL AND trim({column}) <> ''")
    return [str(v) for v in values]


def training_rows(frame, options: dict) -> tuple[list[dict], dict | None]:
    """The SELECT's rows as examples {input_text, output_text, line}, and the split column's values by line."""
    labels = options["input_label_cols"]
    if len(labels) != 1:
        raise SqlError(f"input_label_cols must name one column, got {len(labels)}", clause="OPTIONS input_label_cols",
                       hint="e.g. input_label_cols = ['label']")
    prompt_col = _column(frame, options["prompt_col"], "prompt_col", "the prompt")
    label_col = _column(frame, labels[0], "input_label_cols", "the answer to learn")
    prompts, answers = _texts(frame, prompt_col, "prompt_col"), _texts(frame, label_col, "input_label_cols")
    rows = [{"input_text": p, "output_text": a, "line": i + 1} for i, (p, a) in enumerate(zip(prompts, answers))]
    method, split_col = options["data_split_method"], options["data_split_col"]
    if method in COLUMN_SPLITS:
        if not split_col:
            raise SqlError(f"data_split_method '{method}' needs data_split_col", clause="OPTIONS data_split_col",
                           hint="Name the column: a boolean (TRUE = eval row) for CUSTOM, the order for SEQ.")
        column = _column(frame, split_col, "data_split_col", "the split")
        return rows, {i + 1: v for i, v in enumerate(frame[column].tolist())}
    if split_col:
        raise SqlError(f"data_split_col is used by CUSTOM and SEQ only, not {method}", clause="OPTIONS data_split_col",
                       hint="Leave it out, or set data_split_method = 'CUSTOM' (or 'SEQ').")
    return rows, None


def split(rows: list[dict], options: dict, values: dict | None) -> tuple[list[dict], list[dict]]:
    try:
        train, held = split_rows(rows, options["data_split_method"], options["data_split_eval_fraction"], values,
                                 options["data_split_col"])
    except DataError as e:
        raise SqlError(e.message, clause="OPTIONS data_split_method", hint=e.hint or "Check the split options.") from None
    if len(train) < MIN_EXAMPLES:
        raise SqlError(f"the split leaves {len(train)} training rows; tuning needs at least {MIN_EXAMPLES}",
                       clause=CLAUSE, hint="Select more rows, or lower data_split_eval_fraction.")
    return train, held


def tasks(options: dict, train: list[dict]) -> tuple[str, str]:
    """(the run's task, the model's evaluation task): evaluation_task, else the studio's guess from the
    answers. Question answering tunes as text generation."""
    named = options["evaluation_task"]
    task = EVALUATION_TASKS[named] if named else guess_task(Dataset(Path("select"), train, "input_text", "output_text"))
    return (task if task in TASKS else "text_generation"), task


def _write(folder: Path, name: str, rows: list[dict]) -> str | None:
    if not rows:
        return None
    path = folder / name
    runs.write_jsonl(path, ({"input_text": r["input_text"], "output_text": r["output_text"]} for r in rows))
    return str(path)


def start_tuning(workspace: Path, model: str, endpoint: str, options: dict, frame) -> tuple[Path, str, str]:
    """Make and queue the tuning run; returns (run folder, why its steps, the model's task). Every check
    comes before a file is written; a failure after that removes what it wrote."""
    rows, values = training_rows(frame, options)
    train, held = split(rows, options, values)
    run_task, model_task = tasks(options, train)
    folder = workspace / SQL_DIR / DATA_DIR / f"{model}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    folder.mkdir(parents=True)
    settings = {"steps": options["max_iterations"], "learning_rate_multiplier": options["learning_rate_multiplier"],
                "lora_rank": options["lora_rank"], "batch_size": options["batch_size"],
                "max_seq_length": options["max_seq_length"], "device": options["device"]}
    try:
        config, reason = tune_config(workspace, method="sft", task=run_task, train_file=_write(folder, "train.jsonl", train),
                                     eval_file=_write(folder, "eval.jsonl", held), input_column="input_text",
                                     output_column="output_text", template=PLACEHOLDER, model=endpoint, name=model,
                                     **{k: v for k, v in settings.items() if v is not None})
        run_dir = jobs.create_tune(workspace, config)
    except (DataError, ConfigError) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise SqlError(str(e), clause=CLAUSE, hint=getattr(e, "hint", None) or "Check the options and the rows.") \
            from None
    jobs.submit(run_dir)
    split_words = f"{len(train)} training rows" + (f", {len(held)} eval rows" if held else "")
    return run_dir, f"{split_words}; {reason}", model_task
