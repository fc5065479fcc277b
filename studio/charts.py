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
    if labels and labels[-1].startswith("(") and not any(r[-1] for r in matrix):  # no answer was off-label
        labels, matrix = labels[:-1], [r[:-1] for r in matrix]
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


def metric_bars_figure(base: dict, tuned: dict | None, names: list[tuple[str, str]]) -> go.Figure:
    """Base and tuned bars for a task's metrics, with the bootstrap 95% interval as an error bar where
    core.metrics.confidence_intervals gave one (metrics.json's confidence_95)."""
    fig = go.Figure()
    for label, m, color in (("Base", base, BASE_COLOR), ("Tuned", tuned, TUNED_COLOR)):
        if not m:
            continue
        vals = [m.get(k, 0.0) for k, _ in names]
        ci = m.get("confidence_95") or {}
        plus = [ci[k][1] - v if k in ci else 0.0 for (k, _), v in zip(names, vals)]
        minus = [v - ci[k][0] if k in ci else 0.0 for (k, _), v in zip(names, vals)]
        fig.add_bar(x=[n for _, n in names], y=vals, name=label, marker_color=color,
                    text=[f"{v:.3f}" for v in vals], textposition="inside", insidetextanchor="end",
                    error_y=dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#334155",
                                 thickness=1.2, width=6))
    fig.update_yaxes(title="Score", rangemode="tozero")
    return _style(fig, 340, barmode="group")


def answer_length_figure(reference_words: list[int], answers: dict[str, list[int | None]]) -> go.Figure:
    """Answer length against reference length (words) per row, one colour per model; on the dashed
    diagonal an answer is as long as its reference."""
    fig = go.Figure()
    colors = {"base": BASE_COLOR, "tuned": TUNED_COLOR}
    top = max([*reference_words, *(n for v in answers.values() for n in v if n is not None)], default=1)
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="same length", hoverinfo="skip",
                    line=dict(color="#CBD5E1", dash="dash", width=1))
    for name, lengths in answers.items():
        pts = [(r, n) for r, n in zip(reference_words, lengths) if n is not None]
        fig.add_scatter(x=[r for r, _ in pts], y=[n for _, n in pts], mode="markers", name=name.capitalize(),
                        marker=dict(color=colors.get(name, PRIMARY), size=7, opacity=0.75),
                        hovertemplate=f"reference %{{x}} words · {name} %{{y}} words<extra></extra>")
    fig.update_xaxes(title="Reference length (words)", rangemode="tozero")
    fig.update_yaxes(title="Answer length (words)", rangemode="tozero")
    return _style(fig, 340)


# ---------------------------------------------------------------- run monitoring and comparison

# One colour per run when runs are overlaid (the first is the studio's primary colour).
RUN_COLORS = ["#4F46E5", "#F59E0B", "#10B981", "#EF4444", "#06B6D4", "#8B5CF6", "#EC4899", "#84CC16",
              "#64748B", "#F97316"]
BEST_COLOR = "#10B981"
# Below this many logged steps the raw train loss is readable as it is; smoothing would only lag.
SMOOTH_MIN_POINTS = 10


