"""The cards of the Datasets page that read a dataset: the verdict and overview numbers, the check
report, the token pre-flight, and previews of rows and conversations (studio/catalog_views.py writes:
fixed copies, splits, the catalog). Every decision about the data is core's (core.datacheck); this
module only lays it out."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import streamlit as st

from core import inventory
from core.config import BUNDLED_MODEL
from core.data import ANSWER_MISSING, PREFERENCE_COLUMNS, DataError, Dataset
from core.models import ModelError
from core.templates import default_template
from studio import cached, charts, ui

FORMAT_NAMES = {"prompt_answer": "Prompt → answer", "chat": "Chat conversations",
                "preference": "Preference pairs", "unlabeled": "Prompts only (unlabeled)"}
FORMAT_BADGES = {"prompt_answer": ("blue", ":material/assignment:"), "chat": ("violet", ":material/forum:"),
                 "preference": ("orange", ":material/thumbs_up_down:"), "unlabeled": ("gray", ":material/notes:")}
MAX_LENGTHS = [128, 256, 512, 1024, 2048, 4096]
PAGE_ROWS, PAGE_CHATS = 25, 4
LOSS_STYLE = "background:#E0E7FF;color:#1E1B4B;border-radius:3px;box-shadow:0 0 0 1px #C7D2FE"
PROMPT_STYLE = "color:#7C8499"


def format_badge(fmt: str | None, detected: str | None) -> str:
    """The format as a markdown badge; says so when it was chosen by hand rather than detected."""
    color, icon = FORMAT_BADGES.get(fmt or "", ("red", ":material/help:"))
    label = FORMAT_NAMES.get(fmt or "", "Format not recognised")
    if fmt != detected:
        label += f" (chosen; detected: {FORMAT_NAMES.get(detected or '', 'none')})"
    return f":{color}-badge[{icon} {label}]"


def missing_columns(fmt: str | None, columns: list[str]) -> str | None:
    """Why a format chosen by hand cannot be read from these columns (core.data would fail on a missing
    key rather than say so), or None."""
    if fmt == "chat" and not {"messages", "contents"} & set(columns):
        return "Chat data needs a `messages` column (or `contents` with `parts`)."
    if fmt == "preference" and not any(all(c in columns for c in cols) for cols in PREFERENCE_COLUMNS):
        return ("Preference pairs need the columns " +
                " or ".join("/".join(f"`{c}`" for c in cols) for cols in PREFERENCE_COLUMNS) + ".")
    return None


# ---------------------------------------------------------------- check

def headline(report: dict, ds, fmt: str) -> None:
    valid, rows = report["valid_rows"], report["rows"]
    missing = next((g for g in report.get("groups", []) if g["kind"] == ANSWER_MISSING), None)
    what = (f"prompts from `{ds.input_column}`, answers from `{ds.output_column}`" if fmt == "prompt_answer"
            else f"conversations from `{ds.input_column}`")
    if report["usable"]:
        if valid == rows:
            st.success(f"**{valid:,} examples** are ready for tuning: {what}.", icon=":material/task_alt:")
        else:
            st.success(f"**{valid:,} of {rows:,} rows** are ready for tuning ({what}); the {rows - valid:,} with "
                       "problems are listed below and would be left out of a fixed copy.", icon=":material/task_alt:")
    elif missing and valid:  # prompts only, beside a column that looks like misnamed answers
        st.warning(f"**{valid:,} rows read as prompts only: no answer column was found** beside the prompts "
                   f"(`{ds.input_column}`). If another column holds the answers, choose the format *Prompt → answer* "
                   "above and pick it as the *Answer column*, or rename it in the file: the Check card below says "
                   "to what.", icon=":material/view_column:")
    elif fmt in ("preference", "unlabeled") and valid:
        use = ("preference tuning (DPO)" if fmt == "preference"
               else "generating answers and evaluating, or labelling first")
        st.info(f"**{valid:,} {FORMAT_NAMES[fmt].lower()}** read. Supervised tuning needs prompt → answer "
                f"examples or conversations; this file is for {use}.", icon=":material/info:")
    else:
        first = next((g for g in report["groups"] if g["level"] == "error"), None)
        why = f" First problem: {first['kind']} (×{first['count']})." if first else ""
        st.error(f"**Not usable for tuning as it is:** {valid:,} of {rows:,} rows can be read.{why}",
                 icon=":material/block:")


def overview(report: dict, ds) -> None:
    stats, m = report.get("stats", {}), st.columns(4)
    m[0].metric("Valid rows", f"{report['valid_rows']:,} / {report['rows']:,}", border=True)
    if ds.format == "chat":
        turns = sorted(len(e["messages"]) for e in ds.examples)
        model_turns = sum(m["role"] == "assistant" for e in ds.examples for m in e["messages"])
        m[1].metric("Turns per conversation (median)", turns[len(turns) // 2] if turns else 0, border=True)
        m[2].metric("Model turns to learn", f"{model_turns:,}", border=True,
                    help="Every model/assistant turn becomes one training pair.")
        m[3].metric("With a system prompt", sum(e["messages"][0]["role"] == "system" for e in ds.examples),
                    border=True)
        return
    p, a = stats.get("prompt_chars") or {}, stats.get("answer_chars") or {}
    m[1].metric("Distinct answers", f"{len(ds.label_counts()):,}" if ds.format == "prompt_answer" else "–",
                border=True, help="A small number of distinct answers suggests a classification task.")
    m[2].metric("Prompt length (median)", f"{p.get('median', 0):,} chars", border=True,
                help=f"Shortest {p.get('min')}, 95th percentile {p.get('p95')}, longest {p.get('max')} characters.")
    m[3].metric("Answer length (median)", f"{a.get('median', 0):,} chars" if a else "–", border=True,
                help=f"Shortest {a.get('min')}, longest {a.get('max')} characters." if a else None)


def problems_section(report: dict, path: str) -> None:
    """Problems grouped by kind (errors first), the first rows of each, and the full list as CSV."""
    groups = report.get("groups", [])
    if not groups:
        st.markdown(":green[:material/check_circle:] **No problems found** in any row.")
        return
    errors = sum(g["count"] for g in groups if g["level"] == "error")
    warnings = sum(g["count"] for g in groups if g["level"] != "error")
    st.markdown(f"**{errors} error{'s' * (errors != 1)} · {warnings} warning{'s' * (warnings != 1)}** "
                f"in {len(groups)} kind{'s' * (len(groups) != 1)}")
    for g in groups:
        icon = ":material/error:" if g["level"] == "error" else ":material/warning:"
        with st.expander(f"{g['kind']}  ·  {g['count']}", icon=icon, expanded=g["level"] == "error"):
            if g["hint"]:
                st.caption(f":material/lightbulb: {g['hint']}")
            rows = pd.DataFrame([{"line": p["line"], "field": p["field"] or "", "message": p["message"]}
                                 for p in g["first"]])
            st.dataframe(rows, hide_index=True, column_config={
                "line": st.column_config.NumberColumn("line", width="small", format="%d"),
                "field": st.column_config.TextColumn("field", width="small"),
                "message": st.column_config.TextColumn("message", width="large")})
            if g["count"] > len(g["first"]):
                st.caption(f"The first {len(g['first'])} of {g['count']}; the download has them all.")
    csv = pd.DataFrame(report["problems"], columns=["level", "kind", "line", "field", "message", "hint"])
    st.download_button("Download all problems (CSV)", csv.to_csv(index=False).encode("utf-8"),
                       file_name=f"{inventory.dataset_name(path)}-problems.csv", mime="text/csv",
                       icon=":material/download:", key=f"ds_problems_csv::{path}")


def overlap_note(report: dict, eval_path: str | None) -> None:
    stats = report.get("stats", {})
    if not eval_path or "train_eval_overlap" not in stats:
        return
    n, rows, name = stats["train_eval_overlap"], stats["eval_rows"], Path(eval_path).name
    if n:
        st.warning(f"**{n} of {rows} eval rows** in `{name}` also appear in the training data: eval scores would "
                   "flatter the run. They are listed under *eval example also in training data*.",
                   icon=":material/content_copy:")
    else:
        st.markdown(f":green[:material/check_circle:] Eval file `{name}`: {rows} rows, none of them also in "
                    "the training data.")


# ---------------------------------------------------------------- pre-flight

def loss_html(segments: list[dict]) -> str:
    """The training text as HTML: prompt runs muted, loss-carrying runs highlighted; text escaped,
    whitespace and line breaks kept."""
    spans = "".join(f'<span style="{LOSS_STYLE if s["loss"] else PROMPT_STYLE}">{html.escape(s["text"])}</span>'
                    for s in segments)
    return ('<div style="font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:0.8rem;'
            'line-height:1.55;white-space:pre-wrap;word-break:break-word;padding:0.6rem 0.75rem;'
            f'border:1px solid #E3E5EF;border-radius:0.5rem;background:#FAFAFD">{spans}</div>')


def preflight_card(path: str, ds: Dataset, task: str | None, fmt: str | None, columns: tuple) -> None:
    st.subheader(":material/flight_takeoff: Pre-flight: what the model will see")
    st.caption("Examples rendered exactly as tuning renders them: prompt template, the model's chat template with "
               f"its special tokens, the answer closed by the end token, and the cut at the max sequence length. "
               f"Measured on the first {min(len(ds), cached.PREFLIGHT_ROWS)} examples.")
    c1, c2 = st.columns([3, 1])
    if ds.format == "chat":
        template = "{input_text}"
        c1.caption("Conversations go through the model's chat template as they are (no prompt template); "
                   "every model turn is learned, each with the conversation before it as the prompt.")
    else:
        labels = ds.labels if task == "classification" else []
        template = c1.text_area("Prompt template", value=default_template(task or "text_generation", labels),
                                height=124, key=f"ds_template::{task}::{path}",
                                help="`{input_text}` is replaced by each example's prompt. Tune starts from the "
                                     "same default.")
    model = c2.text_input("Model (its tokenizer)", value=BUNDLED_MODEL, key="ds_model",
                          help="The bundled default, a Hugging Face model id or a local model folder.").strip()
    max_len = c2.selectbox("Max sequence length", MAX_LENGTHS, index=2, key="ds_maxlen",
                           help="Prompt + answer tokens; tuning cuts what is longer.")
    if not (cached.tokenizer_ready(model) or st.session_state.get("ds_tokenizer_ok", {}).get(model)):
        st.info("The pre-flight needs the model's tokenizer. Loading it the first time unpacks the bundled model "
                "(about 30 s, once per workspace).", icon=":material/hourglass_top:")
        if not st.button("Load the tokenizer and run the pre-flight", icon=":material/play_arrow:", key="ds_tok"):
            return
        st.session_state.setdefault("ds_tokenizer_ok", {})[model] = True
    try:
        pre = cached.preflight(path, model or BUNDLED_MODEL, template, max_len, fmt, *columns)
    except DataError as e:
        ui.show_data_error(e)
        return
    except (ModelError, ValueError, OSError) as e:
        st.error(f"**The pre-flight could not run:** {e}", icon=":material/error:")
        return
    render_preflight(pre)


def render_preflight(pre: dict) -> None:
    p, a = pre["prompt_tokens_summary"], pre["answer_tokens_summary"]
    cut, dropped = pre["truncated_lines"], pre["dropped_lines"]
    m = st.columns(4)
    m[0].metric("Prompt tokens (median)", p.get("median", "–"), border=True,
                help=f"Shortest {p.get('min')}, 95th percentile {p.get('p95')}, longest {p.get('max')}.")
    m[1].metric("Answer tokens (median)", a.get("median", "–"), border=True,
                help=f"Shortest {a.get('min')}, 95th percentile {a.get('p95')}, longest {a.get('max')}. "
                     "Includes the end token.")
    m[2].metric("Cut by max length", len(cut), border=True,
                help="Prompt + answer is longer than the max length: the end of the answer is not learned.")
    m[3].metric("Dropped", len(dropped), border=True,
                help="The prompt alone fills the max length: no answer token is left to learn from.")
    if cut or dropped:
        st.warning(f"At max length {pre['max_length']}, **{len(cut)} example{'s' * (len(cut) != 1)}** lose the end "
                   f"of their answer and **{len(dropped)}** lose all of it. Raise the max sequence length, or "
                   "shorten those rows.", icon=":material/content_cut:")
        with st.expander("Which lines"):
            if cut:
                st.markdown(f"**Cut:** lines {', '.join(map(str, cut[:200]))}{' …' if len(cut) > 200 else ''}")
            if dropped:
                st.markdown(f"**Dropped:** lines {', '.join(map(str, dropped[:200]))}"
                            f"{' …' if len(dropped) > 200 else ''}")
    st.markdown(f'<span style="{LOSS_STYLE};padding:0 4px">highlighted</span> = tokens the model learns to '
                f'produce (loss) &nbsp;·&nbsp; <span style="{PROMPT_STYLE}">grey</span> = the prompt it reads (no loss)',
                unsafe_allow_html=True)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        with st.container(height=400, border=False):
            for ex in pre["examples"]:
                st.caption(f"Line {ex['line']}")
                st.html(loss_html(ex["segments"]))
    with right:
        ui.chart(charts.token_length_figure(pre["prompt_tokens"], pre["answer_tokens"], pre["max_length"]))


# ---------------------------------------------------------------- previews

def _page(key: str, total: int, size: int, label: str) -> tuple[int, int]:
    pages = max(1, -(-total // size))
    page = st.number_input(f"{label} (of {pages})", 1, pages, 1, key=key) if pages > 1 else 1
    start = (int(page) - 1) * size
    return start, min(total, start + size)


def table_preview(ds: Dataset, path: str) -> None:
    if not ds.examples:
        st.info("No row can be read yet: the Check card lists why.", icon=":material/info:")
        return
    c1, c2 = st.columns([1, 4], vertical_alignment="bottom")
    with c1:
        start, end = _page(f"ds_page::{path}", len(ds), PAGE_ROWS, "Page")
    c2.caption(f"Rows {start + 1}–{end} of {len(ds):,} valid rows as tuning reads them; *line* is the line (or "
               "row) in the file.")
    df = pd.DataFrame(ds.examples[start:end])
    names = {"input_text": f"prompt ({ds.input_column})", "output_text": f"answer ({ds.output_column})",
             "prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    df = df[["line"] + [c for c in names if c in df.columns]]
    st.dataframe(df, hide_index=True, height=min(36 + 35 * len(df), 460), column_config={
        "line": st.column_config.NumberColumn("line", width="small", format="%d"),
        **{k: st.column_config.TextColumn(v, width="large" if k in ("input_text", "prompt") else "medium")
           for k, v in names.items()}})


def chat_preview(ds: Dataset, path: str) -> None:
    if not ds.examples:
        st.info("No conversation can be read yet: the Check card lists why.", icon=":material/info:")
        return
    c1, c2 = st.columns([1, 4], vertical_alignment="bottom")
    with c1:
        start, end = _page(f"ds_chatpage::{path}", len(ds), PAGE_CHATS, "Page")
    c2.caption(f"Conversations {start + 1}–{end} of {len(ds):,}, turn by turn; model turns are what tuning learns.")
    cols = st.columns(2, gap="medium")
    for i, ex in enumerate(ds.examples[start:end]):
        with cols[i % 2].container(border=True):
            st.caption(f"Line {ex['line']} · {len(ex['messages'])} turns")
            for m in ex["messages"]:
                avatar = ":material/settings:" if m["role"] == "system" else None
                with st.chat_message(m["role"], avatar=avatar):
                    st.text(m["content"])
