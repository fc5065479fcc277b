"""What the studio pages share: the only home of Streamlit caches, plus the pickers, badges and charts
more than one page uses. Nothing here trains, and torch is only ever reached through core."""
from __future__ import annotations

import os
import re
import secrets
import threading
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import runs
from core.data import SUPPORTED_SUFFIXES, Dataset, DataError, detect_columns, read_table
from core.data import load_dataset as core_load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "assets"
PRIMARY = "#4F46E5"
BASE_COLOR = "#94A3B8"
TUNED_COLOR = PRIMARY
EVAL_COLOR = "#F59E0B"
STATE_BADGES = {"queued": ("gray", ":material/schedule:"), "running": ("blue", ":material/sync:"),
                "succeeded": ("green", ":material/check_circle:"), "failed": ("red", ":material/error:"),
                "cancelled": ("orange", ":material/cancel:")}
ACTIVE_STATES = ("queued", "running")


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
    if Path(fname).suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type `{Path(fname).suffix or '(none)'}`", file=fname,
                        hint=f"Use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    folder = datasets_dir().resolve()
    target = (folder / fname).resolve()
    if target.parent != folder:  # belt and braces: safe_filename already forbids this
        raise DataError("this file name cannot be stored", file=fname, hint="Rename the file and upload it again.")
    if not target.exists() or target.read_bytes() != data:
        tmp = folder / f".{fname}.{secrets.token_hex(3)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target


def list_datasets() -> list[dict]:
    """Sample datasets shipped in assets/, then the files uploaded into the workspace."""
    items = [{"path": str(p), "name": p.name, "source": "sample"} for p in sorted(SAMPLES_DIR.glob("*.jsonl"))]
    for p in sorted(datasets_dir().iterdir()):
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith("."):
            items.append({"path": str(p), "name": p.name, "source": "uploaded"})
    return items


def sibling_eval(path: str | Path | None) -> str | None:
    """`x_train.jsonl` → `x_eval.jsonl` when that file exists (the samples come in such pairs)."""
    if not path or "_train" not in Path(path).name:
        return None
    other = Path(path).with_name(Path(path).name.replace("_train", "_eval"))
    return str(other) if other.exists() else None


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
    n = len(set(e["output_text"] for e in ds.examples))
    return 1 < n <= 50 and n <= 0.5 * len(ds)


def seed_choice(key: str, options: list, default) -> None:
    """Give a selectbox its starting value through session state (never both index and state), and
    repair a value that is no longer among the options (a deleted run, another workspace)."""
    if st.session_state.get(key, object()) not in options:
        st.session_state[key] = default if default in options else options[0]


def pick_dataset(label: str, key: str, *, optional: bool = False, none_label: str = "None",
                 default: str | None = None, help: str | None = None) -> str | None:
    """A selectbox over sample and uploaded datasets; returns a path (or None when optional)."""
    items = list_datasets()
    names = {d["path"]: f"{d['name']}  ·  {d['source']}" for d in items}
    options = ([None] if optional else []) + list(names)
    if not options:
        st.info("No datasets yet: add one on the Datasets page.")
        return None
    if default is None and not optional:  # the dataset in use on the Datasets page, else a training sample
        default = st.session_state.get("active_dataset") or next(
            (p for p in names if "_train" in Path(p).name), None)
    seed_choice(key, options, default)
    return st.selectbox(label, options, key=key, help=help,
                        format_func=lambda p: none_label if p is None else names.get(p, Path(p).name))


def dataset_with_mapping(path: str, key: str) -> Dataset | None:
    """Load and validate a dataset. When its prompt/answer columns are not recognised, ask which
    columns to use (remembered for this session). Shows the DataError and returns None on failure."""
    try:
        columns = dataset_columns(path)
        inp = out = None
        if detect_columns(columns) is None:
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
    options = ([None] if none_label else []) + list(by_id)
    if not options:
        return None
    seed_choice(key, options, default)
    chosen = st.selectbox(label, options, key=key, help=help,
                          format_func=lambda i: none_label if i is None else run_label(by_id[i]))
    return by_id.get(chosen)


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


# ---------------------------------------------------------------- evaluations

def eval_status(out_dir: Path) -> dict:
    """status.json of an evaluation job; a job whose process is gone without finishing reads as failed
    (with the last error line of its log), so the page never waits forever."""
    status = runs.read_json(out_dir / "status.json", {}) or {}
    if (out_dir / "metrics.json").exists():
        return {**status, "state": "succeeded"}
    if status.get("state") in ACTIVE_STATES and not runs.pid_alive(status.get("pid")):
        if time.time() - float(status.get("heartbeat_ts", 0)) > 2 * runs.HEARTBEAT_EVERY:
            log = runs.log_tail(out_dir, 40).splitlines()
            errors = [x for x in log if x.startswith("error:") or "Error" in x]
            status = {**status, "state": "failed",
                      "error": status.get("error") or (errors[-1] if errors else "The evaluation stopped unexpectedly.")}
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
    preds = pd.read_json(path, lines=True) if path.exists() and path.stat().st_size else pd.DataFrame()
    return metrics, preds


