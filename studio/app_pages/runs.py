"""Runs: every tuning run in the workspace, filtered by text and state; open one to watch, rename or
delete it; choose two or more to compare their curves and the settings that differ."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core import job_queue, jobs, runs
from studio import cached, charts, queue_views, run_views, ui


def local_time(iso: str | None):
    try:
        return datetime.fromisoformat(iso).astimezone().replace(tzinfo=None) if iso else None
    except ValueError:
        return None


STATE_COLORS = {"queued": "#64748B", "running": "#2563EB", "succeeded": "#15803D", "failed": "#DC2626",
                "cancelled": "#C2410C"}


def table(rows: list[dict]):
    """The runs as a table, the state coloured as its badge is elsewhere."""
    df = pd.DataFrame([{
        "Name": r["name"], "Status": r["state"] or "?", "Base model": (r["model"] or "?").replace("bundled:", ""),
        "Dataset": r["dataset"], "Steps": f"{r['steps'] or 0} / {r['max_steps'] or '?'}",
        "Best eval loss": r["best_eval_loss"], "Duration": ui.fmt_duration(r["duration_s"]) if r["duration_s"] else "–",
        "Created": local_time(r["created"])} for r in rows])
    return df.style.map(lambda s: f"color: {STATE_COLORS.get(s, '#1F2333')}; font-weight: 600", subset=["Status"])


def matches(row: dict, text: str, states: list[str]) -> bool:
    if states and row["state"] not in states:
        return False
    hay = " ".join(str(row.get(k) or "") for k in ("name", "run_id", "model", "dataset", "task")).lower()
    return all(word in hay for word in text.lower().split())


# ---------------------------------------------------------------- rename and delete

def _rename(run_dir: Path) -> None:
    try:
        runs.rename(run_dir, st.session_state[f"runs_name::{run_dir.name}"])
    except ValueError as e:
        st.session_state["runs_error"] = str(e)
    else:
        st.session_state["runs_done"] = "Name saved."


def _delete(run_dir: Path) -> None:
    st.session_state["runs_delete"] = None
    try:
        jobs.delete_run(run_dir)  # out of the queue first, if it waits there
    except ValueError as e:
        st.session_state["runs_error"] = f"**Not deleted:** {e}"
    else:
        st.session_state["runs_pick"] = [i for i in st.session_state.get("runs_pick", []) if i != run_dir.name]
        st.session_state["runs_done"] = f"Deleted run {run_dir.name}."


def manage(item: dict) -> None:
    run_dir, status = Path(item["run_dir"]), item["status"]
    run_id = item["run_id"]
    with st.container(border=True):
        c = st.columns([4, 1, 1], vertical_alignment="bottom")
        c[0].text_input("Name", value=status.get("name") or run_id, key=f"runs_name::{run_id}", max_chars=100)
        c[1].button("Save name", key=f"runs_rename::{run_id}", on_click=_rename, args=(run_dir,), width="stretch",
                    icon=":material/edit:")
        c[2].button("Delete", key=f"runs_del::{run_id}", width="stretch", icon=":material/delete:",
                    on_click=lambda: st.session_state.update(runs_delete=run_id))
        ui.confirm_delete("runs_delete", run_id, f"Delete **{status.get('name') or run_id}**? Its folder goes: "
                          "adapter, checkpoints, metrics, evaluations and log. This cannot be undone.",
                          _delete, (run_dir,), key="runs")


# ---------------------------------------------------------------- several runs

def cell(value) -> str:
    """A config value as a table cell."""
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def compare_view(run_dirs: list[Path]) -> None:
    """Curves overlaid (one colour per run), the headline numbers, and the settings that differ."""
    data = runs.compare(run_dirs)
    names = [r["name"] for r in data["runs"]]
    labels = [n if names.count(n) == 1 else f"{n} ({r['run_id'][-4:]})" for n, r in zip(names, data["runs"])]
    st.subheader(f"Comparing {len(labels)} runs")
    fig = charts.compare_loss_figure([(label, data["metrics"][r["run_id"]]) for label, r in zip(labels, data["runs"])])
    if fig is not None:
        ui.chart(fig)
    else:
        st.caption("None of these runs has logged a step yet.")
    rows = []
    for label, r in zip(labels, data["runs"]):
        metrics = data["metrics"][r["run_id"]]
        train = [m["loss"] for m in metrics if m.get("loss") is not None]
        best = r["best_eval_loss"], r["best_step"]
        rows.append({"Run": label, "Status": r["state"], "Steps": f"{r['steps']} / {r['max_steps']}",
                     "Last train loss": train[-1] if train else None, "Best eval loss": best[0], "Best step": best[1],
                     "Duration": ui.fmt_duration(r["duration_s"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={"Last train loss": st.column_config.NumberColumn(format="%.4f"),
                                "Best eval loss": st.column_config.NumberColumn(format="%.4f")})
    st.markdown("**Settings that differ**")
    diff = data["config_diff"]
    if not diff:
        st.caption("All settings are the same.")
        return
    table = pd.DataFrame({label: [cell(v[i]) for v in diff.values()] for i, label in enumerate(labels)},
                         index=pd.Index(list(diff), name="Setting"))
    st.dataframe(table, column_config={"_index": st.column_config.TextColumn("Setting", width=190, pinned=True)})


# ---------------------------------------------------------------- the page

st.title("Runs")
st.caption("Every tuning run in this workspace. Choose one to watch, rename or delete it; choose two or more to "
           "compare their curves and settings.")
ws = cached.workspace()
for key, show in (("runs_error", st.error), ("runs_done", st.success)):
    if st.session_state.get(key):
        show(st.session_state.pop(key))
if job_queue.queue(ws):  # every kind of job waiting for the device, in order, with ETAs
    queue_views.live_queue(ws)
items = runs.list_runs(ws)
if not items:
    st.info("No runs yet: start one on the **Tune** page.", icon=":material/info:")
    st.stop()

by_id = {r["run_id"]: r for r in items}
rows = [runs.summary(r) for r in items]
c1, c2 = st.columns([2, 3])
text = c1.text_input("Filter", key="runs_filter", placeholder="Name, run id, model, dataset or task")
states = c2.pills("State", runs.STATES, selection_mode="multi", key="runs_states",
                  format_func=lambda s: f"{ui.STATE_BADGES[s][1]} {s}") or []
shown = [r for r in rows if matches(r, text, states)]
if shown:
    st.dataframe(table(shown), hide_index=True, height=min(420, 35 * len(shown) + 38),
                 column_config={"Name": st.column_config.TextColumn(pinned=True, width=172),
                                "Status": st.column_config.TextColumn(width=82),
                                "Base model": st.column_config.TextColumn(width=165),
                                "Dataset": st.column_config.TextColumn(width=152),
                                "Steps": st.column_config.TextColumn(width=62),
                                "Best eval loss": st.column_config.NumberColumn(format="%.4f", width=95),
                                "Duration": st.column_config.TextColumn(width=88),
                                "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", width=125)})
st.caption(f"{len(shown)} of {len(rows)} runs shown" if len(shown) < len(rows) else f"{len(rows)} runs")

# Chosen runs stay chosen while the filter hides them; deleted ones are dropped.
picked = [i for i in st.session_state.get("runs_pick", []) if i in by_id]
st.session_state["runs_pick"] = picked
options = [r["run_id"] for r in shown] + [i for i in picked if i not in {r["run_id"] for r in shown}]
chosen = st.multiselect("Runs", options, key="runs_pick", format_func=lambda i: ui.run_label(by_id[i]),
                        placeholder="Choose one run to open it, or several to compare them")
if len(chosen) == 1:
    item = by_id[chosen[0]]
    manage(item)
    run_views.show_run(Path(item["run_dir"]), item["status"])
elif len(chosen) > 1:
    compare_view([Path(by_id[i]["run_dir"]) for i in chosen])
