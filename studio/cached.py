"""The studio's only home of Streamlit caches: datasets, check reports, pre-flights and splits (kept
until the file changes), models and tokenizers (shared by every session), and finished evaluations.
Each wrapper calls core; nothing here decides anything."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from core import catalog, inventory, runs
from core.config import BUNDLED_MODEL
from core.data import Dataset, parse_dataset, read_table
from core.data import load_dataset as core_load_dataset
from core.datacheck import check_dataset, token_preflight
from core.evaluate import list_evaluations as core_list_evaluations
from core.evaluate import read_evaluation as core_read_evaluation
from core.evaluate import scored_predictions as core_scored_predictions
from core.models import bundled_model_dir, load_model as core_load_model, load_tokenizer as core_load_tokenizer, \
    resolve_model
from core.names import EVAL_METRICS_FILE

PREFLIGHT_ROWS = 300


def workspace() -> Path:
    """The workspace folder (STUDIO_WORKSPACE, else ./workspace); read on every call, never cached."""
    return runs.workspace_dir()


def list_datasets() -> list[dict]:
    """core.inventory.list_datasets of the current workspace: samples, uploads, registered files."""
    return inventory.list_datasets(workspace())


def _mtime(path: str | Path) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(show_spinner=False, max_entries=64)
def _columns(path: str, mtime: int) -> list[str]:
    df, _ = read_table(path)
    return [str(c) for c in df.columns]


@st.cache_data(show_spinner="Reading the dataset…", max_entries=64)
def _dataset(path: str, input_column: str | None, output_column: str | None, mtime: int) -> Dataset:
    return core_load_dataset(path, input_column, output_column)


def load_dataset(path: str | Path, input_column: str | None = None, output_column: str | None = None) -> Dataset:
    """core.data.load_dataset, cached until the file changes. Raises DataError."""
    return _dataset(str(path), input_column, output_column, _mtime(path))


@st.cache_data(show_spinner="Reading the dataset…", max_entries=64)
def _parsed(path: str, input_column: str | None, output_column: str | None, format: str | None,
            mtime: int) -> Dataset:
    return parse_dataset(path, input_column, output_column, format)[0]


def valid_examples(path: str | Path, input_column: str | None = None, output_column: str | None = None,
                   format: str | None = None) -> Dataset:
    """The file's valid rows (core.data.parse_dataset), cached until the file changes; the invalid
    rows are listed by check_report. Raises DataError when the file as a whole cannot be used."""
    return _parsed(str(path), input_column, output_column, format, _mtime(path))


@st.cache_data(show_spinner="Checking every row…", max_entries=32)
def _report(path: str, task: str | None, format: str | None, input_column: str | None,
            output_column: str | None, eval_path: str | None, mtimes: tuple[int, int]) -> dict:
    return check_dataset(path, task=task, format=format, input_column=input_column, output_column=output_column,
                         eval_path=eval_path)


def check_report(path: str | Path, task: str | None = None, format: str | None = None,
                 input_column: str | None = None, output_column: str | None = None,
                 eval_path: str | Path | None = None) -> dict:
    """core.datacheck.check_dataset, cached until the file (or the eval file) changes."""
    return _report(str(path), task, format, input_column, output_column, str(eval_path) if eval_path else None,
                   (_mtime(path), _mtime(eval_path) if eval_path else 0))


@st.cache_data(show_spinner="Tokenizing as training will…", max_entries=16)
def _preflight(path: str, format: str | None, input_column: str | None, output_column: str | None, model: str,
               template: str, max_length: int, mtime: int) -> dict:
    data = valid_examples(path, input_column, output_column, format)
    head = Dataset(path=data.path, examples=data.examples[:PREFLIGHT_ROWS], input_column=data.input_column,
                   output_column=data.output_column, format=data.format)
    return token_preflight(head, load_tokenizer(model), template, max_length, show=3)


def preflight(path: str | Path, model: str, template: str, max_length: int, format: str | None = None,
              input_column: str | None = None, output_column: str | None = None) -> dict:
    """core.datacheck.token_preflight on the first PREFLIGHT_ROWS valid examples with the model's
    tokenizer, cached per file version, template and max length. Raises DataError, ValueError (a
    template without its placeholder) or core.models.ModelError."""
    return _preflight(str(path), format, input_column, output_column, model, template, int(max_length),
                      _mtime(path))


@st.cache_data(show_spinner=False, max_entries=64)
def _split(path: str, format: str | None, input_column: str | None, output_column: str | None, method: str,
           eval_fraction: float, column: str | None, mtime: int) -> tuple[int, int]:
    train, held = catalog.split_examples(valid_examples(path, input_column, output_column, format), method,
                                         eval_fraction, column)
    return len(train), len(held)


def split_counts(path: str | Path, method: str, eval_fraction: float = 0.2, column: str | None = None,
                 format: str | None = None, input_column: str | None = None,
                 output_column: str | None = None) -> tuple[int, int]:
    """(train rows, eval rows) that core.catalog.split_examples gives the valid rows, cached until the
    file changes. Raises DataError (also for a SEQ column that mixes numbers and text)."""
    return _split(str(path), format, input_column, output_column, method, float(eval_fraction), column,
                  _mtime(path))


def dataset_columns(path: str | Path) -> list[str]:
    return _columns(str(path), _mtime(path))



# ---------------------------------------------------------------- models (cached, shared by all users)

@st.cache_resource(max_entries=2, show_spinner=False)
def _model(model_name: str, adapter: str | None, ws: str):
    return core_load_model(model_name, ws, adapter=adapter)


def load_model(model_name: str, adapter: str | Path | None = None):
    """(model, tokenizer, device) from core.models.load_model, loaded once per model and adapter.
    Shared between sessions: never mutate it; use generation_lock() around generation."""
    return _model(model_name, str(adapter) if adapter else None, str(workspace()))


@st.cache_resource(show_spinner=False)
def generation_lock() -> threading.Lock:
    """One generation at a time: disable_adapter() briefly changes the shared model."""
    return threading.Lock()


@st.cache_resource(max_entries=4, show_spinner=False)
def _tokenizer(model_name: str, ws: str):
    return core_load_tokenizer(resolve_model(model_name, ws))


def load_tokenizer(model_name: str):
    return _tokenizer(model_name, str(workspace()))


def tokenizer_ready(model_name: str) -> bool:
    """Whether the tokenizer loads in about a second: a local folder, or the bundled model once it has
    been converted (the first conversion takes ~30 s, so the page asks before starting it)."""
    name = (model_name or BUNDLED_MODEL).strip()
    if name == BUNDLED_MODEL:
        return (bundled_model_dir(workspace()) / "model.safetensors").exists()
    return Path(name).expanduser().is_dir()


# ---------------------------------------------------------------- evaluations

def list_evaluations() -> list[dict]:
    """core.evaluate.list_evaluations of the current workspace (not cached: it is how progress shows)."""
    return core_list_evaluations(workspace())


@st.cache_data(show_spinner="Reading the evaluation…", max_entries=32)
def _evaluation(out_dir: str, mtime: int) -> tuple[dict, pd.DataFrame]:
    metrics, rows = core_read_evaluation(out_dir)
    # Scored as stored, or (evaluations from before per-row scores) as core.evaluate scores them now.
    return metrics, pd.DataFrame(core_scored_predictions(metrics, rows))  # from dicts: no dtype guessing


def read_evaluation(out_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(metrics.json, predictions with base_score / tuned_score / delta / change) of a finished
    evaluation, cached per file version."""
    return _evaluation(str(out_dir), _mtime(Path(out_dir) / EVAL_METRICS_FILE))
