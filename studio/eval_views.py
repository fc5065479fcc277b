"""Parts of the Evaluate page that read one finished evaluation: interval captions, the question-answering
and text-generation dashboards, the summarization length chart, the regression browser (every row with
its score change, word-level diffs, and a way to send rows to a preference queue) and the downloads."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from core import inventory, preferences
from core.report import comparison_html, word_diff_html
from studio import charts, ui

CHANGES = {"all": "All rows", "fixed": "Fixed", "broken": "Broken", "unchanged": "Unchanged", "failed": "Failed"}
ORDERS = {"worst": "Biggest regressions first", "best": "Biggest gains first", "line": "Eval file order"}
SCORE_NAMES = {"classification": "1 when the answer names the right class, else 0",
               "question_answering": "token F1 against the reference",
               "summarization": "ROUGE-L F1 against the reference",
               "text_generation": "ROUGE-L F1 against the reference"}
TASK_SCORES = {"question_answering": [("f1", "Token F1"), ("exact_match", "Exact match")],
               "text_generation": [("rougeL_f1", "ROUGE-L F1"), ("bleu4", "BLEU-4")]}
DIFF_ROWS = 5
MARGIN_HELP = ("Label scoring: how much more likely the chosen label was than the runner-up (difference of "
               "their scores, calibrated log-likelihoods); near 0 the model hesitated between the two.")
MARGIN_COLUMNS = {f"{n}_margin": st.column_config.NumberColumn(f"{n} margin", format="%.2f", help=MARGIN_HELP)
                  for n in ("base", "tuned")}


def interval(block: dict | None, key: str) -> str | None:
    """The text "95% interval 41.2% – 58.0%" from a metrics block's confidence_95, or None."""
    lo_hi = ((block or {}).get("confidence_95") or {}).get(key)
    return f"95% interval {lo_hi[0]:.1%} – {lo_hi[1]:.1%}" if lo_hi else None


def interval_caption(col, base: dict, tuned: dict | None, key: str) -> None:
    """The bootstrap interval under a headline metric: the tuned model's (and the base's beside it)."""
    t, b = interval(tuned, key), interval(base, key)
    if tuned and t:
        col.caption(f"{t}  \nbase: {b.removeprefix('95% interval ') if b else '–'}")
    elif b:
        col.caption(b)


def score_dashboard(task: str, base: dict, tuned: dict | None, headline) -> None:
    """Question answering (token F1, exact match) or text generation (ROUGE-L, BLEU-4): headline numbers
    with intervals, and the bars with their interval as error bars."""
    names = TASK_SCORES[task]
    cols = st.columns(len(names) + 2)
    for col, (key, label) in zip(cols, names):
        headline(col, label, base[key], tuned and tuned[key])
        interval_caption(col, base, tuned, key)
    st.caption("Values are the tuned model's, with the change from the base model." if tuned
               else "Base model only: pick a tuned run to compare.")
    with st.container(border=True):
        st.markdown("**Base vs tuned** · error bars are bootstrap 95% intervals")
        ui.chart(charts.metric_bars_figure(base, tuned, names))


def length_chart(preds: pd.DataFrame) -> None:
    """Summaries: are the answers as long as the references? (ROUGE rewards length it does not show.)"""
    if preds.empty:
        return
    words = lambda s: None if s is None or (isinstance(s, float) and s != s) else len(str(s).split())  # noqa: E731
    answers = {name: [words(a) for a in preds[name]] for name in ("base", "tuned") if name in preds}
    ref = [words(r) or 0 for r in preds["reference"]]
    with st.container(border=True):
        st.markdown("**Answer length vs reference length**")
        mean = {n: sum(v for v in a if v is not None) / max(1, sum(v is not None for v in a))
                for n, a in answers.items()}
        st.caption(f"Words per row; on the dashed line an answer is as long as its reference. Mean length: "
                   f"reference {sum(ref) / max(1, len(ref)):.1f}, "
                   + ", ".join(f"{n} {m:.1f}" for n, m in mean.items()) + ".")
        ui.chart(charts.answer_length_figure(ref, answers))


def with_margins(preds: pd.DataFrame) -> pd.DataFrame:
    """Rows of a label-scoring evaluation get base_margin / tuned_margin: the chosen label's log-likelihood
    minus the runner-up's. Other rows are returned as they are."""
    extra = {f"{n}_margin": preds[f"{n}_loglik"] - preds[f"{n}_runner_up_loglik"] for n in ("base", "tuned")
             if f"{n}_loglik" in preds and f"{n}_runner_up_loglik" in preds}
    return preds.assign(**extra) if extra else preds


