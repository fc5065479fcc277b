"""`studio distill --compare EVAL_FILE`: teacher, student and student-before on one eval file, as a
table (or --json). The evaluations are jobs in the queue (core.distill_compare starts them); a finished
or running comparison asked the same way is reused rather than scored again."""
from __future__ import annotations

import sys
from pathlib import Path

from core import jobs
from core.config import EVAL_MODE_WORDS, resolve_eval_mode
from core.distill_compare import HEADLINES, find_comparison, read_comparison, speed_and_size, start_comparison


def run_comparison(ws: Path, run_id: str, eval_file: str, *, rows: int | None, device: str, quiet: bool) -> dict:
    """Start (or reuse) the comparison of a student run, wait for its evaluations, and return it read back
    (core.distill_compare.read_comparison). Raises ValueError, DataError or ConfigError for a bad request."""
    entry = find_comparison(ws, run_id, eval_file, rows)
    if entry is None:
        entry = start_comparison(ws, run_id, eval_file, limit=rows, device=device)
    elif not quiet:
        print(f"reusing comparison {entry['id']} of {Path(entry['eval_file']).name}", file=sys.stderr, flush=True)
    for role, rel in entry["evaluations"].items():
        def show(status, _new, role=role):  # on stderr: stdout keeps the table (or the one JSON line)
            if not quiet:
                print(f"compare · {role}: {status.get('done') or 0}/{status.get('total') or '?'} answers  "
                      f"{status.get('phase') or status.get('state') or ''}".rstrip(), file=sys.stderr, flush=True)
        jobs.wait(ws / rel, show, poll=0.5)
    return read_comparison(ws, run_id, entry["id"])


def comparison_failure(comparison: dict) -> str | None:
    """What went wrong with a comparison that did not succeed, in a line (None when it succeeded)."""
    if comparison["state"] == "succeeded":
        return None
    bad = [(role, j["status"]) for role, j in comparison["jobs"].items() if j["status"].get("state") != "succeeded"]
    return "; ".join(f"the {role} evaluation {s.get('state')}: {s.get('error') or ''}".rstrip(": ")
                     + (f" ({s['hint']})" if s.get("hint") else "") for role, s in bad)


def format_comparison(comparison: dict) -> str:
    """The comparison as text: one line per model (headline metrics, speed, size, memory), the per-class
    F1 for classification, and the student against the teacher."""
    task, models = comparison["task"], comparison["models"]
    heads = HEADLINES.get(task, [])
    rows = [[f"{m['role_name']} · {m['name']}", *(_number(m["headline"].get(k)) for k, _ in heads),
             *speed_and_size(m).values()] for m in models]
    header = ["model", *(label for _, label in heads), "answers/s", "parameters", "size on disk", "peak memory"]
    out = [(f"{Path(comparison['eval_file']).name} · {comparison.get('limit') or 'all'} rows · "
            f"{task.replace('_', ' ')} · answers: {EVAL_MODE_WORDS[resolve_eval_mode(task, comparison['mode'])]}"),
           *_table(header, rows)]
    if any(m.get("speed_shared") for m in models):
        out.append("(student and student-before answered in one evaluation: answers/s is their joint rate)")
    labels = list(dict.fromkeys(lab for m in models for lab in m["per_class_f1"]))
    if labels:
        out += ["", "F1 per class"]
        out += _table(["label", *(m["role_name"].lower() for m in models)],
                      [[lab, *(_number(m["per_class_f1"].get(lab)) for m in models)] for lab in labels])
    s = comparison["summary"]
    if s.get("metric") and s.get("vs_teacher") is not None:
        label = dict(heads).get(s["metric"], s["metric"])
        parts = [f"{label} {s['vs_teacher']:+.4f} vs the teacher"]
        if s.get("vs_before") is not None:
            parts.append(f"{s['vs_before']:+.4f} vs before tuning")
        if s.get("speed_vs_teacher"):
            parts.append(f"{s['speed_vs_teacher']:.2f}× the teacher's answers/s")
        if s.get("parameters_vs_teacher"):
            parts.append(f"{s['parameters_vs_teacher']:.2f}× its base parameters")
        out += ["", "student: " + "; ".join(parts)]
    return "\n".join(out)


def _number(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:  # the first column left-aligned, numbers right-aligned
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [line(header), *(line(r) for r in rows)]
