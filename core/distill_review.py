"""Reviewing a teacher pass before a student learns from it: every row with the flags that make it
doubtful, counts per flag, and the keep/drop decisions, stored in the pass's folder as review.json:

  {"drop_flags": [flags whose rows are dropped], "low_margin": nats, "decisions": {row: "keep" | "drop"},
   "sent": {row: {"queue", "item_id", "alternative"}}, "corrections": {row: answer}, "updated": time}

A row's decision: dropped when it has no usable answer (failed or empty: nothing to learn, and the data
reader refuses an empty answer); else the user's own decision for it; else kept once labeled in a
labeling queue, held out while it waits there; else dropped when it carries one of drop_flags; else kept.

Labeling queues (core.preferences) hold pairs, so a doubtful row goes there as a pair: the teacher's
answer against the given label where they disagree, else against the runner-up label. Once labeled,
the chosen answer becomes the row's answer (a correction) and the row is kept."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from core import preferences, runs
from core.distill_teacher import read_answers
from core.names import REVIEW_FILE, TEACHER_FILE

FLAGS = {
    "failed": "the teacher gave no answer (the error is kept)",
    "empty": "the answer is empty",
    "off_label": "the answer is not in the label set",
    "duplicate_prompt": "the same prompt appears in an earlier row",
    "duplicate_answer": "the same answer was given to an earlier prompt (text tasks)",
    "disagrees": "the answer differs from the row's given label (classification)",
    "low_margin": "the best label beat the runner-up by less than the low-margin threshold",
    "no_rationale": "a rationale was asked for and the teacher gave none (empty, the answer again, or failed; "
                    "rationale_error "
                    "says which): the row still teaches its answer, and stays out of the rationale task",
}
# Rows with no usable answer: never kept, whatever is decided.
UNUSABLE = ("failed", "empty")
# What a review drops unless told otherwise (`studio distill --keep-all` drops only UNUSABLE).
DEFAULT_DROP = ("failed", "empty", "off_label")
# Log-likelihood difference (nats) between the best label and the runner-up below which a classification
# answer is flagged: e^0.5 ≈ 1.6, the teacher found its answer less than twice as likely as the next one.
LOW_MARGIN = 0.5
DECISIONS = ("keep", "drop")


def flag_rows(rows: list[dict], task: str, labels: list[str], low_margin: float = LOW_MARGIN,
              rationale: bool = False) -> list[dict]:
    """Each row with "flags": the FLAGS that apply to it, in FLAGS order. `rationale`: the pass asked
    for rationales, so an answered row without one is flagged."""
    seen_prompts, seen_answers, out = set(), set(), []
    for r in rows:
        answer = r.get("answer")
        flags = []
        if r.get("status") != "ok" or answer is None:
            flags.append("failed")
        elif not answer.strip():
            flags.append("empty")
        elif labels and answer.strip() not in labels:
            flags.append("off_label")
        prompt = " ".join(str(r.get("prompt", "")).split())
        if prompt in seen_prompts:
            flags.append("duplicate_prompt")
        seen_prompts.add(prompt)
        if task != "classification" and answer and answer.strip():
            if answer.strip() in seen_answers:
                flags.append("duplicate_answer")
            seen_answers.add(answer.strip())
        # Free text almost never equals a reference word for word: agreement is a label's question.
        if task == "classification" and r.get("given") is not None and answer is not None \
                and answer.strip() != str(r["given"]).strip():
            flags.append("disagrees")
        if r.get("margin") is not None and r["margin"] < low_margin:
            flags.append("low_margin")
        if rationale and "failed" not in flags and not r.get("rationale"):
            flags.append("no_rationale")
        out.append({**r, "flags": flags})
    return out


def read_review(job_dir: str | Path) -> dict:
    """review.json with its defaults (the default review before anything was decided)."""
    stored = runs.read_json(Path(job_dir) / REVIEW_FILE, {}) or {}
    return {"drop_flags": list(stored.get("drop_flags", DEFAULT_DROP)),
            "low_margin": float(stored.get("low_margin", LOW_MARGIN)),
            "decisions": {int(k): v for k, v in (stored.get("decisions") or {}).items()},
            "sent": {int(k): v for k, v in (stored.get("sent") or {}).items()},
            "corrections": {int(k): v for k, v in (stored.get("corrections") or {}).items()},
            "updated": stored.get("updated")}


def _write_review(job_dir: Path, review: dict) -> None:
    runs.write_json(job_dir / REVIEW_FILE, {**review, "updated": runs.now_iso(),
                                            **{k: {str(i): v for i, v in review[k].items()}
                                               for k in ("decisions", "sent", "corrections")}})


def decision(row: dict, review: dict) -> str:
    """keep, drop, or waiting (in a labeling queue, not yet labeled): the rule in the module's docstring."""
    i = row["row"]
    if any(f in UNUSABLE for f in row["flags"]):
        return "drop"
    if i in review["decisions"]:
        return review["decisions"][i]
    if i in review["corrections"]:  # labeled in a queue: the label settles it
        return "keep"
    if i in review["sent"]:
        return "waiting"
    return "drop" if any(f in review["drop_flags"] for f in row["flags"]) else "keep"