def _records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict("records")


def _diff_card(row: dict) -> str:
    esc = lambda s: "" if s is None else html.escape(str(s))  # noqa: E731
    raw = "" if row.get("input_text") is None else str(row["input_text"])
    text = esc(raw if len(raw) <= 320 else raw[:320] + " …")  # cut before escaping: never inside an entity
    delta = row.get("delta")
    colour = {"fixed": "#15803D", "broken": "#B91C1C", "failed": "#B45309"}.get(row.get("change"), "#64748B")
    head = (f'<b>Line {row.get("line")}</b> · <span style="color:{colour};font-weight:600">{esc(row.get("change"))}'
            f'</span>' + (f" · score {row.get('base_score', 0):.2f} → {row.get('tuned_score', 0):.2f} "
                          f"({delta:+.2f})" if delta is not None else ""))
    label = 'style="color:#64748B;font-size:0.85em;min-width:96px;display:inline-block"'
    return (f'<div style="border:1px solid #E2E8F0;border-radius:8px;padding:8px 12px;margin:0 0 8px;'
            f'line-height:1.5">{head}<div><span {label}>Input</span>{text}</div>'
            f'<div><span {label}>Reference</span>{esc(row.get("reference"))}</div>'
            f'<div><span {label}>Base → tuned</span>{word_diff_html(row.get("base"), row.get("tuned"))}</div></div>')


def regression_browser(ws: Path, metrics: dict, preds: pd.DataFrame, out_dir: Path) -> None:
    """Every row with base and tuned answers, the reference and the score change; filter by what tuning
    did, select rows to see word-level diffs and send them to a preference queue."""
    task = metrics.get("task", "")
    with st.container(border=True):
        st.markdown("**Regression browser** · what tuning changed, row by row")
        if preds.empty:
            st.caption("No predictions were saved.")
            return
        preds = with_margins(preds)
        counts = preds["change"].value_counts().to_dict()
        options = [c for c in CHANGES if c == "all" or counts.get(c) or c != "failed"]
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        change = c1.segmented_control(
            "Show", options, default="all", key=f"ev_change::{out_dir}",
            format_func=lambda c: f"{CHANGES[c]} · {len(preds) if c == 'all' else counts.get(c, 0)}") or "all"
        order = c2.selectbox("Order", list(ORDERS), format_func=ORDERS.get, key="ev_order")
        view = preds if change == "all" else preds[preds["change"] == change]
        if order == "line":
            view = view.sort_values("line", kind="stable")
        else:
            view = view.sort_values("delta", ascending=order == "worst", na_position="last", kind="stable")
        view = view.reset_index(drop=True)
        # The short columns first, so the answers are on screen without scrolling; the input comes last.
        cols = ["line", "change", "delta", "base_score", "tuned_score", "reference"]
        cols += ["base_label", "tuned_label", "base_margin", "tuned_margin"] if task == "classification" else []
        cols += ["base", "tuned", "input_text"]
        st.caption(f"{len(view)} rows. The score per row is {SCORE_NAMES.get(task, 'the row score')}; a row is "
                   "*fixed* or *broken* when it moves by more than 0.1. Click a header to sort; tick rows to "
                   "see their word-level diff below and to send them to a preference queue.")
        event = st.dataframe(view[[c for c in cols if c in view.columns]], hide_index=True, height=360,
                             key=f"ev_rows::{out_dir}::{change}::{order}", on_select="rerun",
                             selection_mode="multi-row", column_config={
                                 "line": st.column_config.NumberColumn("line", width="small", format="%d"),
                                 "change": st.column_config.TextColumn("change", width="small"),
                                 "delta": st.column_config.NumberColumn("Δ score", format="%+.2f", width="small"),
                                 "base_score": st.column_config.NumberColumn("base", format="%.2f", width="small"),
                                 "tuned_score": st.column_config.NumberColumn("tuned", format="%.2f", width="small"),
                                 "input_text": st.column_config.TextColumn("input", width="large"),
                                 "base_label": "base label", "tuned_label": "tuned label",
                                 "base": st.column_config.TextColumn("base answer", width="medium"),
                                 "tuned": st.column_config.TextColumn("tuned answer", width="medium"),
                                 **MARGIN_COLUMNS})
        picked = list(getattr(getattr(event, "selection", None), "rows", []) or [])
        chosen = view.iloc[picked] if picked else view
        shown = _records(chosen.head(DIFF_ROWS))
        if shown:
            st.markdown(f"**Word-level diff** · {'selected rows' if picked else f'first {len(shown)} rows shown'} · "
                        '<del style="background:#FEE2E2">only in the base answer</del> '
                        '<ins style="background:#DCFCE7;text-decoration:none">only in the tuned answer</ins>',
                        unsafe_allow_html=True)
            st.html("".join(_diff_card(r) for r in shown))
            if len(chosen) > DIFF_ROWS:
                st.caption(f"{len(chosen) - DIFF_ROWS} more rows: select fewer to read them here.")
        send_to_queue(ws, metrics, chosen, picked_rows=bool(picked), change=change, out_dir=out_dir)


