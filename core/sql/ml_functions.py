"""The ML functions, each from a frame of input rows to a frame of results, with the reference workflow's
column names:

  ML.GENERATE_TEXT  the input columns, plus ml_generate_text_llm_result and ml_generate_text_status
                    (flatten_json_output = TRUE), or ml_generate_text_result, a JSON text (FALSE, the
                    default). The prompt is the `prompt` column's text exactly, sent as the user turn
                    through the model's chat template (core.templates.render_prompt with "{input_text}",
                    as CREATE MODEL … AS SELECT taught it). A NULL or empty prompt, or a failing row,
                    gets its error in ml_generate_text_status and never fails the statement.
  ML.EVALUATE       core.evaluate.run_evaluation on the input_text/output_text rows with template
                    "{input_text}" and the named model only: the numbers `studio evaluate` gives on the
                    same rows. Classification: a row per label; other tasks: one row.
  ML.TRAINING_INFO  the tuning run's logged steps: training_run, iteration, loss, eval_loss,
                    learning_rate, duration_ms.
Torch loads only when a model answers (the page imports this module)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core import runs
from core.config import EvalConfig
from core.names import ADAPTER_DIR, PREDICTIONS_FILE
from core.sql import models
from core.sql.errors import SqlError
from core.sql.ml_calls import MlCall
from core.sql.options import generation_config
from core.templates import PLACEHOLDER

LLM_RESULT, JSON_RESULT, STATUS = "ml_generate_text_llm_result", "ml_generate_text_result", "ml_generate_text_status"
EVALUATION_STATUS = "evaluation_status"
CLASSIFICATION_COLUMNS = ("label", "precision", "recall", "f1_score", "support", EVALUATION_STATUS)
TEXT_COLUMNS = ("rouge-l_precision", "rouge-l_recall", "rouge-l_f1_score", "bleu4_score", EVALUATION_STATUS)
QA_COLUMNS = ("exact_match", "f1_score", EVALUATION_STATUS)
TRAINING_COLUMNS = ("training_run", "iteration", "loss", "eval_loss", "learning_rate", "duration_ms")
NEEDS = {"GENERATE_TEXT": ("prompt",), "EVALUATE": ("input_text", "output_text")}
ROLES = {"prompt": "the prompt, as the model is to read it", "input_text": "the prompt of each row",
         "output_text": "the expected answer"}

Progress = Callable[[int, int], None]


def is_blank(value) -> bool:
    """NULL (None, NaN, NA) or only spaces: no text to use."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))) or not str(value).strip()


def find_column(frame: pd.DataFrame, name: str) -> str | None:
    return next((c for c in frame.columns if str(c) == name), None) or \
        next((c for c in frame.columns if str(c).lower() == name), None)


def check_input(call: MlCall, frame: pd.DataFrame) -> None:
    """The input has the columns the function reads (and, for ML.EVALUATE, a value in each)."""
    for name in NEEDS.get(call.function, ()):
        if find_column(frame, name) is None:
            raise SqlError(f"the input of {call.title} has no `{name}` column (it has "
                           f"{', '.join(map(str, frame.columns)) or 'none'}); `{name}` holds {ROLES[name]}",
                           clause=f"{call.title} input", hint=f"Name it in the SELECT: … AS {name}.")
    if call.function == "EVALUATE":
        if frame.empty:
            raise SqlError(f"the input of {call.title} has no rows", clause=f"{call.title} input",
                           hint="Select the rows to score (check the WHERE clause).")
        for name in NEEDS["EVALUATE"]:
            values = frame[find_column(frame, name)].tolist()
            empty = sum(1 for v in values if is_blank(v))
            if empty:
                raise SqlError(f"{empty} of {len(values)} input rows of {call.title} have an empty or NULL `{name}`",
                               clause=f"{call.title} input",
                               hint=f"Leave them out: … WHERE {name} IS NOT NULL AND trim({name}) <> ''")


