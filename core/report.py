"""A one-page, self-contained HTML report of a base-vs-tuned evaluation (metrics.json + predictions.jsonl
rows), to attach to a ticket or mail: headline metrics with their bootstrap 95% intervals, the per-class
F1 or ROUGE table with CSS bars, how many rows tuning fixed or broke, and the worst regressions with a
word-level diff. Plain HTML and CSS: no script, nothing fetched, readable offline. Every value taken
from the data is escaped."""
from __future__ import annotations

import difflib
import html
import re
from collections import Counter

from core.config import EVAL_MODE_WORDS, recorded_eval_mode

TASK_NAMES = {"classification": "Classification", "summarization": "Summarization",
              "question_answering": "Question answering", "text_generation": "Text generation"}
# (key in a metrics block, label, shown as a percentage); the first is the task's headline metric.
HEADLINES = {
    "classification": [("macro_f1", "Macro F1", True), ("accuracy", "Accuracy", True),
                       ("micro_f1", "Micro F1", True), ("off_label_count", "Off-label answers", False)],
    "summarization": [("rougeL_f1", "ROUGE-L F1", True), ("rouge1_f1", "ROUGE-1 F1", True),
                      ("rouge2_f1", "ROUGE-2 F1", True), ("rougeLsum_f1", "ROUGE-Lsum F1", True)],
    "question_answering": [("f1", "Token F1", True), ("exact_match", "Exact match", True)],
    "text_generation": [("rougeL_f1", "ROUGE-L F1", True), ("bleu4", "BLEU-4", True)],
}
ROUGE = [("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum")]
INS_STYLE = "background:#DCFCE7;color:#14532D;text-decoration:none;border-radius:3px;padding:0 2px"
DEL_STYLE = "background:#FEE2E2;color:#7F1D1D;border-radius:3px;padding:0 2px"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1F2333;max-width:1100px;
     margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #E2E8F0;padding-bottom:4px}
