"""What the studio pages share: the only home of Streamlit caches (data, models, tokenizers), plus the
pickers and badges more than one page uses. Nothing here trains; torch is only ever reached through core."""
from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from core import catalog, runs
from core.config import BUNDLED_MODEL
from core.data import SUPPORTED_SUFFIXES, Dataset, DataError, data_suffix, detect_columns, detect_format, \
    parse_dataset, read_table
from core.data import load_dataset as core_load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "assets"
STATE_BADGES = {"queued": ("gray", ":material/schedule:"), "running": ("blue", ":material/sync:"),
                "succeeded": ("green", ":material/check_circle:"), "failed": ("red", ":material/error:"),
                "cancelled": ("orange", ":material/cancel:")}
ACTIVE_STATES = ("queued", "running")
# What the upload widget accepts: every readable type, plain or gzipped.
UPLOAD_TYPES = [t for s in SUPPORTED_SUFFIXES for t in (s[1:], f"{s[1:]}.gz")]
PREFLIGHT_ROWS = 300
# The "no dataset / no run" choice of a selectbox: a None option would show as an empty selectbox.
NONE = ""


# ---------------------------------------------------------------- workspace and datasets

def workspace() -> Path:
    """The workspace folder (STUDIO_WORKSPACE, else ./workspace); read on every call, never cached."""
    return runs.workspace_dir()


def datasets_dir() -> Path:
    folder = workspace() / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sidebar() -> None:
    """The brand above the page list, and where runs and uploads are stored below it."""
    here = Path(__file__).resolve().parent
    st.logo(str(here / "logo.svg"), icon_image=str(here / "logo_icon.svg"), size="large")
    with st.sidebar:
        st.caption(f":material/folder_open: Workspace  \n`{workspace()}`")


def safe_filename(name: str) -> str:
    """A file name a user supplied, reduced to [A-Za-z0-9._-] with no folder part and no leading dot,
    so it can never point outside the datasets folder."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)
    base = re.sub(r"\.{2,}", ".", base).lstrip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip("._-")[:80] or "dataset"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def save_upload(name: str, data: bytes) -> Path:
    """Store an uploaded file under <workspace>/datasets/ with a sanitized name (atomic write)."""
    fname = safe_filename(name)
    if data_suffix(fname) not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type `{''.join(Path(fname).suffixes[-2:]) or '(none)'}`", file=fname,
                        hint=f"Use one of {', '.join(SUPPORTED_SUFFIXES)}, optionally gzipped (.jsonl.gz).")
    folder = datasets_dir().resolve()
    target = (folder / fname).resolve()
    if target.parent != folder:  # belt and braces: safe_filename already forbids this
        raise DataError("this file name cannot be stored", file=fname, hint="Rename the file and upload it again.")
    if not target.exists() or target.read_bytes() != data:
        tmp = folder / f".{fname}.{secrets.token_hex(3)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target


def registered_datasets() -> dict[str, dict]:
    """The workspace's catalog (core.catalog): name → entry with train_file / eval_file."""
    return catalog.list_datasets(workspace())


def list_datasets() -> list[dict]:
    """Sample datasets shipped in assets/, the files uploaded into the workspace, then the registered
    datasets' train and eval files."""
    items = [{"path": str(p), "name": p.name, "source": "sample"} for p in sorted(SAMPLES_DIR.glob("*.jsonl"))]
    for p in sorted(datasets_dir().iterdir()):
        if p.is_file() and data_suffix(p) in SUPPORTED_SUFFIXES and not p.name.startswith("."):
            items.append({"path": str(p), "name": p.name, "source": "uploaded"})
    for name, entry in sorted(registered_datasets().items()):
        for key, label in (("train_file", name), ("eval_file", f"{name} (eval)")):
            if entry.get(key) and Path(entry[key]).exists():
                items.append({"path": entry[key], "name": label, "source": "registered"})
    return items


def sibling_eval(path: str | Path | None) -> str | None:
    """`x_train.jsonl` → `x_eval.jsonl` (the samples), or a registered dataset's `train.jsonl` →
    `eval.jsonl`, when that file exists."""
    if not path:
        return None
    name = Path(path).name
    if name == "train.jsonl":
        other = Path(path).with_name("eval.jsonl")
    elif "_train" in name:
        other = Path(path).with_name(name.replace("_train", "_eval"))
    else:
        return None
    return str(other) if other.exists() else None


