"""The pre-flight report on a dataset: every problem grouped by kind with file/line/field, the safe
fixes that apply, label balance, duplicates, train/eval overlap and length statistics, and (with a
tokenizer) token lengths, truncation and the exact rendered text with the loss-carrying tokens marked.
Shown by the Datasets page and by `studio data check`."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from core.data import MIN_EXAMPLES, DataError, Dataset, parse_dataset, printable
from core.templates import training_pairs

RECOMMENDED = {"classification": 100, "summarization": 100, "text_generation": 200}
SHOW_PER_KIND = 20


def _problem(e: DataError, kind: str | None = None, level: str = "error") -> dict:
    return {"kind": kind or e.kind or (f"`{e.field}` {e.message}" if e.field else e.message), "level": level,
            "line": e.line, "field": e.field, "message": str(e), "hint": e.hint or "",
            "file": printable(str(e.file)) if e.file else None}


def file_error_report(path: str | Path, e: DataError) -> dict:
    """The report of a file that cannot be used at all: `usable` False, the DataError as `error` (file,
    line, field, message, hint) and as the one problem."""
    problem = _problem(e, kind="file cannot be used")
    report = {"file": str(path), "format": None, "columns": [], "rows": 0, "valid_rows": 0, "usable": False,
              "problems": [problem], "notes": [], "fixes": [], "stats": {},
              "error": {k: problem[k] for k in ("message", "file", "line", "field", "hint")}}
    report["groups"] = group_problems(report["problems"])
    return report


def _text_of(example: dict) -> str:
    if "messages" in example:
        return json.dumps(example["messages"], ensure_ascii=False)
    return example.get("input_text") or example.get("prompt", "")


def _answer_of(example: dict) -> str:
    if "messages" in example:
        return next((m["content"] for m in reversed(example["messages"]) if m["role"] == "assistant"), "")
    return example.get("output_text") or example.get("chosen") or ""


def check_dataset(path: str | Path, task: str | None = None, format: str | None = None,
                  input_column: str | None = None, output_column: str | None = None,
                  eval_path: str | Path | None = None) -> dict:
    """A JSON-ready report. `usable` is False when tuning on this file cannot work as it is. Raises nothing
    for a bad file: a file that cannot be read at all gives `error` (and one problem); bad rows, values of
    the wrong type and values read with a change are problems with their line and field."""
    report = {"file": str(path), "format": None, "columns": [], "rows": 0, "valid_rows": 0, "usable": False,
              "problems": [], "notes": [], "fixes": [], "stats": {}}
    try:
        data, errors = parse_dataset(path, input_column, output_column, format)
    except DataError as e:  # the file as a whole cannot be read
        return file_error_report(path, e)
    problems = [_problem(e) for e in errors] + [_problem(w, level="warning") for w in data.warnings]
    ex = data.examples
    report.update(format=data.format, columns=[data.input_column, data.output_column], notes=list(data.notes),
                  rows=len(ex) + len(errors), valid_rows=len(ex))
    if errors:
        report["fixes"].append({"fix": "drop_invalid", "label": f"Drop the {len(errors)} rows with problems",
                                "rows": len(errors)})

    # Whitespace around texts: harmless for reading, but it becomes part of what the model learns.
    padded = [e["line"] for e in ex if any(isinstance(v, str) and v != v.strip() for k, v in e.items() if k != "line")]
    if padded:
        problems += [{"kind": "leading or trailing whitespace", "level": "warning", "line": n, "field": None,
                      "message": f"line {n}: text starts or ends with spaces or line breaks",
                      "hint": "Strip it (one click) so the model does not learn stray spaces."} for n in padded]
        report["fixes"].append({"fix": "strip", "label": f"Strip whitespace in {len(padded)} rows", "rows": len(padded)})

    # Duplicates: the same example twice over-weights it; the same prompt with two answers confuses.
    by_prompt = defaultdict(list)
    for e in ex:
        by_prompt[_text_of(e)].append(e)
    dups, conflicts = [], []
    for group in by_prompt.values():
        answers = Counter(_answer_of(e) for e in group)
        seen = set()
        for e in group:
            a = _answer_of(e)
            if a in seen:
                dups.append(e["line"])
            seen.add(a)
        if len(answers) > 1:
            conflicts.append([e["line"] for e in group])
    problems += [{"kind": "duplicate example", "level": "warning", "line": n, "field": None,
                  "message": f"line {n}: the same prompt and answer appear earlier",
                  "hint": "Drop duplicates (one click) unless the repetition is deliberate."} for n in dups]
    problems += [{"kind": "same prompt, different answers", "level": "warning", "line": lines[0], "field": None,
                  "message": f"lines {', '.join(map(str, lines[:6]))}: one prompt with different answers",
                  "hint": "Keep the right answer; contradictory examples cap what tuning can learn."}
                 for lines in conflicts]
    if dups:
        report["fixes"].append({"fix": "drop_duplicates", "label": f"Drop {len(dups)} duplicate rows", "rows": len(dups)})

    stats = {"prompt_chars": _describe([len(_text_of(e)) for e in ex]),
             "answer_chars": _describe([len(_answer_of(e)) for e in ex])}
    if data.format == "prompt_answer" and task in (None, "classification"):
        counts = data.label_counts()
        stats["labels"] = counts
        if task == "classification" or len(counts) <= max(2, len(ex) // 5):
            rare = {k: v for k, v in counts.items() if v < max(3, 0.01 * len(ex))}
            problems += [{"kind": "rare class", "level": "warning", "line": None, "field": data.output_column,
                          "message": f"class `{k}` has only {v} example{'s' if v > 1 else ''}",
                          "hint": "Add examples of it, or expect a low F1 for that class."} for k, v in rare.items()]
    if eval_path:
        try:
            ev, _ = parse_dataset(eval_path, input_column, output_column, format)
            train_prompts = set(by_prompt)
            overlap = [e["line"] for e in ev.examples if _text_of(e) in train_prompts]
            stats["eval_rows"] = len(ev.examples)
            stats["train_eval_overlap"] = len(overlap)
            problems += [{"kind": "eval example also in training data", "level": "warning", "line": n,
                          "field": None, "message": f"{Path(eval_path).name}, line {n}: this prompt is also in the "
                          "training file", "hint": "Remove it from one of the files, or eval scores flatter the run."}
                         for n in overlap]
            if task == "classification" and data.format == ev.format == "prompt_answer":
                # A class the run never saw in training cannot be predicted: its F1 is 0 by construction.
                trained = set(data.label_counts())
                unseen = Counter(e["output_text"] for e in ev.examples if e["output_text"] not in trained)
                problems += [{"kind": "eval class absent from training", "level": "warning", "line": None,
                              "field": ev.output_column,
                              "message": f"{Path(eval_path).name}: class `{k}` ({v} row{'s' * (v > 1)}) never "
                                         "appears in the training file",
                              "hint": "Add training examples of it, or leave it out of the eval set."}
                             for k, v in sorted(unseen.items())]
        except DataError as e:
            problems.append(_problem(e, kind="eval file cannot be used"))

    want = RECOMMENDED.get(task or "", 100)
    if len(ex) < MIN_EXAMPLES:
        problems.append({"kind": "too few examples", "level": "error", "line": None, "field": None,
                         "message": f"{len(ex)} valid examples; tuning needs at least {MIN_EXAMPLES}",
                         "hint": f"Add examples: {want}+ are recommended for {task or 'this task'}."})
    elif len(ex) < want and data.format in ("prompt_answer", "chat"):  # a recommendation for tuning sets only
        report["notes"].append(f"{len(ex)} examples work, but {want}+ are recommended for "
                               f"{(task or 'this task').replace('_', ' ')}.")
    report["stats"] = stats
    report["problems"] = problems
    report["groups"] = group_problems(problems)
    report["usable"] = len(ex) >= MIN_EXAMPLES and data.format in ("prompt_answer", "chat")
    return report


def group_problems(problems: list[dict]) -> list[dict]:
    """Problems grouped by kind, errors first, each with a count and the first few."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in problems:
        groups[p["kind"]].append(p)
    out = [{"kind": k, "level": v[0]["level"], "count": len(v), "hint": v[0]["hint"], "first": v[:SHOW_PER_KIND]}
           for k, v in groups.items()]
    return sorted(out, key=lambda g: (g["level"] != "error", -g["count"]))


