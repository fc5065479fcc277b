"""Widgets more than one page uses: the sidebar, pickers of datasets and runs, badges, charts, the
data-error box, the delete confirmation and messages left by button callbacks. Cached reads live in
studio.cached; decisions live in core."""
from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from core.config import BUNDLED_MODEL
from core.data import SUPPORTED_SUFFIXES, Dataset, DataError, detect_columns, detect_format
from core import job_queue, runs
from core.names import CONFIG_FILE, TASK_NAMES
from studio.cached import check_report, dataset_columns, list_datasets, load_dataset, workspace

STATE_BADGES = {"queued": ("gray", ":material/schedule:"), "running": ("blue", ":material/sync:"),
                "succeeded": ("green", ":material/check_circle:"), "failed": ("red", ":material/error:"),
                "cancelled": ("orange", ":material/cancel:")}
# What the upload widget accepts: every readable type, plain or gzipped.
UPLOAD_TYPES = [t for s in SUPPORTED_SUFFIXES for t in (s[1:], f"{s[1:]}.gz")]
# The "no dataset / no run" choice of a selectbox: a None option would show as an empty selectbox.
NONE = ""


# ---------------------------------------------------------------- workspace and datasets

def sidebar() -> None:
    """The brand above the page list, and where runs and uploads are stored below it."""
    here = Path(__file__).resolve().parent
    st.logo(str(here / "logo.svg"), icon_image=str(here / "logo_icon.svg"), size="large")
    with st.sidebar:
        st.caption(f":material/folder_open: Workspace  \n`{workspace()}`")


def show_data_error(e: DataError) -> None:
    where = ", ".join(p for p in (f"`{Path(e.file).name}`" if e.file else "",
                                  f"line {e.line}" if e.line is not None else "",
                                  f"field `{e.field}`" if e.field else "") if p)
    text = f"**{where}:** {e.message}" if where else e.message
    st.error(f"{text}\n\n{e.hint}" if e.hint else text, icon=":material/report:")


def show_setting_error(e: Exception) -> None:
    """A request the configs refused (ConfigError or ValueError): the setting and what to change."""
    st.error(f"**Setting problem:** {e}", icon=":material/tune:")


def show_request_error(e: ValueError) -> None:
    """A refused request: a data problem with its file, line and field, else a setting problem."""
    if isinstance(e, DataError):
        show_data_error(e)
    else:
        show_setting_error(e)


def show_failure(what: str, status: dict) -> None:
    """A failed job's cause, and its hint (what to do next) when the worker recorded one."""
    st.error(f"**{what} failed:** {status.get('error') or 'unknown error'}", icon=":material/error:")
    if status.get("hint"):
        st.info(status["hint"], icon=":material/lightbulb:")


def show_unexpected_error(e: Exception) -> None:
    """A page failed in a way no page handles: a one-line cause for the user, the traceback in a Details
    expander and in the server log (stderr), never a bare traceback in the browser."""
    logging.getLogger("studio.pages").error("a page failed: %s: %s", type(e).__name__, e, exc_info=e)
    cause = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    cause = f"{type(e).__name__}: {cause[:300]}" if cause else type(e).__name__
    st.error(f"**Something went wrong on this page.** {cause}\n\nReload the page to try again; the details "
             "below are in the server log too.", icon=":material/error:")
    with st.expander("Details"):
        # st.exception shows the whole traceback (showErrorDetails redacts only what Streamlit catches), and
        # is what AppTest lists in `at.exception`, so page tests still fail on a page that raised.
        st.exception(e)


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


def usable_upload(item: dict) -> bool:
    """Whether a listed file passed the check (registered sets and samples always have)."""
    if item["source"] != "uploaded":
        return True
    try:
        return bool(check_report(item["path"]).get("usable"))
    except (DataError, ValueError, KeyError, TypeError):
        return False


def pick_dataset(label: str, key: str, *, optional: bool = False, none_label: str = "None",
                 default: str | None = None, help: str | None = None, hide_broken: bool = True) -> str | None:
    """A selectbox over registered, sample and uploaded datasets (in that order); returns a path (or None
    when optional). Uploads that fail the check are left out, and the caption says how many."""
    items = list_datasets()
    hidden = [d for d in items if not usable_upload(d)] if hide_broken else []
    items = [d for d in items if d not in hidden]
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
    if hidden:
        st.caption(f":material/visibility_off: {len(hidden)} uploaded file{'s' * (len(hidden) > 1)} with problems "
                   f"not listed ({', '.join(Path(d['path']).name for d in hidden[:3])}"
                   f"{' …' if len(hidden) > 3 else ''}): the Datasets page shows what is wrong.")
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