def dataset_name(path: str | Path, suffix: str = "") -> str:
    """A catalog name for a file: its stem (a registered dataset's own name), reduced to what
    core.catalog accepts, with `suffix` appended."""
    p = Path(path)
    if p.name in ("train.jsonl", "eval.jsonl"):
        stem = p.parent.name
    else:
        stem = Path(p.name[:-3] if p.name.lower().endswith(".gz") else p.name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).lstrip("._-")[: 64 - len(suffix)].rstrip(".-_") or "dataset"
    return stem + suffix


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
    from core.datacheck import check_dataset

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
    from core.datacheck import token_preflight

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
    """(train rows, eval rows) that core.catalog.split_examples gives the valid rows. Raises DataError,
    or TypeError when a SEQ column mixes numbers and text."""
    return _split(str(path), format, input_column, output_column, method, float(eval_fraction), column,
                  _mtime(path))


def dataset_columns(path: str | Path) -> list[str]:
    return _columns(str(path), _mtime(path))


def show_data_error(e: DataError) -> None:
    where = ", ".join(p for p in (f"`{Path(e.file).name}`" if e.file else "",
                                  f"line {e.line}" if e.line is not None else "",
                                  f"field `{e.field}`" if e.field else "") if p)
    text = f"**{where}:** {e.message}" if where else e.message
    st.error(f"{text}\n\n{e.hint}" if e.hint else text, icon=":material/report:")


def looks_like_labels(ds: Dataset) -> bool:
    """Answers drawn from a small set of values (classes) rather than free text."""
    n = len(set(e["output_text"] for e in ds.examples if "output_text" in e))
    return 1 < n <= 50 and n <= 0.5 * len(ds)


def seed_choice(key: str, options: list, default) -> None:
    """Give a selectbox its starting value through session state (never both index and state), and
    repair a value that is no longer among the options (a deleted run, another workspace)."""
    if st.session_state.get(key, object()) not in options:
        st.session_state[key] = default if default in options else options[0]


def default_dataset(items: list[dict] | None = None) -> str | None:
    """The dataset in use (chosen on the Datasets page), else the first training sample."""
    items = list_datasets() if items is None else items
    paths = [d["path"] for d in items]
    active = st.session_state.get("active_dataset")
    return active if active in paths else next((p for p in paths if "_train" in Path(p).name), None)


def pick_dataset(label: str, key: str, *, optional: bool = False, none_label: str = "None",
                 default: str | None = None, help: str | None = None) -> str | None:
    """A selectbox over sample and uploaded datasets; returns a path (or None when optional)."""
    items = list_datasets()
    names = {d["path"]: f"{d['name']}  ·  {d['source']}" for d in items}
    options = ([NONE] if optional else []) + list(names)
    if not options:
        st.info("No datasets yet: add one on the Datasets page.")
        return None
    if default is None and not optional:
        default = default_dataset(items)
    seed_choice(key, options, default or NONE)
    chosen = st.selectbox(label, options, key=key, help=help,
                          format_func=lambda p: none_label if p == NONE else names.get(p, Path(p).name))
    return chosen or None


def ask_columns(path: str, columns: list[str], key: str) -> tuple[str, str] | None:
    """Ask which columns hold the prompt and the answer (remembered for this session); None while
    both name the same column."""
    st.info("The prompt and answer columns were not recognised. Choose them here, or name them "
            "`input_text` and `output_text` in the file.", icon=":material/table_view:")
    saved = st.session_state.setdefault("column_map", {}).get(path, (columns[0], columns[-1]))
    c1, c2 = st.columns(2)
    inp = c1.selectbox("Prompt column", columns, key=f"{key}_in",
                       index=columns.index(saved[0]) if saved[0] in columns else 0)
    out = c2.selectbox("Answer column", columns, key=f"{key}_out",
                       index=columns.index(saved[1]) if saved[1] in columns else len(columns) - 1)
    st.session_state["column_map"][path] = (inp, out)
    if inp == out:
        st.warning("The prompt and the answer must come from different columns.")
        return None
    return inp, out


