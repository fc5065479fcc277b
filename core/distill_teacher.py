"""The teacher pass, the first half of distillation: a teacher model answers every row of an unlabeled
prompt file and/or a labeled file, as a job of kind `teacher_pass` (core.worker). For classification the
answer is the best-scoring label (core.label_scoring), so it is always in the label set, and the margin
over the runner-up label says how sure the teacher was; other tasks generate greedily.

The pass writes its folder (workspace/distill/<id>/):
  teacher.json   what the teacher was asked with: model, run, template, label set, row count
  answers.jsonl  one line per answered row: row, source, line, prompt, answer, status (ok / failed) and
                 error, the given label where the row has one, the label margin for classification; with
                 `rationale` asked, the teacher's one-sentence rationale of its answer and rationale_error
                 (core.distill_rationale)
Answers are appended a few batches at a time, so a killed pass loses at most those; a pass started again
on the same folder reads the file back and answers only the rows without an `ok` line for the same
prompt (failed rows are tried again: a failure such as running out of memory may not repeat; so are rows
whose rationale failed, while an empty or echoing one is final). The last
line of a row wins. Failed rows never reach training, and every one is counted (core.distill_review)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core import runs
from core.config import BUNDLED_MODEL, ConfigError, GenerationConfig, TeacherPassConfig
from core.data import DataError, load_dataset
from core.distill_rationale import add_rationales, rationale_done
from core.generate import generate_texts, label_sequences
from core.label_scoring import content_free_prompts, label_lean, score_labels, top_two
from core.models import RUN_MODEL_PREFIX, load_model
from core.names import ADAPTER_DIR, CONFIG_FILE, TEACHER_ANSWERS_FILE, TEACHER_FILE
from core.templates import render_fitted_prompt, render_prompt, template_for

# Answers are written after this many batches: what a kill can lose, against one shared-prefix pass of
# label scoring per write (core.label_scoring runs the prompts' common start once per call).
BATCHES_PER_WRITE = 4
# What answering a batch may raise that is about those rows (out of memory, a prompt the model cannot
# take), not about the pass: such rows are marked failed with the error, and the pass goes on.
ANSWER_ERRORS = (RuntimeError, ValueError, IndexError)


def teacher_run_config(workspace: str | Path, teacher: str) -> dict | None:
    """The config.json of a `run:RUN_ID` teacher (None for a base model); raises ValueError when the run
    has no adapter to answer with yet."""
    if not teacher.startswith(RUN_MODEL_PREFIX):
        return None
    run_id = teacher[len(RUN_MODEL_PREFIX):]
    run_dir = runs.run_path(workspace, run_id)
    if not (run_dir / ADAPTER_DIR / "adapter_config.json").exists():
        raise ValueError(f"teacher run {run_id} has no adapter yet (state: {runs.read_status(run_dir).get('state')}); "
                         "wait for it to finish, or choose another teacher")
    return runs.read_json(run_dir / CONFIG_FILE, {}) or {}


def plan(workspace: str | Path, cfg: TeacherPassConfig) -> dict:
    """What the pass will do, read without loading a model (the CLI calls it before queueing, so a bad
    file or a missing label set fails at once): {"rows": [{row, source, line, prompt, given}], "labels",
    "template", "teacher_model", "teacher_run"}. Raises DataError (a file) or ConfigError (a setting)."""
    run_cfg = teacher_run_config(workspace, cfg.teacher)
    rows: list[dict] = []
    if cfg.prompts:
        data = load_dataset(cfg.prompts, cfg.input_column, require_output=False, format="unlabeled")
        rows += [{"source": "prompts", "line": e["line"], "prompt": e["input_text"], "given": None}
                 for e in data.examples]
    given_labels: list[str] = []
    if cfg.labeled:
        data = load_dataset(cfg.labeled, cfg.input_column, cfg.output_column)
        if data.format != "prompt_answer":
            raise DataError(f"holds {data.format.replace('_', ' ')} data; the labeled file of a teacher pass needs "
                            "prompt → answer rows", file=cfg.labeled, hint="Choose a prompt/answer file.")
        rows += [{"source": "labeled", "line": e["line"], "prompt": e["input_text"], "given": e["output_text"]}
                 for e in data.examples]
        given_labels = data.labels
    rows = rows[:cfg.limit] if cfg.limit else rows
    for i, r in enumerate(rows):
        r["row"] = i
    labels: list[str] = []
    if cfg.task == "classification":
        labels = cfg.labels or given_labels or list((run_cfg or {}).get("labels") or [])
        if len(labels) < 2:
            raise ConfigError("classification needs a label set of at least two labels for the teacher to choose "
                              "from: give a labeled file (--labels FILE), name the labels (--label, repeatable), or "
                              "choose a teacher run tuned for classification (--teacher run:RUN_ID)")
    template = template_for(run_cfg, cfg.task, labels, cfg.template)
    return {"rows": rows, "labels": labels, "template": template,
            # A teacher run reads prompts within the length it was tuned at, as evaluation asks it
            # (core.templates.render_fitted_prompt): an 11,000-token description no longer stalls a pass.
            "max_prompt_tokens": (run_cfg or {}).get("max_seq_length"),
            "teacher_model": (run_cfg.get("model") or BUNDLED_MODEL) if run_cfg is not None else cfg.teacher,
            "teacher_run": cfg.teacher[len(RUN_MODEL_PREFIX):] if run_cfg is not None else None}


def read_answers(job_dir: str | Path) -> dict[int, dict]:
    """The answers written so far, by row; a row answered twice (a retried failure) keeps its last line."""
    return {r["row"]: r for r in runs.read_jsonl(Path(job_dir) / TEACHER_ANSWERS_FILE) if isinstance(r.get("row"), int)}


def _answerer(lm, tokenizer, cfg: TeacherPassConfig, labels: list[str],
              template: str) -> Callable[[list[str]], list[dict]]:
    """A function from rendered prompts to {"answer", "margin", "runner_up"} each, raising when the batch
    fails (so the caller can find the row that fails)."""
    if cfg.task == "classification":
        content_free = content_free_prompts(lambda text: render_prompt(tokenizer, template, text))
        lean: dict[str, float] = {}

        def by_label(prompts: list[str]) -> list[dict]:
            if cfg.calibration and not lean:  # measured once per pass: the teacher's lean does not change
                lean.update(label_lean(lm, tokenizer, content_free, labels))
            out = []
            for scored in score_labels(lm, tokenizer, prompts, labels, batch_size=cfg.batch_size,
                                       calibration=cfg.calibration, lean=lean or None):
                best = top_two(scored)
                margin = best["loglik"] - best["runner_up_loglik"] if "runner_up" in best else None
                out.append({"answer": scored["label"], "margin": None if margin is None else round(margin, 4),
                            "runner_up": best.get("runner_up")})
            return out
        return by_label
    gen = GenerationConfig(max_output_tokens=cfg.max_output_tokens, batch_size=cfg.batch_size)  # greedy

    def by_generation(prompts: list[str]) -> list[dict]:
        return [{"answer": text, "margin": None, "runner_up": None} for text in generate_texts(lm, tokenizer, prompts, gen)]
    return by_generation


def answer_rows(answer: Callable[[list[str]], list[dict]], rows: list[dict], rendered: list[str]) -> list[dict]:
    """Answer lines for `rows`. When the batch fails, each half is answered on its own, down to single
    rows: only a row that fails alone is marked failed (with its error), never its neighbours, and a
    batch too big for memory is answered in smaller ones."""
    try:
        results = answer(rendered)
    except ANSWER_ERRORS as e:
        if len(rows) > 1:
            half = len(rows) // 2
            return answer_rows(answer, rows[:half], rendered[:half]) + answer_rows(answer, rows[half:], rendered[half:])
        return [{**rows[0], "answer": None, "status": "failed", "error": f"{type(e).__name__}: {e}",
                 "margin": None, "runner_up": None}]
    return [{**r, **res, "status": "ok", "error": None} for r, res in zip(rows, results)]


def run_teacher_pass(workspace: str | Path, cfg: TeacherPassConfig, job_dir: str | Path,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Answer every row not yet answered in job_dir/answers.jsonl; returns {"rows", "ok", "failed",
    "answered_now"}. progress(done, total) is called after each write, counting rows answered before."""
    workspace, job_dir = Path(workspace), Path(job_dir)
    planned = plan(workspace, cfg)
    rows = planned["rows"]
    runs.write_json(job_dir / TEACHER_FILE, {"teacher": cfg.teacher, "teacher_model": planned["teacher_model"],
                                            "teacher_run": planned["teacher_run"], "task": cfg.task,
                                            "template": planned["template"], "labels": planned["labels"],
                                            "rows": len(rows), "rationale": cfg.rationale})
    earlier = read_answers(job_dir)
    # A row is finished when its last line is ok for the same prompt (the file may have changed since).
    finished = {i for i, r in earlier.items() if i < len(rows) and r.get("status") == "ok"
                and r.get("prompt") == rows[i]["prompt"] and (not cfg.rationale or rationale_done(r))}
    pending = [r for r in rows if r["row"] not in finished]
    done = len(rows) - len(pending)
    if progress:
        progress(done, len(rows))
    if pending:
        lm, tokenizer = _load_teacher(workspace, cfg, planned["teacher_model"])
        answer = _answerer(lm, tokenizer, cfg, planned["labels"], planned["template"])
        room = planned["max_prompt_tokens"]
        if room and planned["labels"]:
            room -= max(map(len, label_sequences(tokenizer, planned["labels"])))
        rendered = {r["row"]: render_fitted_prompt(tokenizer, planned["template"], r["prompt"], room)[0]
                    for r in pending}
        pending.sort(key=lambda r: len(rendered[r["row"]]))  # similar lengths pad little
        size = cfg.batch_size * BATCHES_PER_WRITE
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            lines = answer_rows(answer, chunk, [rendered[r["row"]] for r in chunk])
            if cfg.rationale:  # written with the answers: a kill loses both or neither
                lines = add_rationales(lm, tokenizer, cfg.task, lines, max_tokens=cfg.rationale_tokens,
                                       batch_size=cfg.batch_size, room=planned["max_prompt_tokens"])
            for line in lines:
                runs.append_jsonl(job_dir / TEACHER_ANSWERS_FILE, line)
            done += len(chunk)
            if progress:
                progress(done, len(rows))
    final = read_answers(job_dir)
    ok = sum(final.get(r["row"], {}).get("status") == "ok" for r in rows)
    return {"rows": len(rows), "ok": ok, "failed": len(rows) - ok, "answered_now": len(pending)}


def _load_teacher(workspace: Path, cfg: TeacherPassConfig, model: str):
    """The teacher ready to answer: a base model, or a tuned run's base with its adapter (read only: the
    run's folder is never written)."""
    if cfg.teacher.startswith(RUN_MODEL_PREFIX):
        run_dir = runs.run_path(workspace, cfg.teacher[len(RUN_MODEL_PREFIX):])
        lm, tokenizer, _ = load_model(model, workspace, cfg.device, adapter=run_dir / ADAPTER_DIR)
    else:
        lm, tokenizer, _ = load_model(cfg.teacher, workspace, cfg.device)
    return lm, tokenizer