def run_label(r: dict, state: bool = True) -> str:
    status, config = r["status"], r["config"]
    name = status.get("name") or r["run_id"]
    head = r["run_id"] if name == r["run_id"] else f"{name} ({r['run_id']})"
    return f"{head}  ·  {TASK_NAMES.get(config.get('task'), '?')}" + (f"  ·  {status.get('state', '?')}" if state else "")


def pick_run(label: str, key: str, items: list[dict], *, none_label: str | None = None,
             default: str | None = None, help: str | None = None, states: bool = True) -> dict | None:
    """A selectbox over runs (newest first); with none_label, "no run" is the first choice. `states=False`
    leaves each run's state out of its label where it changes while the page is open: the browser keeps
    showing the label the chosen run had when it was picked (a finished run read "queued")."""
    by_id = {r["run_id"]: r for r in items}
    options = ([NONE] if none_label else []) + list(by_id)
    if not options:
        return None
    seed_choice(key, options, default or NONE)
    chosen = st.selectbox(label, options, key=key, help=help,
                          format_func=lambda i: none_label if i == NONE else run_label(by_id[i], states))
    return by_id.get(chosen)


def pick_run_and_model(ws: Path, key: str, run_help: str) -> tuple[dict | None, dict, str]:
    """The "tuned run + base model" pair the Playground and Evaluate pages start from: a finished run
    (or none), its config, and the base model (the run's own, or typed in when there is no run)."""
    c1, c2 = st.columns([3, 2])
    with c1:
        finished = runs.finished_runs(ws)
        run = pick_run("Tuned run", key=f"{key}_run", items=finished,
                       default=finished[0]["run_id"] if finished else None,
                       none_label="None: base model only", help=run_help)
    config = (runs.read_json(Path(run["run_dir"]) / CONFIG_FILE, {}) or {}) if run else {}
    with c2:
        if run:
            model = config.get("model") or BUNDLED_MODEL
            st.text_input("Base model", value=model, disabled=True, key=f"{key}_model_of::{run['run_id']}",
                          help="A run is always compared with the base model it was tuned from.")
        else:
            model = st.text_input("Base model", value=BUNDLED_MODEL, key=f"{key}_model",
                                  help="The bundled default, a Hugging Face model id or a local model folder.")
    return run, config, model.strip() or BUNDLED_MODEL


def chart(fig, key: str | None = None) -> None:
    """A plotly figure at full width, without the plotly toolbar. Two equal figures on one page (base and
    tuned that answered alike) need a key each."""
    st.plotly_chart(fig, config={"displayModeBar": False}, key=key)


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


# ---------------------------------------------------------------- messages from callbacks

def say(kind: str, text: str, key: str = "run_message") -> None:
    """A message from a button callback, shown on the next run of the panel (callbacks cannot draw);
    `key` keeps one panel's messages from showing in another."""
    st.session_state[key] = (kind, text)


def show_message(key: str = "run_message") -> None:
    kind, text = st.session_state.pop(key, (None, None))
    if kind:
        getattr(st, kind)(text)


# ---------------------------------------------------------------- a stepped job (embedding, image tuning)

def job_label(job: dict) -> str:
    """A job in a picker: its name, state and when it was made."""
    s = job["status"]
    return f"{s.get('name') or job['id']}  ·  {s.get('state')}  ·  {str(s.get('created', ''))[:16]}"


def step_progress(job_dir: Path, status: dict) -> None:
    """A queued job's place in the queue, or a running job's step, phase and time left."""
    state, step, total = status.get("state"), int(status.get("step") or 0), int(status.get("max_steps") or 1)
    if state == "queued":
        place = job_queue.position(job_queue.workspace_of(job_dir), job_dir.name)
        st.progress(0.0, text=f"Waiting: position {place[0]} of {place[1]} in the queue" if place else "Starting…")
    elif state == "running":
        eta = f" · about {fmt_duration(status['eta_s'])} left" if status.get("eta_s") else ""
        st.progress(min(1.0, step / total), text=f"Step {step} of {total} · {status.get('phase') or 'starting'}{eta}")
