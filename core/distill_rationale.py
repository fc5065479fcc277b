"""Rationales, the "distilling step-by-step" option of distillation (Hsieh et al., 2023): the teacher,
once it has answered a row, is asked in one sentence why that answer is right; a student then learns two
tasks from the same rows (multi-task training, as in the paper):

  the task itself   the normal prompt → the answer alone, through the student's template
  the rationale     a distinct instruction ("Explain …") with the same text → the teacher's rationale

So a student asked the normal prompt still answers with the label alone, and evaluation's label scoring
works on it unchanged; the rationale task only shapes what the student learns.

For classification the question names the teacher's chosen label, so the rationale explains the answer
the student learns, not another one. Generation is greedy and capped (TeacherPassConfig.rationale_tokens).
A tuned run's teacher writes its rationale with its adapter switched off: a run tuned to answer with the
label alone answers any question with a label (measured on the Debian teacher run: 8 of 8 "rationales"
were the bare label), while its base model, told the run's label, explains it. A rationale that only
repeats the answer teaches nothing and is marked as such.
A row whose rationale came out empty, an echo or failed keeps `rationale: null` and says why in `rationale_error`:
it still teaches its answer and stays out of the rationale task; the review flags it (no_rationale)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from core.config import GenerationConfig
from core.generate import generate_texts
from core.templates import PLACEHOLDER, fill_template, render_fitted_prompt

ANSWER = "{answer}"
# What the teacher is asked, by task; {answer} is its own answer to the row.
QUESTIONS = {"classification": ("Text: {input_text}\n\nThis text belongs to the category \"{answer}\". "
                                "In one sentence, explain why.")}
QUESTION = "Request: {input_text}\n\nAnswer: {answer}\n\nIn one sentence, explain why this answer fits the request."
# The student's rationale task: an instruction distinct from the task's own template, so the normal
# prompt keeps meaning "the answer alone".
INSTRUCTIONS = {"classification": "Explain in one sentence which category this text belongs to and why.\n\n"
                                  "Text: {input_text}"}
INSTRUCTION = "Explain in one sentence how to answer this request.\n\nRequest: {input_text}"
# A base-model teacher has no tuned length: the text in a rationale question is cut to fit this many
# tokens, so one 11,000-token description cannot stall the pass.
QUESTION_TOKENS = 768
# What generating a batch may raise that is about those rows (as core.distill_teacher.ANSWER_ERRORS).
RATIONALE_ERRORS = (RuntimeError, ValueError, IndexError)
EMPTY = "empty: the teacher wrote no rationale"
ECHO = "only the answer again: the teacher gave no reason"
NO_ANSWER = "no answer to explain"


def question_template(task: str, answer: str) -> str:
    """The rationale question for one answered row, with its {input_text} placeholder still to fill."""
    # The answer is the model's text: a placeholder inside it must stay text, not become the row.
    answer = str(answer).strip().replace(PLACEHOLDER, "{input text}")
    return QUESTIONS.get(task, QUESTION).replace(ANSWER, answer)


def student_instruction(task: str, input_text: str) -> str:
    """The user turn of the student's rationale task for a row."""
    return fill_template(INSTRUCTIONS.get(task, INSTRUCTION), input_text)


def tidy(text: str | None) -> str:
    """One line: a rationale is a sentence, and a line break in it would only be noise to learn."""
    return " ".join(str(text or "").split())


def echoes(rationale: str, answer: str) -> bool:
    """The rationale is the answer itself (give or take quotes, case and a full stop)."""
    def bare(text: str) -> str:
        return text.strip().strip("\"'`.").strip().lower()
    return bare(rationale) == bare(str(answer))


def generate_split(generate: Callable[[list[str]], list[str]],
                   prompts: list[str]) -> list[tuple[str | None, str | None]]:
    """(text, error) for each prompt. A failing batch is halved down to the prompt that fails alone, so
    only that row is marked failed, never its neighbours (as core.distill_teacher.answer_rows)."""
    try:
        return [(text, None) for text in generate(prompts)]
    except RATIONALE_ERRORS as e:
        if len(prompts) > 1:
            half = len(prompts) // 2
            return generate_split(generate, prompts[:half]) + generate_split(generate, prompts[half:])
        return [(None, f"{type(e).__name__}: {e}")]


def add_rationales(lm, tokenizer, task: str, lines: list[dict], *, max_tokens: int, batch_size: int,
                   room: int | None = None) -> list[dict]:
    """The answer lines with `rationale` (text or None) and `rationale_error` (None, EMPTY, NO_ANSWER or
    the error): each answered row's teacher explains its answer. `room`: the most tokens a question may
    take (a teacher run's tuned length); QUESTION_TOKENS without one."""
    limit = max(16, room - max_tokens) if room else QUESTION_TOKENS  # the rationale fits the tuned length too
    answered = [i for i, line in enumerate(lines) if line.get("status") == "ok" and line.get("answer") is not None]
    prompts = [render_fitted_prompt(tokenizer, question_template(task, lines[i]["answer"]), lines[i]["prompt"],
                                    limit)[0] for i in answered]
    gen = GenerationConfig(max_output_tokens=max_tokens, batch_size=batch_size)  # greedy: temperature 0
    with lm.disable_adapter() if hasattr(lm, "disable_adapter") else nullcontext():  # see the docstring
        found = dict(zip(answered, generate_split(lambda ps: generate_texts(lm, tokenizer, ps, gen), prompts)))
    out = []
    for i, line in enumerate(lines):
        text, error = found.get(i, (None, NO_ANSWER))
        text = tidy(text) or None
        if text and echoes(text, line["answer"]):
            text, error = None, ECHO
        out.append({**line, "rationale": text, "rationale_error": error or (None if text else EMPTY)})
    return out


def rationale_done(line: dict) -> bool:
    """The row's rationale was asked and settled: written, or empty or an echo (greedy would write the same).
    A failed one (out of memory, say) is asked again when the pass resumes, like a failed answer."""
    return "rationale" in line and (line["rationale"] is not None or line.get("rationale_error") in (EMPTY, ECHO))


def rationale_rows(rows: list[dict], task: str) -> list[dict]:
    """The student's rationale-task rows, as chat turns ({"messages": [user, assistant]}), for the given
    rows (core.distill_review.review's kept ones) that have a rationale. A row whose answer was corrected
    in a labeling queue is left out: its rationale explains the answer that was replaced."""
    return [{"messages": [{"role": "user", "content": student_instruction(task, r["prompt"])},
                          {"role": "assistant", "content": r["rationale"]}]}
            for r in rows if r.get("rationale") and r.get("training_answer", r.get("answer")) == r.get("answer")]
