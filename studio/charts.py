"""Plotly figures for the pages: loss curves, data profiles, per-class F1, confusion matrices and ROUGE.
Plain functions of core's records (metrics.jsonl lines, METRICS dicts, pre-flight token counts); no
Streamlit here."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

PRIMARY = "#4F46E5"
BASE_COLOR = "#94A3B8"
TUNED_COLOR = PRIMARY
EVAL_COLOR = "#F59E0B"


def _style(fig: go.Figure, height: int, **layout) -> go.Figure:
    top = 36 if len(fig.data) > 1 else 12  # room for the legend only where there is one
    layout.setdefault("margin", dict(l=8, r=8, t=top, b=8))
    fig.update_layout(height=height, legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
                      **layout)
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
    fig.update_xaxes(title="Examples", range=[0, 1.12 * max((v for _, v in items), default=1)])
    return _style(fig, max(260, 22 * len(items) + 80))


def length_figure(lengths: list[int], title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=30, marker_color=PRIMARY, opacity=0.85))
    fig.update_xaxes(title=title)
    fig.update_yaxes(title="Examples")
    return _style(fig, 260, bargap=0.05)


def token_length_figure(prompt_tokens: list[int], answer_tokens: list[int], max_length: int) -> go.Figure:
    """Prompt tokens (top) and answer tokens (bottom) per example on one shared axis, each with its own
    count scale, and the max sequence length as a dashed line through both. A max length far beyond the
    data is named at the right edge instead of squeezing the bars."""
    top = max(prompt_tokens + answer_tokens, default=1)
    right = max_length * 1.04 if max_length <= 3 * top else top * 1.08
    size = max(1, math.ceil(right / 50))
    bins = dict(start=0, end=math.ceil(right) + size, size=size)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1)
    for row, (name, values, color) in enumerate((("Prompt", prompt_tokens, BASE_COLOR),
                                                 ("Answer (loss)", answer_tokens, PRIMARY)), start=1):
        fig.add_histogram(x=values, name=name, xbins=bins, marker_color=color, row=row, col=1,
                          hovertemplate=f"%{{x}} {name.split()[0].lower()} tokens: %{{y}} examples<extra></extra>")
        fig.update_yaxes(title=name.split()[0], row=row, col=1)
    if max_length <= right:
        fig.add_vline(x=max_length, line=dict(color=EVAL_COLOR, width=2, dash="dash"), row="all", col=1)
        fig.add_annotation(x=max_length, xref="x", y=1, yref="paper", yanchor="bottom", xanchor="right",
                           showarrow=False, text=f"max length {max_length}", font=dict(color=EVAL_COLOR))
    else:
        fig.add_annotation(x=1, xref="paper", y=1, yref="paper", yanchor="bottom", xanchor="right", showarrow=False,
                           text=f"max length {max_length} →", font=dict(color=EVAL_COLOR))
    fig.update_xaxes(range=[0, right])
    fig.update_xaxes(title="Tokens per example", row=2, col=1)
    return _style(fig, 340, bargap=0.05, showlegend=False, margin=dict(l=8, r=8, t=24, b=8))


def per_class_f1_figure(base: dict, tuned: dict | None) -> go.Figure:
    """Per-class F1 heatmap: rows are classes; columns base and tuned on a sequential scale, and the
    tuned − base difference beside them on a diverging scale centred on zero."""
    b = {r["label"]: r["f1_score"] for r in base["per_label"]}
    t = {r["label"]: r["f1_score"] for r in tuned["per_label"]} if tuned else {}
    labels = list(b)
    cols = ["Base"] + (["Tuned"] if tuned else [])
    z = [[b[lab]] + ([t.get(lab, 0.0)] if tuned else []) for lab in labels]
    fig = make_subplots(rows=1, cols=2 if tuned else 1, shared_yaxes=True, horizontal_spacing=0.03,
                        column_widths=[2, 1] if tuned else None)
    fig.add_heatmap(z=z, x=cols, y=labels, zmin=0, zmax=1, colorscale=[[0, "#F1F5F9"], [1, PRIMARY]],
                    texttemplate="%{z:.2f}", hovertemplate="%{y} · %{x} F1: %{z:.3f}<extra></extra>",
                    xgap=2, ygap=2, colorbar=dict(title="F1", len=0.45, y=1, yanchor="top", thickness=12),
                    row=1, col=1)
    if tuned:
        d = [[t.get(lab, 0.0) - b[lab]] for lab in labels]
        fig.add_heatmap(z=d, x=["Δ"], y=labels, zmid=0, zmin=-1, zmax=1, colorscale="RdBu",
                        texttemplate="%{z:+.2f}", hovertemplate="%{y} · tuned − base: %{z:+.3f}<extra></extra>",
                        xgap=2, ygap=2, colorbar=dict(title="Δ", len=0.45, y=0, yanchor="bottom", thickness=12),
                        row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category", ticks="", showgrid=False)
    fig.update_xaxes(side="top", type="category", tickangle=0, ticks="", showgrid=False)
    return _style(fig, max(320, 26 * len(labels) + 60), margin=dict(l=8, r=8, t=30, b=8))


def confusion_figure(cm: dict) -> go.Figure:
    """Rows are the true labels, columns the predicted ones (the last column collects off-label answers)."""
    labels, matrix = list(cm["labels"]), [list(r) for r in cm["matrix"]]
    rows = labels
    if labels and labels[-1].startswith("(") and not any(matrix[-1]):  # nothing is truly off-label
        rows, matrix = labels[:-1], matrix[:-1]
    text = [[str(v) if v else "" for v in row] for row in matrix]  # zeros left blank: easier to read
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=rows, colorscale=[[0, "#FFFFFF"], [1, PRIMARY]],
                               text=text, texttemplate="%{text}", xgap=1, ygap=1, showscale=False,
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
