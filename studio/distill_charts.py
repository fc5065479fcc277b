"""Plotly figures of a distillation comparison: the Evaluate page's per-class F1 heatmap and metric bars,
drawn for three models (teacher, student, student-before) instead of two, and the answers/s bars. Plain
functions of core.distill_compare's model rows; no Streamlit here."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from studio.charts import BASE_COLOR, EVAL_COLOR, PRIMARY

# The student in the studio's colour, its base grey as a base model is on the Evaluate page, the teacher apart.
ROLE_COLORS = {"teacher": EVAL_COLOR, "student": PRIMARY, "student_before": BASE_COLOR}
SHORT_NAMES = {"teacher": "Teacher", "student": "Student", "student_before": "Before"}
CARD_NAMES = {"teacher": "Teacher", "student": "Student", "student_before": "Before tuning"}


def _layout(fig: go.Figure, height: int, top: int = 36) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=8, r=8, t=top, b=8),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    return fig


def per_class_f1_figure(models: list[dict]) -> go.Figure:
    """Rows are classes; one column per model on a sequential scale, then student − teacher on a
    diverging scale centred on zero (where both are there)."""
    labels = list(dict.fromkeys(lab for m in models for lab in m["per_class_f1"]))
    by_role = {m["role"]: m["per_class_f1"] for m in models}
    delta = "student" in by_role and "teacher" in by_role
    fig = make_subplots(rows=1, cols=2 if delta else 1, shared_yaxes=True, horizontal_spacing=0.03,
                        column_widths=[3, 1] if delta else None)
    fig.add_heatmap(z=[[m["per_class_f1"].get(lab, 0.0) for m in models] for lab in labels],
                    x=[SHORT_NAMES[m["role"]] for m in models], y=labels, zmin=0, zmax=1,
                    colorscale=[[0, "#F1F5F9"], [1, PRIMARY]], texttemplate="%{z:.2f}", xgap=2, ygap=2,
                    hovertemplate="%{y} · %{x} F1: %{z:.3f}<extra></extra>",
                    colorbar=dict(title="F1", len=0.45, y=1, yanchor="top", thickness=12), row=1, col=1)
    if delta:
        d = [[by_role["student"].get(lab, 0.0) - by_role["teacher"].get(lab, 0.0)] for lab in labels]
        fig.add_heatmap(z=d, x=["Δ vs teacher"], y=labels, zmid=0, zmin=-1, zmax=1, colorscale="RdBu",
                        texttemplate="%{z:+.2f}", xgap=2, ygap=2,
                        hovertemplate="%{y} · student − teacher: %{z:+.3f}<extra></extra>",
                        colorbar=dict(title="Δ", len=0.45, y=0, yanchor="bottom", thickness=12), row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category", ticks="", showgrid=False)
    fig.update_xaxes(side="top", type="category", tickangle=0, ticks="", showgrid=False)
    return _layout(fig, max(320, 26 * len(labels) + 60), top=30)


def metric_bars_figure(models: list[dict], names: list[tuple[str, str]]) -> go.Figure:
    """One bar per model for each metric (metrics.json keys), with the bootstrap 95% interval as an
    error bar where the evaluation computed one."""
    fig = go.Figure()
    for m in models:
        block = m["metrics"]
        vals = [block.get(k, 0.0) for k, _ in names]
        ci = block.get("confidence_95") or {}
        plus = [ci[k][1] - v if k in ci else 0.0 for (k, _), v in zip(names, vals)]
        minus = [v - ci[k][0] if k in ci else 0.0 for (k, _), v in zip(names, vals)]
        fig.add_bar(x=[n for _, n in names], y=vals, name=m["role_name"], marker_color=ROLE_COLORS[m["role"]],
                    text=[f"{v:.3f}" for v in vals], textposition="inside", insidetextanchor="end",
                    error_y=dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#334155",
                                 thickness=1.2, width=6))
    fig.update_yaxes(title="Score", rangemode="tozero")
    fig.update_layout(barmode="group")
    return _layout(fig, 340)


def speed_figure(models: list[dict]) -> go.Figure:
    """Answers per second, one bar per model: how much faster the student answers."""
    shown = [m for m in models if m.get("answers_per_s")]
    fig = go.Figure(go.Bar(x=[m["answers_per_s"] for m in shown], y=[m["role_name"] for m in shown],
                           orientation="h", marker_color=[ROLE_COLORS[m["role"]] for m in shown],
                           text=[f"{m['answers_per_s']:.2f}/s" for m in shown], textposition="outside",
                           cliponaxis=False, hovertemplate="%{y}: %{x:.2f} answers/s<extra></extra>"))
    fig.update_xaxes(title="Answers per second", rangemode="tozero",
                     range=[0, 1.3 * max((m["answers_per_s"] for m in shown), default=1)])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, 60 * len(shown) + 80, top=12)
