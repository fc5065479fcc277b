"""The Export panel of a run (Tune, Runs and Distill pages, under the run): choose a format, start the export
job, and see every export of the run with its state, size, verification and a download. The work is the
job's (core.export); this module lays it out."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs, runs
from core.config import ConfigError
from core.export.config import FORMAT_NAMES, FORMATS, GGUF_QUANT_NOTES, GGUF_QUANTS, ExportConfig
from core.export.listing import human_bytes, list_exports, verification_line
from core.names import ACTIVE_STATES
from studio import ui

FORMAT_HELP = {"adapter": "The LoRA adapter as a standard PEFT folder, zipped, with a model card. Small; needs "
                          "the base model to run.",
               "merged": "Base and adapter merged into one safetensors folder that any transformers program "
                         "loads, with a chat template that asks it the way the run was taught.",
               "gguf": "One file for llama.cpp, LM Studio and Ollama; f16 keeps the answers, q8_0 is half "
                       "its size."}


def _start(run_dir: Path, key: str) -> None:
    s = st.session_state
    fmt = s[f"{key}_format"]
    try:
        cfg = ExportConfig(run_id=run_dir.name, format=fmt, quant=s.get(f"{key}_quant") or "f16",
                           ollama=bool(fmt == "gguf" and s.get(f"{key}_ollama")),
                           checkpoint=s.get(f"{key}_checkpoint") or None)
        job_dir = jobs.create_export(run_dir.parent.parent, cfg)  # the workspace: runs/<id>/ is two up
        how = jobs.submit(job_dir)
    except (ConfigError, ValueError) as e:
        ui.say("error", f"**Not exported:** {e}", key=f"{key}_msg")
    else:
        ui.say("success", f"Export **{cfg.label}** {'started' if how == 'started' else 'queued behind the jobs ahead'}."
               " It is listed below, with its verification when it ends.", key=f"{key}_msg")


def _zip_folder(folder: Path):
    """A callable for st.download_button: the folder zipped when the user clicks (stored, not compressed:
    weights do not compress and this keeps it quick)."""
    def build() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for p in sorted(folder.rglob("*")):
                z.write(p, p.relative_to(folder.parent))
        return buf.getvalue()
    return build


def _file(path: Path):
    return lambda: path.read_bytes()


def _download(item: dict) -> None:
    result, folder = item["result"], Path(item["dir"])
    target = folder / result.get("download", "")
    if not result.get("download") or not target.exists():
        return
    c = st.columns(3)
    if target.is_dir():
        c[0].download_button(f"Download {target.name}.zip", _zip_folder(target), file_name=f"{target.name}.zip",
                             key=f"dl::{target}", icon=":material/download:", mime="application/zip")
    else:
        c[0].download_button(f"Download {target.name}", _file(target), file_name=target.name, key=f"dl::{target}",
                             icon=":material/download:", mime="application/octet-stream")
    if (folder / "Modelfile").exists():
        c[1].download_button("Modelfile", _file(folder / "Modelfile"), file_name="Modelfile",
                             key=f"dl::{folder}/Modelfile", icon=":material/description:")
    st.caption(f"On this machine: `{target}`")
    if result.get("ollama_command"):
        st.code(f"cd {folder}\n{result['ollama_command']}", language="bash")


def _verification(result: dict) -> None:
    check = result.get("verification")
    if not check or not check.get("rows"):
        return
    with st.expander("Verification answers", icon=":material/fact_check:"):
        st.caption(f"{check['runtime']} and the studio answered the same eval prompts greedily.")
        st.dataframe(pd.DataFrame([{"Same": "✓" if r["same"] else "✗", "Prompt": r["input"], "Studio": r["studio"],
                                    "Export": r["export"]} for r in check["rows"]]), hide_index=True)


def _one(item: dict) -> None:
    status, result = item["status"], item["result"]
    state = status.get("state")
    with st.container(border=True):
        c = st.columns([5, 1], vertical_alignment="center")
        c[0].markdown(f"**{item['label']}**" + (f" · {human_bytes(item['bytes'])}" if item["bytes"] else ""))
        with c[1]:
            ui.status_badge(state)
        if state == "succeeded":
            check = result.get("verification") or {}
            same = check.get("prompts") and check.get("identical") == check.get("prompts")
            icon = ":material/verified:" if same else ":material/rule:"
            st.markdown(f":{'green' if same else 'orange'}[{icon} {verification_line(result)}]")
            _download(item)
            _verification(result)
        elif state in ACTIVE_STATES:
            done, total = status.get("done"), status.get("total")
            st.progress((done or 0) / total if total else 0.0, text=status.get("phase") or "waiting for the device")
            if jobs.cancel_requested(item["dir"]):
                st.caption("Cancel requested: it stops at its next phase.")
            else:
                st.button("Cancel export", key=f"cancel::{item['dir']}", icon=":material/stop_circle:",
                          on_click=jobs.cancel, args=(item["dir"],))
        elif state == "failed":
            ui.show_failure("The export", status)


@st.fragment(run_every=2)
def _live_list(run_dir: Path) -> None:
    items = list_exports(run_dir)
    for item in items:
        _one(item)
    if not any(i["status"].get("state") in ACTIVE_STATES for i in items):
        st.rerun()  # everything ended: draw once more without polling


def export_panel(run_dir: Path, status: dict) -> None:
    """Shown under a run that has an adapter to export."""
    if not runs.has_adapter(run_dir) or status.get("state") in ACTIVE_STATES:
        return
    key = f"export::{run_dir.name}"
    st.subheader("Export", anchor=False)
    st.caption("Take the model home: as an adapter, a merged model or a GGUF file for llama.cpp and Ollama. "
               "Each export is checked afterwards: a second runtime answers a few eval prompts and its answers "
               "are compared with the studio's own.")
    ui.show_message(f"{key}_msg")
    c = st.columns([3, 2, 2], vertical_alignment="bottom")
    fmt = c[0].segmented_control("Format", FORMATS, default="gguf", key=f"{key}_format",
                                 format_func=lambda f: FORMAT_NAMES[f].split(" (")[0]) or "gguf"
    steps = [runs.checkpoint_step(p) for p in runs.checkpoints(run_dir) if runs.checkpoint_complete(p)]
    best = status.get("best_step")
    c[1].selectbox("Weights", [None, *steps], key=f"{key}_checkpoint",
                   format_func=lambda s: f"the run's adapter{f' (step {best})' if best else ''}" if s is None
                   else f"checkpoint, step {s}")
    if fmt == "gguf":
        c[2].selectbox("Quantization", GGUF_QUANTS, key=f"{key}_quant", help="\n".join(
            f"- **{q}**: {n}" for q, n in GGUF_QUANT_NOTES.items()))
        st.checkbox("Also write an Ollama Modelfile", value=True, key=f"{key}_ollama",
                    help="FROM the GGUF file, the run's prompt as TEMPLATE, greedy answers, the stop tokens; "
                         "the page then shows the `ollama create` command.")
    st.caption(FORMAT_HELP[fmt])
    st.button("Export", type="primary", icon=":material/ios_share:", key=f"{key}_go", on_click=_start,
              args=(run_dir, key))
    items = list_exports(run_dir)
    if any(i["status"].get("state") in ACTIVE_STATES for i in items):
        _live_list(run_dir)
    else:
        for item in items:
            _one(item)