def send_to_queue(ws: Path, metrics: dict, rows: pd.DataFrame, picked_rows: bool, change: str, out_dir: Path) -> None:
    """Tuned and base answers of the chosen rows as preference pairs (answer A = tuned, B = base)."""
    # A pair needs two answers that differ: failed rows and identical answers have nothing to compare.
    rows = rows[rows["base"].notna() & rows["tuned"].notna() & (rows["base"] != rows["tuned"])]
    queues = preferences.list_queues(ws)
    names = [q["name"] for q in queues]
    default_new = inventory.safe_filename(f"review-{out_dir.name}")[:64].rstrip("._-") or "review"
    with st.expander("Send rows to a preference queue", icon=":material/thumbs_up_down:",
                     expanded=bool(picked_rows)):
        st.caption("Each row becomes a pair to label blind on the Preferences page: the tuned answer and the "
                   "base answer to the same input (rows where both answers are the same are left out). The "
                   "curated pairs can then train a DPO run.")
        target = ui.queue_target("ev_queue", names, default_new)
        what = f"{len(rows)} selected row{'s' * (len(rows) != 1)}" if picked_rows else (
            f"all {len(rows)} {'' if change == 'all' else CHANGES[change].lower() + ' '}row{'s' * (len(rows) != 1)}")
        if st.button(f"Send {what}", icon=":material/send:", key="ev_send", disabled=rows.empty):
            run_id, model = metrics.get("run_id"), metrics.get("model") or "base"
            pairs = [{"prompt": r["input_text"], "answer_a": r["tuned"], "answer_b": r["base"],
                      "source_a": f"tuned:{run_id}", "source_b": f"base:{model}",
                      "meta": {"eval": str(out_dir), "line": r.get("line"), "reference": r.get("reference"),
                               "change": r.get("change")}} for r in _records(rows)]
            try:
                ids = preferences.add_pairs(ws, target, pairs)
            except ValueError as e:
                st.error(f"**Could not add the pairs:** {e}", icon=":material/error:")
            else:
                st.success(f"Added {len(ids)} pairs to queue **{target}**. Label them on the Preferences page.",
                           icon=":material/check_circle:")


def downloads(out_dir: Path, metrics: dict, preds: pd.DataFrame) -> None:
    """predictions as CSV and JSONL, metrics.json, and the one-page HTML report."""
    st.markdown("**Downloads**")
    c = st.columns(4)
    stem = out_dir.name
    c[0].download_button("predictions.csv", lambda: preds.to_csv(index=False).encode("utf-8"),
                         file_name=f"{stem}-predictions.csv", mime="text/csv", icon=":material/table:",
                         on_click="ignore", width="stretch")
    jsonl = lambda: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records(preds)).encode()  # noqa: E731
    c[1].download_button("predictions.jsonl", jsonl, file_name=f"{stem}-predictions.jsonl",
                         mime="application/jsonl", icon=":material/data_object:", on_click="ignore", width="stretch")
    c[2].download_button("metrics.json", json.dumps(metrics, indent=2).encode(), file_name=f"{stem}-metrics.json",
                         mime="application/json", icon=":material/download:", on_click="ignore", width="stretch")
    report = lambda: comparison_html(metrics, _records(preds)).encode("utf-8")  # noqa: E731
    c[3].download_button("Report (HTML)", report, file_name=f"{stem}-report.html", mime="text/html",
                         icon=":material/description:", on_click="ignore", width="stretch",
                         help="One self-contained page: headline metrics with 95% intervals, the per-class F1 "
                              "or ROUGE table and the top regressions. Opens offline.")