def result_template(call: MlCall, frame: pd.DataFrame | None, options: dict, task: str | None) -> pd.DataFrame:
    """An empty frame shaped like the function's result (the statement around it is checked against it
    before any model runs)."""
    text = lambda: pd.Series([], dtype="string")
    number = lambda: pd.Series([], dtype="float64")
    if call.function == "GENERATE_TEXT":
        first = LLM_RESULT if options["flatten_json_output"] else JSON_RESULT
        ml = pd.DataFrame({first: text(), STATUS: text()})
        return pd.concat([ml, frame.iloc[:0].reset_index(drop=True)], axis=1)
    if call.function == "TRAINING_INFO":
        return pd.DataFrame({c: (number() if c not in ("training_run", "iteration") else pd.Series([], dtype="int64"))
                             for c in TRAINING_COLUMNS})
    columns = {"classification": CLASSIFICATION_COLUMNS, "question_answering": QA_COLUMNS}.get(task, TEXT_COLUMNS)
    return pd.DataFrame({c: (text() if c in ("label", EVALUATION_STATUS) else
                             pd.Series([], dtype="int64") if c == "support" else number()) for c in columns})


class LoadedModels:
    """Models loaded for one statement, each once, however many calls use it."""

    def __init__(self, workspace: Path, device: str = "auto"):
        self.workspace, self.device, self.loaded = workspace, device, {}

    def get(self, ref: models.ModelRef):
        from core.models import ModelError, load_model

        key = (ref.endpoint, ref.run_id)
        if key not in self.loaded:
            try:
                if ref.run_id:
                    config = models.run_config(self.workspace, ref)
                    lm, tokenizer, _ = load_model(config.get("model") or ref.endpoint, self.workspace, self.device,
                                                  adapter=models.run_dir(self.workspace, ref) / ADAPTER_DIR)
                else:
                    lm, tokenizer, _ = load_model(ref.endpoint, self.workspace, self.device)
            except (ModelError, OSError, ValueError) as e:  # a folder or hub id that holds no loadable model
                raise SqlError(str(e), clause=f"MODEL {ref.name}",
                               hint=f"Point the name at a model that loads: CREATE OR REPLACE MODEL {ref.name} "
                                    "OPTIONS (endpoint = …).") from None
            self.loaded[key] = (lm, tokenizer)
        return self.loaded[key]


def _empty_prompt(value) -> str | None:
    if not is_blank(value):
        return None
    return "the prompt is empty" if isinstance(value, str) else "the prompt is NULL"


def generate_text(loaded: LoadedModels, ref: models.ModelRef, frame: pd.DataFrame, options: dict,
                  progress: Progress | None = None) -> pd.DataFrame:
    from core.generate import generate_texts
    from core.templates import render_prompt

    gen = generation_config(options)
    values = frame[find_column(frame, "prompt")].tolist()
    status = [_empty_prompt(v) or "" for v in values]
    usable = [i for i, s in enumerate(status) if not s]
    answers: list[str | None] = [None] * len(values)
    if usable:
        lm, tokenizer = loaded.get(ref)
        prompts = [render_prompt(tokenizer, PLACEHOLDER, str(values[i])) for i in usable]
        for i, text in zip(usable, generate_texts(lm, tokenizer, prompts, gen, progress=progress, keep_going=True)):
            answers[i] = text
            if text is None:
                status[i] = "generation failed for this row (the job's log has the cause)"
    elif progress:
        progress(len(values), len(values))
    if options["flatten_json_output"]:
        ml = pd.DataFrame({LLM_RESULT: pd.Series(answers, dtype="string"), STATUS: pd.Series(status, dtype="string")})
    else:
        result = [None if a is None else json.dumps({"candidates": [{"content": {"parts": [{"text": a}], "role": "model"}}]},
                                                    ensure_ascii=False) for a in answers]
        ml = pd.DataFrame({JSON_RESULT: pd.Series(result, dtype="string"), STATUS: pd.Series(status, dtype="string")})
    return pd.concat([ml, frame.reset_index(drop=True)], axis=1)