def review(job_dir: str | Path) -> dict:
    """{"rows": every answered row with flags, decision and the answer a student learns, "counts": rows
    per flag, "kept", "dropped", "waiting", "total", "labels", "task"} of a teacher pass."""
    job_dir = Path(job_dir)
    teacher = runs.read_json(job_dir / TEACHER_FILE, {}) or {}
    stored = read_review(job_dir)
    answers = read_answers(job_dir)
    rows = flag_rows([answers[i] for i in sorted(answers)], teacher.get("task", "classification"),
                     teacher.get("labels") or [], stored["low_margin"], bool(teacher.get("rationale")))
    for r in rows:
        r["decision"] = decision(r, stored)
        r["training_answer"] = stored["corrections"].get(r["row"], r.get("answer"))
    decided = Counter(r["decision"] for r in rows)
    return {"rows": rows, "counts": {f: sum(f in r["flags"] for r in rows) for f in FLAGS},
            "kept": decided["keep"], "dropped": decided["drop"], "waiting": decided["waiting"],
            "total": teacher.get("rows", len(rows)), "labels": teacher.get("labels") or [],
            "task": teacher.get("task"), "drop_flags": stored["drop_flags"],
            "rationale": bool(teacher.get("rationale"))}


def decide(job_dir: str | Path, drop_flags: list[str] | tuple[str, ...] | None = None,
           decisions: dict[int, str] | None = None, low_margin: float | None = None) -> dict:
    """Change the review: which flags drop their rows, one row's own keep/drop (None removes it), the
    low-margin threshold. Checks everything before writing anything; returns review()."""
    job_dir = Path(job_dir)
    stored = read_review(job_dir)
    unknown = [f for f in drop_flags or () if f not in FLAGS]
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join(unknown)}; the flags are {', '.join(FLAGS)}")
    bad = {i: d for i, d in (decisions or {}).items() if d is not None and d not in DECISIONS}
    if bad:
        raise ValueError(f"a decision is keep or drop (or None to undo it); got {bad}")
    rows = {r["row"]: r for r in review(job_dir)["rows"]}
    missing = sorted(i for i in decisions or {} if i not in rows)
    if missing:
        raise ValueError(f"row(s) {missing} have no answer in this teacher pass ({len(rows)} rows answered)")
    unusable = sorted(i for i, d in (decisions or {}).items()
                      if d == "keep" and any(f in UNUSABLE for f in rows[i]["flags"]))
    if unusable:
        raise ValueError(f"row(s) {unusable} have no usable answer (failed or empty) and cannot be kept: "
                         "a student cannot learn from them; they stay out of training and are counted")
    if drop_flags is not None:
        stored["drop_flags"] = list(dict.fromkeys([*UNUSABLE, *drop_flags]))
    if low_margin is not None:
        stored["low_margin"] = float(low_margin)
    for i, d in (decisions or {}).items():
        if d is None:
            stored["decisions"].pop(i, None)
        else:
            stored["decisions"][i] = d
    _write_review(job_dir, stored)
    return review(job_dir)


def send_to_queue(workspace: str | Path, job_dir: str | Path, rows: list[int], queue: str) -> int:
    """Put the chosen rows into a labeling queue as pairs (the teacher's answer against the given label,
    else the runner-up label); they are held out of training until labeled. Returns items added."""
    job_dir = Path(job_dir)
    preferences.check_queue_name(queue)
    by_row = {r["row"]: r for r in review(job_dir)["rows"]}
    missing = sorted(i for i in rows if i not in by_row)
    if missing:
        raise ValueError(f"row(s) {missing} have no answer in this teacher pass")
    alternative = {i: (by_row[i]["given"] if "disagrees" in by_row[i]["flags"] else by_row[i].get("runner_up"))
                   for i in rows}
    lonely = sorted(i for i, alt in alternative.items() if not alt or by_row[i].get("answer") is None)
    if lonely:
        raise ValueError(f"row(s) {lonely} have no second answer to compare with: a labeling queue holds pairs, "
                         "the teacher's answer against the given label or the runner-up label")
    teacher = (runs.read_json(job_dir / TEACHER_FILE, {}) or {}).get("teacher", "teacher")
    pairs = [{"prompt": by_row[i]["prompt"], "answer_a": by_row[i]["answer"], "answer_b": alternative[i],
              "source_a": f"teacher {teacher}", "source_b": "given label" if "disagrees" in by_row[i]["flags"]
              else "runner-up label", "meta": {"teacher_pass": job_dir.name, "row": i}} for i in rows]
    ids = preferences.add_pairs(workspace, queue, pairs)
    stored = read_review(job_dir)
    for i, item_id in zip(rows, ids):
        stored["sent"][i] = {"queue": queue, "item_id": item_id, "alternative": alternative[i]}
        stored["corrections"].pop(i, None)
    _write_review(job_dir, stored)
    return len(ids)


def apply_queue_labels(workspace: str | Path, job_dir: str | Path) -> int:
    """Take the labels given so far to rows sent to labeling queues: the chosen answer becomes the row's
    training answer. Ties, both-bad and unlabeled items leave their rows waiting. Returns rows settled."""
    job_dir = Path(job_dir)
    stored = read_review(job_dir)
    settled = 0
    for queue in sorted({s["queue"] for s in stored["sent"].values()}):
        chosen = {p["item_id"]: p["chosen"] for p in preferences.final_pairs(workspace, queue)}
        for i, sent in stored["sent"].items():
            if sent["queue"] == queue and sent["item_id"] in chosen:
                stored["corrections"][i] = chosen[sent["item_id"]]
                settled += 1
    _write_review(job_dir, stored)
    return settled