def _describe(values: list[int]) -> dict:
    if not values:
        return {}
    s = sorted(values)
    return {"min": s[0], "median": s[len(s) // 2], "p95": s[min(len(s) - 1, int(0.95 * len(s)))], "max": s[-1]}


def apply_fixes(data: Dataset, fixes: list[str]) -> list[dict]:
    """The valid examples with the chosen safe fixes applied: strip, drop_duplicates (drop_invalid is
    implied: invalid rows are not in `data`). Never changes the source file."""
    out, seen = [], set()
    for e in data.examples:
        e = {k: (v.strip() if isinstance(v, str) and "strip" in fixes else v) for k, v in e.items()}
        if "messages" in e and "strip" in fixes:
            e["messages"] = [{**m, "content": m["content"].strip()} for m in e["messages"]]
        key = json.dumps({k: v for k, v in e.items() if k != "line"}, sort_keys=True, ensure_ascii=False)
        if "drop_duplicates" in fixes and key in seen:
            continue
        seen.add(key)
        out.append(e)
    return out


def format_report(report: dict) -> str:
    """The report as text for the terminal."""
    lines = [f"{report['file']}: {report['format'] or 'unknown format'}, {report['valid_rows']} of {report['rows']} "
             f"rows usable" + (f" (columns {', '.join(c for c in report['columns'] if c)})" if report["columns"] else "")]
    for g in report["groups"]:
        lines.append(f"\n{g['level'].upper()}  {g['kind']}  ×{g['count']}" + (f"\n  → {g['hint']}" if g["hint"] else ""))
        for p in g["first"][:5]:
            lines.append(f"  {p['message']}")
        if g["count"] > 5:
            lines.append(f"  … and {g['count'] - 5} more")
    for n in report["notes"]:
        lines.append(f"\nnote: {n}")
    st = report.get("stats", {})
    if st.get("labels"):
        lines.append("\nlabels: " + ", ".join(f"{k} {v}" for k, v in st["labels"].items()))
    if st.get("prompt_chars"):
        p, a = st["prompt_chars"], st["answer_chars"]
        lines.append(f"prompt chars: median {p['median']}, p95 {p['p95']}, max {p['max']};  "
                     f"answer chars: median {a['median']}, max {a['max']}")
    if "train_eval_overlap" in st:
        lines.append(f"eval rows: {st['eval_rows']}, of which {st['train_eval_overlap']} also in training")
    lines.append("\n" + ("ready for tuning" if report["usable"] else "NOT usable for tuning as it is"))
    return "\n".join(lines)


def loss_segments(tokenizer, prompt: str, completion: str, max_length: int | None = None) -> list[dict]:
    """The text the model trains on, token by token merged into runs, each marked whether it carries loss
    (the answer) or not (the prompt): tokenised exactly as TRL does (prompt and prompt+completion, loss
    after their common prefix), and cut at max_length as training cuts it."""
    prompt_ids = tokenizer(prompt).input_ids
    full = tokenizer(prompt + completion).input_ids
    start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full)) if a != b), min(len(prompt_ids), len(full)))
    if max_length:
        full = full[:max_length]
    segments: list[dict] = []
    for i, tok in enumerate(full):
        loss = i >= start
        piece = tokenizer.decode([tok])
        if segments and segments[-1]["loss"] == loss:
            segments[-1]["text"] += piece
        else:
            segments.append({"text": piece, "loss": loss})
    return segments


def token_preflight(data: Dataset, tokenizer, template: str, max_length: int, show: int = 3) -> dict:
    """Token lengths of prompts and answers as training renders them, which examples max_length cuts
    (answer partly lost) or drops (no answer token left), and a few rendered examples with loss marks."""
    prompt_len, answer_len, cut, dropped, shown = [], [], [], [], []
    for e in data.examples:
        for pair in training_pairs(tokenizer, template, e):
            p = len(tokenizer(pair["prompt"]).input_ids)
            total = len(tokenizer(pair["prompt"] + pair["completion"]).input_ids)
            prompt_len.append(p)
            answer_len.append(total - p)
            if p >= max_length:
                dropped.append(e["line"])
            elif total > max_length:
                cut.append(e["line"])
            if len(shown) < show:
                shown.append({"line": e["line"], "segments": loss_segments(tokenizer, pair["prompt"],
                                                                          pair["completion"], max_length)})
    return {"max_length": max_length, "prompt_tokens": prompt_len, "answer_tokens": answer_len,
            "prompt_tokens_summary": _describe(prompt_len), "answer_tokens_summary": _describe(answer_len),
            "truncated_lines": cut, "dropped_lines": dropped, "examples": shown}