def dataset_with_mapping(path: str, key: str) -> Dataset | None:
    """Load and validate a dataset. When its prompt/answer columns are not recognised (and it is not
    a chat file), ask which columns to use. Shows the DataError and returns None on failure."""
    try:
        columns = dataset_columns(path)
        inp = out = None
        if detect_columns(columns) is None and detect_format(columns) not in ("chat", "preference"):
            mapping = ask_columns(path, columns, key)
            if mapping is None:
                return None
            inp, out = mapping
        return load_dataset(path, inp, out)
    except DataError as e:
        show_data_error(e)
        return None


# ---------------------------------------------------------------- runs

def run_label(r: dict) -> str:
    status, config = r["status"], r["config"]
    name = status.get("name") or r["run_id"]
    head = r["run_id"] if name == r["run_id"] else f"{name} ({r['run_id']})"
    return f"{head}  ·  {config.get('task', '?').replace('_', ' ')}  ·  {status.get('state', '?')}"


def finished_runs(ws: Path) -> list[dict]:
    """Runs whose adapter can be loaded: succeeded, or cancelled after saving what was trained."""
    return [r for r in runs.list_runs(ws)
            if r["status"].get("state") in ("succeeded", "cancelled") and (Path(r["run_dir"]) / "adapter").is_dir()]


def pick_run(label: str, key: str, items: list[dict], *, none_label: str | None = None,
             default: str | None = None, help: str | None = None) -> dict | None:
    """A selectbox over runs (newest first); with none_label, "no run" is the first choice."""
    by_id = {r["run_id"]: r for r in items}
    options = ([NONE] if none_label else []) + list(by_id)
    if not options:
        return None
    seed_choice(key, options, default or NONE)
    chosen = st.selectbox(label, options, key=key, help=help,
                          format_func=lambda i: none_label if i == NONE else run_label(by_id[i]))
    return by_id.get(chosen)


def pick_run_and_model(ws: Path, key: str, run_help: str) -> tuple[dict | None, dict, str]:
    """The "tuned run + base model" pair the Playground and Evaluate pages start from: a finished run
    (or none), its config, and the base model (the run's own, or typed in when there is no run)."""
    c1, c2 = st.columns([3, 2])
    with c1:
        finished = finished_runs(ws)
        run = pick_run("Tuned run", key=f"{key}_run", items=finished,
                       default=finished[0]["run_id"] if finished else None,
                       none_label="None: base model only", help=run_help)
    config = (runs.read_json(Path(run["run_dir"]) / "config.json", {}) or {}) if run else {}
    with c2:
        if run:
            model = config.get("model") or BUNDLED_MODEL
            st.text_input("Base model", value=model, disabled=True, key=f"{key}_model_of::{run['run_id']}",
                          help="A run is always compared with the base model it was tuned from.")
        else:
            model = st.text_input("Base model", value=BUNDLED_MODEL, key=f"{key}_model",
                                  help="The bundled default, a Hugging Face model id or a local model folder.")
    return run, config, model.strip() or BUNDLED_MODEL


def chart(fig) -> None:
    """A plotly figure at full width, without the plotly toolbar."""
    st.plotly_chart(fig, config={"displayModeBar": False})


def status_badge(state: str | None) -> None:
    color, icon = STATE_BADGES.get(state or "", ("gray", ":material/help:"))
    st.badge((state or "unknown").capitalize(), color=color, icon=icon)


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "–"
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# ---------------------------------------------------------------- models (cached, shared by all users)

@st.cache_resource(max_entries=2, show_spinner=False)
def _model(model_name: str, adapter: str | None, ws: str):
    from core.models import load_model as core_load_model

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
    from core.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(model_name, ws))


def load_tokenizer(model_name: str):
    return _tokenizer(model_name, str(workspace()))


def tokenizer_ready(model_name: str) -> bool:
    """Whether the tokenizer loads in about a second: a local folder, or the bundled model once it has
    been converted (the first conversion takes ~30 s, so the page asks before starting it)."""
    from core.models import bundled_model_dir

    name = (model_name or BUNDLED_MODEL).strip()
    if name == BUNDLED_MODEL:
        return (bundled_model_dir(workspace()) / "model.safetensors").exists()
    return Path(name).expanduser().is_dir()


# ---------------------------------------------------------------- evaluations