def _text_scores(task: str, metrics: dict, work_dir: Path, answer_key: str) -> dict:
    """ROUGE-L and BLEU-4 for the text tasks: the one the studio's evaluation computed for the task, the
    other from the same answers (predictions.jsonl) with the same core.metrics function."""
    from core.metrics import summarization_metrics, text_generation_metrics

    rows = runs.read_jsonl(work_dir / PREDICTIONS_FILE)
    ok = [(str(r["reference"]), str(r[answer_key])) for r in rows if r.get(answer_key) is not None]
    refs, outs = [r for r, _ in ok], [a for _, a in ok]
    rouge = metrics if task == "summarization" else summarization_metrics(refs, outs)
    bleu = metrics["bleu4"] if task == "text_generation" else text_generation_metrics(refs, outs)["bleu4"]
    return {"rouge-l_precision": rouge["rougeL_precision"], "rouge-l_recall": rouge["rougeL_recall"],
            "rouge-l_f1_score": rouge["rougeL_f1"], "bleu4_score": bleu}


def evaluate(workspace: Path, ref: models.ModelRef, frame: pd.DataFrame, task: str, work_dir: Path,
             progress: Progress | None = None, device: str = "auto") -> pd.DataFrame:
    from core.evaluate import run_evaluation

    work_dir.mkdir(parents=True, exist_ok=True)
    data = work_dir / "input.jsonl"
    inputs, outputs = frame[find_column(frame, "input_text")], frame[find_column(frame, "output_text")]
    runs.write_jsonl(data, ({"input_text": str(i), "output_text": str(o)} for i, o in zip(inputs, outputs)))
    config = EvalConfig(data=str(data), task=task, run_id=ref.run_id, model=ref.endpoint, template=PLACEHOLDER,
                        input_column="input_text", output_column="output_text", score_base=False, device=device)
    try:
        result = run_evaluation(workspace, config, work_dir, progress=progress)
    except ValueError as e:
        raise SqlError(str(e), clause=f"ML.EVALUATE MODEL {ref.name}", hint="Check the model and the input rows.") from None
    key = "tuned" if ref.run_id else "base"
    metrics = result[key]
    status = json.dumps(metrics["evaluation_status"])
    if task == "classification":
        rows = [{**{c: r[c] for c in CLASSIFICATION_COLUMNS[:-1]}, EVALUATION_STATUS: status} for r in metrics["per_label"]]
        return pd.DataFrame(rows, columns=list(CLASSIFICATION_COLUMNS))
    if task == "question_answering":
        return pd.DataFrame([{"exact_match": metrics["exact_match"], "f1_score": metrics["f1"], EVALUATION_STATUS: status}])
    return pd.DataFrame([{**_text_scores(task, metrics, work_dir, key), EVALUATION_STATUS: status}])


def training_info(workspace: Path, ref: models.ModelRef) -> pd.DataFrame:
    """One row per logged step; eval_loss where an evaluation ran at that step. duration_ms: time since the
    previous logged step."""
    by_step: dict[int, dict] = {}
    for record in runs.read_metrics(models.run_dir(workspace, ref)):
        if "loss" in record or "eval_loss" in record:
            by_step.setdefault(int(record["step"]), {}).update(record)
    rows, previous = [], 0.0
    for step in sorted(by_step):
        r = by_step[step]
        elapsed = r.get("time")
        rows.append({"training_run": 0, "iteration": step, "loss": r.get("loss"), "eval_loss": r.get("eval_loss"),
                     "learning_rate": r.get("learning_rate"),
                     "duration_ms": None if elapsed is None else round((elapsed - previous) * 1000.0, 1)})
        previous = elapsed if elapsed is not None else previous
    return pd.DataFrame(rows, columns=list(TRAINING_COLUMNS)).astype(
        {"training_run": "int64", "iteration": "int64", "loss": "float64", "eval_loss": "float64",
         "learning_rate": "float64", "duration_ms": "float64"})