def ema(values: list[float], weight: float | None = None) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (early points are not pulled towards 0).
    The default weight grows with the number of points: longer runs are noisier per point."""
    if weight is None:
        weight = min(0.95, max(0.6, 1 - 10 / max(1, len(values))))
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** i))
    return out


def train_loss_figure(metrics: list[dict], smooth: bool = True, best: tuple[int, float, str] | None = None
                      ) -> go.Figure | None:
    """Train loss (raw, and smoothed when there are enough steps) and eval loss against the step;
    `best` = (step, eval loss, label) marks the step whose adapter was kept."""
    train = [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None]
    evals = [(m["step"], m["eval_loss"]) for m in metrics if m.get("eval_loss") is not None]
    if not train and not evals:
        return None
    smoothed = smooth and len(train) >= SMOOTH_MIN_POINTS
    fig = go.Figure()
    if train:
        steps, values = [s for s, _ in train], [v for _, v in train]
        fig.add_scatter(x=steps, y=values, name="Train loss", mode="lines",
                        line=dict(color=TUNED_COLOR, width=1 if smoothed else 2), opacity=0.35 if smoothed else 1)
        if smoothed:
            fig.add_scatter(x=steps, y=ema(values), name="Train loss (smoothed)", mode="lines",
                            line=dict(color=TUNED_COLOR, width=2.5))
    if evals:
        fig.add_scatter(x=[s for s, _ in evals], y=[v for _, v in evals], name="Eval loss", mode="lines+markers",
                        line=dict(color=EVAL_COLOR, width=2, dash="dot"), marker=dict(size=8))
    if best:
        step, value, label = best
        fig.add_vline(x=step, line=dict(color=BEST_COLOR, width=1.5, dash="dash"))
        fig.add_annotation(x=step, y=value, text=label, showarrow=True, arrowhead=2, arrowcolor=BEST_COLOR, ax=0,
                           ay=-36, font=dict(color=BEST_COLOR), bgcolor="rgba(255,255,255,0.85)")
    fig.update_xaxes(title="Step", rangemode="tozero")
    fig.update_yaxes(title="Loss")
    return _style(fig, 340, hovermode="x unified")


def series_figure(metrics: list[dict], series: list[tuple[str, str, str]], y_title: str,
                  percent: bool = False, height: int = 240) -> go.Figure | None:
    """Small line chart of metrics.jsonl fields against the step: series = [(field, name, colour)];
    eval fields (logged every few steps) get markers."""
    fig = go.Figure()
    for key, name, color in series:
        points = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
        if points:
            sparse = key.startswith("eval_")
            fig.add_scatter(x=[s for s, _ in points], y=[v for _, v in points], name=name,
                            mode="lines+markers" if sparse else "lines", marker=dict(size=7),
                            line=dict(color=color, width=2, dash="dot" if sparse else "solid"))
    if not fig.data:
        return None
    fig.update_xaxes(title="Step", rangemode="tozero")
    fig.update_yaxes(title=y_title, tickformat=".0%" if percent else None,
                     exponentformat="e" if not percent else None)
    return _style(fig, height, hovermode="x unified")


def rewards_figure(metrics: list[dict]) -> go.Figure | None:
    """DPO: how often the chosen answer out-scores the rejected one (reward accuracy), and by how much
    (reward margin), on training batches and on the held-out pairs."""
    panels = (("Reward accuracy", "rewards_accuracies"), ("Reward margin", "rewards_margins"))
    fig = make_subplots(rows=1, cols=2, subplot_titles=[t for t, _ in panels], horizontal_spacing=0.1)
    for col, (_, key) in enumerate(panels, start=1):
        for field, name, color, dash in ((key, "Train", TUNED_COLOR, "solid"), (f"eval_{key}", "Eval", EVAL_COLOR, "dot")):
            points = [(m["step"], m[field]) for m in metrics if m.get(field) is not None]
            if points:
                fig.add_scatter(x=[s for s, _ in points], y=[v for _, v in points], name=name, legendgroup=name,
                                showlegend=col == 1, mode="lines+markers" if dash == "dot" else "lines",
                                line=dict(color=color, width=2, dash=dash), marker=dict(size=7), row=1, col=col)
    if not fig.data:
        return None
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title="Step", rangemode="tozero")
    _style(fig, 290, margin=dict(l=8, r=8, t=64, b=8))
    return fig.update_layout(legend_y=1.14)  # above the panel titles


def compare_loss_figure(curves: list[tuple[str, list[dict]]]) -> go.Figure | None:
    """Several runs overlaid, one colour per run: train loss (smoothed where long enough) on the left,
    eval loss on the right. curves = [(run label, metrics.jsonl records)]."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Train loss", "Eval loss"], horizontal_spacing=0.08)
    for i, (label, metrics) in enumerate(curves):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        train = [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None]
        evals = [(m["step"], m["eval_loss"]) for m in metrics if m.get("eval_loss") is not None]
        values = [v for _, v in train]
        if len(values) >= SMOOTH_MIN_POINTS:
            values = ema(values)
        first = True
        for col, points, ys, mode in ((1, train, values, "lines"), (2, evals, [v for _, v in evals], "lines+markers")):
            if points:
                fig.add_scatter(x=[s for s, _ in points], y=ys, name=label, legendgroup=label, showlegend=first,
                                mode=mode, line=dict(color=color, width=2), marker=dict(size=7), row=1, col=col,
                                hovertemplate=f"{label}<br>step %{{x}}: %{{y:.4f}}<extra></extra>")
                first = False
    if not fig.data:
        return None
    fig.update_xaxes(title="Step", rangemode="tozero")
    fig.update_yaxes(title="Loss", row=1, col=1)
    _style(fig, 380, margin=dict(l=8, r=8, t=72, b=8))
    return fig.update_layout(legend_y=1.14)  # above the panel titles