def eval_status(out_dir: Path) -> dict:
    """status.json of an evaluation job (a dead job reads as failed, see core.runs.read_status)."""
    status = runs.read_status(out_dir)
    if (out_dir / "metrics.json").exists():  # written just before the final status
        return {**status, "state": "succeeded"}
    return status


def list_evaluations(ws: Path) -> list[dict]:
    """Evaluation folders of every run and of the workspace, newest first."""
    found = [(d, d.parent.parent.name) for d in runs.runs_dir(ws).glob("*/evals/*")]
    found += [(d, None) for d in (ws / "evals").glob("*")]
    out = []
    for d, run_id in found:
        if d.is_dir() and ((d / "metrics.json").exists() or (d / "status.json").exists()):
            out.append({"dir": str(d), "name": d.name, "run_id": run_id, "status": eval_status(d),
                        "mtime": _mtime(d / "status.json") or _mtime(d / "metrics.json")})
    return sorted(out, key=lambda e: e["mtime"], reverse=True)


@st.cache_data(show_spinner=False, max_entries=32)
def _evaluation(out_dir: str, mtime: int) -> tuple[dict, pd.DataFrame]:
    metrics = runs.read_json(Path(out_dir) / "metrics.json", {}) or {}
    path = Path(out_dir) / "predictions.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.exists() else []
    return metrics, pd.DataFrame(rows)  # built from dicts: no dtype guessing on the answers


def read_evaluation(out_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(metrics.json, predictions as a DataFrame) of a finished evaluation, cached per file version."""
    return _evaluation(str(out_dir), _mtime(Path(out_dir) / "metrics.json"))


@st.cache_data(show_spinner="Scoring the answers row by row…", max_entries=16)
def _scored(out_dir: str, mtime: int) -> pd.DataFrame:
    from core.evaluate import row_change  # the rule `studio evaluate` applies to new evaluations
    from core.metrics import row_scores

    metrics, df = _evaluation(out_dir, mtime)
    df = df.copy()
    if df.empty or "base_score" in df:
        return df
    # Written before per-row scores existed: score them now the way core.evaluate does.
    labels = [r["label"] for r in (metrics.get("base") or {}).get("per_label", [])]
    refs = df["reference"].astype(str).tolist()
    for name in ("base", "tuned"):
        if name in df:
            answers = [None if a is None or (isinstance(a, float) and a != a) else str(a) for a in df[name]]
            df[f"{name}_score"] = row_scores(metrics.get("task", ""), refs, answers, labels)
    if "tuned_score" in df:
        changes = [row_change(None if pd.isna(b) else b, None if pd.isna(t) else t)
                   for b, t in zip(df["base_score"], df["tuned_score"])]
        df["delta"], df["change"] = [d for d, _ in changes], [c for _, c in changes]
    return df


def scored_predictions(out_dir: str | Path) -> pd.DataFrame:
    """predictions.jsonl with base_score / tuned_score / delta / change on every row, also for an
    evaluation written before `studio evaluate` stored them; cached per file version."""
    return _scored(str(out_dir), _mtime(Path(out_dir) / "metrics.json"))


NEW_QUEUE = "\x00new"


def queue_target(key: str, queues: list[str], default_new: str) -> str:
    """Where preference pairs go: an existing labelling queue (the newest first chosen) or a new name.
    Returns the queue name (maybe empty or invalid: core.preferences says so when it is used)."""
    options = [NEW_QUEUE, *queues]
    seed_choice(key, options, queues[-1] if queues else NEW_QUEUE)
    c1, c2 = st.columns(2)
    target = c1.selectbox("Preference queue", options, key=key,
                          format_func=lambda n: "New queue…" if n == NEW_QUEUE else n)
    if target != NEW_QUEUE:
        return target
    return c2.text_input("New queue name", value=default_new, key=f"{key}_new",
                         help="Letters, digits, '.', '-' and '_'; up to 64.").strip()


def confirm_delete(state_key: str, item: str, message: str, on_delete, args: tuple, key: str) -> None:
    """The "are you sure?" row under a Delete button, shown while session_state[state_key] == item."""
    if st.session_state.get(state_key) != item:
        return
    st.warning(message, icon=":material/delete:")
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Delete for good", type="primary", key=f"{key}_delok::{item}", on_click=on_delete, args=args)
    b2.button("Keep it", key=f"{key}_delno::{item}", on_click=lambda: st.session_state.update({state_key: None}))