def read_evaluation(out_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(metrics.json, predictions as a DataFrame) of a finished evaluation, cached per file version."""
    return _evaluation(str(out_dir), _mtime(Path(out_dir) / "metrics.json"))


# ---------------------------------------------------------------- charts

def _style(fig: go.Figure, height: int, **layout) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=8, r=8, t=36, b=8), legend=dict(
        orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0), **layout)
    return fig


def loss_figure(metrics: list[dict]) -> go.Figure | None:
    """Train loss and eval loss against the step, from metrics.jsonl records."""
    train = [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None]
    evals = [(m["step"], m["eval_loss"]) for m in metrics if m.get("eval_loss") is not None]
    if not train and not evals:
        return None
    fig = go.Figure()
    if train:
        fig.add_scatter(x=[s for s, _ in train], y=[v for _, v in train], name="Train loss", mode="lines",
                        line=dict(color=TUNED_COLOR, width=2))
    if evals:
        fig.add_scatter(x=[s for s, _ in evals], y=[v for _, v in evals], name="Eval loss", mode="lines+markers",
                        line=dict(color=EVAL_COLOR, width=2, dash="dot"), marker=dict(size=8))
    fig.update_xaxes(title="Step", rangemode="tozero")
    fig.update_yaxes(title="Loss")
    return _style(fig, 320, hovermode="x unified")


def label_distribution_figure(counts: dict[str, int]) -> go.Figure:
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color=PRIMARY, text=[v for _, v in items], textposition="outside"))
    fig.update_xaxes(title="Examples")
    return _style(fig, max(260, 22 * len(items) + 80))


def length_figure(lengths: list[int], title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=30, marker_color=PRIMARY, opacity=0.85))
    fig.update_xaxes(title=title)
    fig.update_yaxes(title="Examples")
    return _style(fig, 260, bargap=0.05)


def per_class_f1_figure(base: dict, tuned: dict | None) -> go.Figure:
    """Per-class F1 heatmap: rows are classes; columns base and tuned on a sequential scale, and the
    tuned − base difference on a diverging scale centred on zero."""
    b = {r["label"]: r["f1_score"] for r in base["per_label"]}
    t = {r["label"]: r["f1_score"] for r in tuned["per_label"]} if tuned else {}
    labels = list(b)
    cols = ["Base F1"] + (["Tuned F1"] if tuned else [])
    z = [[b[lab]] + ([t.get(lab, 0.0)] if tuned else []) for lab in labels]
    fig = go.Figure()
    fig.add_heatmap(z=z, x=cols, y=labels, zmin=0, zmax=1, colorscale=[[0, "#F1F5F9"], [1, PRIMARY]],
                    texttemplate="%{z:.2f}", hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
                    xgap=2, ygap=2, colorbar=dict(title="F1", len=0.45, y=1, yanchor="top", thickness=12))
    if tuned:
        d = [[t.get(lab, 0.0) - b[lab]] for lab in labels]
        fig.add_heatmap(z=d, x=["Δ tuned − base"], y=labels, zmid=0, zmin=-1, zmax=1, colorscale="RdBu",
                        texttemplate="%{z:+.2f}", hovertemplate="%{y}: %{z:+.3f}<extra></extra>", xgap=2, ygap=2,
                        colorbar=dict(title="Δ", len=0.45, y=0, yanchor="bottom", thickness=12))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(side="top", type="category")
    return _style(fig, max(320, 26 * len(labels) + 90))


def confusion_figure(cm: dict) -> go.Figure:
    """Rows are the true labels, columns the predicted ones (the last column collects off-label answers)."""
    labels, matrix = list(cm["labels"]), [list(r) for r in cm["matrix"]]
    rows = labels
    if labels and labels[-1].startswith("(") and not any(matrix[-1]):  # nothing is truly off-label
        rows, matrix = labels[:-1], matrix[:-1]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=rows, colorscale=[[0, "#FFFFFF"], [1, PRIMARY]],
                               texttemplate="%{z}", xgap=1, ygap=1, showscale=False,
                               hovertemplate="true %{y} → predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="True label", type="category")
    fig.update_xaxes(title="Predicted label", type="category", tickangle=-45)
    return _style(fig, max(380, 24 * len(rows) + 160))


def rouge_figure(base: dict, tuned: dict | None, kind: str = "f1") -> go.Figure:
    names = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]
    fig = go.Figure()
    for label, m, color in (("Base", base, BASE_COLOR), ("Tuned", tuned, TUNED_COLOR)):
        if m:
            vals = [m.get(f"{k}_{kind}", 0.0) for k, _ in names]
            fig.add_bar(x=[n for _, n in names], y=vals, name=label, marker_color=color,
                        text=[f"{v:.3f}" for v in vals], textposition="outside")
    fig.update_yaxes(title=kind.capitalize() if kind != "f1" else "F1", rangemode="tozero")
    return _style(fig, 340, barmode="group")