.meta{color:#64748B;font-size:12.5px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{border:1px solid #E2E8F0;border-radius:8px;padding:10px 14px;min-width:190px}
.card .v{font-size:24px;font-weight:600}.card .l{color:#64748B;font-size:12.5px}
.up{color:#15803D}.down{color:#B91C1C}.ci{color:#64748B;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #F1F5F9;text-align:left;vertical-align:top}
th{color:#475569;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.bar{height:8px;border-radius:4px;display:block;margin:2px 0}.b{background:#94A3B8}.t{background:#4F46E5}
.row{border:1px solid #E2E8F0;border-radius:8px;padding:8px 12px;margin:8px 0}.row .k{color:#64748B;font-size:12px}
"""


def word_diff_html(before: str | None, after: str | None) -> str:
    """`after` against `before` word by word: words only in `before` struck through in red (<del>), words
    only in `after` in green (<ins>), the rest plain. Inline styles, so it renders anywhere."""
    a, b = re.findall(r"\S+", before or ""), re.findall(r"\S+", after or "")
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f'<del style="{DEL_STYLE}">{html.escape(" ".join(a[i1:i2]))}</del>')
        if j2 > j1:
            out.append(f'<ins style="{INS_STYLE}">{html.escape(" ".join(b[j1:j2]))}</ins>')
    return " ".join(out)


def _fmt(value, pct: bool) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if pct else f"{value:,.0f}"


def _ci(block: dict | None, key: str) -> str:
    lo_hi = ((block or {}).get("confidence_95") or {}).get(key)
    return f"{lo_hi[0]:.1%} – {lo_hi[1]:.1%}" if lo_hi else ""


def _bar(value: float, cls: str) -> str:
    return f'<span class="bar {cls}" style="width:{max(0.0, min(1.0, value)) * 100:.1f}%"></span>'


def _headline(task: str, base: dict, tuned: dict | None) -> str:
    cards, rows = [], []
    for key, label, pct in HEADLINES.get(task, []):
        if key not in base:
            continue
        b, t = base[key], (tuned or {}).get(key)
        shown = t if tuned else b
        delta = ""
        if tuned and t is not None:
            diff = t - b
            better = diff < 0 if key == "off_label_count" else diff > 0
            text = f"{diff * 100:+.1f} pts" if pct else f"{diff:+,.0f}"
            delta = f'<span class="{"up" if better else "down" if diff else ""}">{text}</span>'
        ci = _ci(tuned if tuned else base, key)
        cards.append(f'<div class="card"><div class="l">{label}{" (tuned)" if tuned else ""}</div>'
                     f'<div class="v">{_fmt(shown, pct)}</div><div>{delta}</div>'
                     f'{f"<div class=ci>95% interval {ci}</div>" if ci else ""}</div>')
        rows.append(f"<tr><td>{label}</td><td class=n>{_fmt(b, pct)}</td><td class=ci>{_ci(base, key)}</td>"
                    + (f"<td class=n>{_fmt(t, pct)}</td><td class=ci>{_ci(tuned, key)}</td><td class=n>{delta}</td>"
                       if tuned else "") + "</tr>")
    head = "<tr><th>Metric</th><th>Base</th><th>95% interval</th>" + (
        "<th>Tuned</th><th>95% interval</th><th>Change</th>" if tuned else "") + "</tr>"
    return f'<div class="cards">{"".join(cards)}</div><h2>Headline metrics</h2><table>{head}{"".join(rows)}</table>'


def _per_class(base: dict, tuned: dict | None) -> str:
    t = {r["label"]: r for r in (tuned or {}).get("per_label", [])}
    rows = []
    for r in base.get("per_label", []):
        tr = t.get(r["label"])
        cells = f'<td class=n>{r["f1_score"]:.3f}</td><td style="width:18%">{_bar(r["f1_score"], "b")}</td>'
        if tuned:
            tf = tr["f1_score"] if tr else 0.0
            d = tf - r["f1_score"]
            cells += (f'<td class=n>{tf:.3f}</td><td style="width:18%">{_bar(tf, "t")}</td>'
                      f'<td class="n {"up" if d > 0 else "down" if d < 0 else ""}">{d:+.3f}</td>')
        rows.append(f'<tr><td>{html.escape(str(r["label"]))}</td><td class=n>{r["support"]}</td>{cells}</tr>')
    head = "<tr><th>Class</th><th>Support</th><th>Base F1</th><th></th>" + (
        "<th>Tuned F1</th><th></th><th>Δ F1</th>" if tuned else "") + "</tr>"
    return f"<h2>F1 per class</h2><table>{head}{''.join(rows)}</table>"


def _rouge(base: dict, tuned: dict | None) -> str:
    rows = []
    for key, label in ROUGE:
        for kind in ("precision", "recall", "f1"):
            k = f"{key}_{kind}"
            if k not in base:
                continue
            b = base[k]
            cells = f'<td class=n>{b:.3f}</td><td style="width:18%">{_bar(b, "b")}</td>'
            if tuned:
                t = tuned.get(k, 0.0)
                cells += (f'<td class=n>{t:.3f}</td><td style="width:18%">{_bar(t, "t")}</td>'
                          f'<td class="n {"up" if t > b else "down" if t < b else ""}">{t - b:+.3f}</td>')
            rows.append(f"<tr><td>{label} {kind if kind != 'f1' else 'F1'}</td>{cells}</tr>")
    if not rows:
        return ""
    head = ("<tr><th>Score</th><th>Base</th><th></th>" + ("<th>Tuned</th><th></th><th>Δ</th>" if tuned else "")
            + "</tr>")
    return f"<h2>ROUGE</h2><table>{head}{''.join(rows)}</table>"


def _clip(text, n: int = 400) -> str:
    text = "" if text is None else str(text)
    return html.escape(text if len(text) <= n else text[:n] + " …")


def _regressions(predictions: list[dict], top: int) -> str:
    changes = Counter(p.get("change") for p in predictions if p.get("change"))
    summary = " · ".join(f"<b>{changes.get(c, 0)}</b> {c}" for c in ("fixed", "broken", "unchanged", "failed"))
    broken = sorted((p for p in predictions if p.get("change") == "broken"), key=lambda p: p.get("delta") or 0.0)
    rows = []
    for p in broken[:top]:
        rows.append(f'<div class="row"><div class="k">line {p.get("line", "?")} · score '
                    f'{p.get("base_score", 0):.2f} → {p.get("tuned_score", 0):.2f} ({p.get("delta", 0):+.2f})</div>'
                    f'<div><span class="k">Input</span> {_clip(p.get("input_text"))}</div>'
                    f'<div><span class="k">Reference</span> {_clip(p.get("reference"))}</div>'
                    f'<div><span class="k">Base → tuned</span> {word_diff_html(p.get("base"), p.get("tuned"))}'
                    '</div></div>')
    body = "".join(rows) or "<p class=meta>No row got worse after tuning.</p>"
    more = (f"<p class=meta>{len(broken) - top} more broken rows are in predictions.jsonl.</p>"
            if len(broken) > top else "")
    return (f"<h2>What tuning changed, row by row</h2><p>{summary}</p>"
            f"<h2>Top regressions</h2><p class=meta>Rows the tuned model answers worse than the base model, worst "
            f"first. Red: only in the base answer; green: only in the tuned answer.</p>{body}{more}")


def comparison_html(metrics: dict, predictions: list[dict], top: int = 10) -> str:
    """The report as one HTML string (a few kB plus the regressions shown); `predictions` are the rows of
    predictions.jsonl. Works for a base-only evaluation too (no change columns, no regressions)."""
    task = metrics.get("task", "")
    base, tuned = metrics.get("base") or {}, metrics.get("tuned")
    rows = metrics.get("rows", len(predictions))
    status = [f"{n} {s['num_successful_rows']} of {s['num_total_rows']} rows answered"
              for n, s in (("base", base.get("evaluation_status")), ("tuned", (tuned or {}).get("evaluation_status")))
              if s]
    mode = f"answers: {EVAL_MODE_WORDS[recorded_eval_mode(metrics)]}"
    who = f"base vs tuned run {metrics['run_id']}" if metrics.get("run_id") else "base model only"
    meta = [f"{TASK_NAMES.get(task, task)} on {metrics.get('data', '').rsplit('/', 1)[-1]}", f"{rows} rows", who,
            f"model {metrics.get('model') or '?'}", mode, metrics.get("created"),
            f"{metrics['rows_per_second']:.2f} answers/s" if metrics.get("rows_per_second") else None]
    parts = [_headline(task, base, tuned)]
    if task == "classification" and base.get("per_label"):
        parts.append(_per_class(base, tuned))
    elif task == "summarization":
        parts.append(_rouge(base, tuned))
    if tuned:
        parts.append(_regressions(predictions, top))
    title = f"Evaluation: {who}"
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<div class=meta>{html.escape(' · '.join(str(m) for m in meta if m))}</div>"
            f"<div class=meta>{html.escape('; '.join(status))}</div>{''.join(parts)}"
            f"<p class=meta>Intervals: bootstrap 95% percentile intervals over the eval rows. "
            f"Generated by Tuning Studio.</p></body></html>")
