"""The four dataset formats: recognising which one a file holds from its column names, and turning its
rows into normalised examples (prompt_answer, chat, preference, unlabeled; the keys are listed on
core.data_types.Dataset). A parser returns the columns it used and one entry per row: an example, or
the DataError that rejects that row, so one bad row never hides the rest from the check report."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from core.data_cells import NUMBER_TYPES, describe_value, is_missing, refuse_surrogate, short_repr
from core.data_types import DataError, printable

# Column pairs recognised without a mapping, in order of preference.
KNOWN_COLUMNS = [("input_text", "output_text"), ("prompt", "label"), ("prompt", "completion"),
                 ("input", "output"), ("text", "label")]
# A pair file: the reference workflow's candidates (its `choice` column may be absent, or a cell empty,
# for pairs still to be labeled), or prompt/chosen/rejected.
PREFERENCE_COLUMNS = [("input_text", "candidate_0", "candidate_1"), ("prompt", "chosen", "rejected")]
UNLABELED_COLUMNS = ("input_text", "prompt", "text", "input")
FORMATS = ("prompt_answer", "chat", "preference", "unlabeled")
ROLES = {"system": "system", "user": "user", "model": "assistant", "assistant": "assistant"}


def detect_columns(columns: list[str]) -> tuple[str, str] | None:
    for pair in KNOWN_COLUMNS:
        if pair[0] in columns and pair[1] in columns:
            return pair
    return None


def detect_format(columns: list[str]) -> str | None:
    if "messages" in columns or "contents" in columns:
        return "chat"
    if any(all(c in columns for c in cols) for cols in PREFERENCE_COLUMNS):
        return "preference"
    if detect_columns(columns):
        return "prompt_answer"
    if len(columns) == 1 or any(c in columns for c in UNLABELED_COLUMNS):
        return "unlabeled"
    return None


# The check report's kind for a file read as prompts only beside a column that could hold its answers.
ANSWER_MISSING = "no answer column: read as prompts only"


def answer_names(prompt_column: str) -> list[str]:
    """The answer column names detect_columns pairs with this prompt column (`text` → `label`, `prompt` →
    `label` or `completion`); every known answer name when the prompt column is not a known one."""
    names = [a for p, a in KNOWN_COLUMNS if p == prompt_column]
    return names or list(dict.fromkeys(a for _, a in KNOWN_COLUMNS))


_NUMBER_TEXT = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _could_be_answers(values: list) -> bool:
    """Whether a column's values could be the answers: text, or numbers that repeat (class ids such as
    0/1). Numbers that never repeat are row ids or scores; lists and objects are not answers."""
    values = [v for v in values[:2000] if not is_missing(v) and not (isinstance(v, str) and not v.strip())]
    if not values or not all(isinstance(v, (str, bool, np.bool_, *NUMBER_TYPES)) for v in values):
        return False
    numbers = sum(not isinstance(v, str) or bool(_NUMBER_TEXT.fullmatch(v)) for v in values)
    if 2 * numbers < len(values):  # mostly words
        return True
    return 2 * len({str(v) for v in values}) <= len(values)


def answer_candidates(df: pd.DataFrame, columns: list[str], prompt_column: str) -> list[str]:
    """The columns besides the prompt that could hold answers (see _could_be_answers), in file order."""
    return [c for c in dict.fromkeys(columns) if c != prompt_column and _could_be_answers(_column(df, c))]


def missing_answer_column(df: pd.DataFrame, columns: list[str], prompt_column: str, path: Path,
                          notes: list[str], warnings: list[DataError]) -> None:
    """A file read as prompts only says that it has no answer column, and how loudly depends on why.
    With another column that could hold the answers (`text` beside `section_name_typo`), the answer column
    is most likely misnamed: a warning naming the columns found, the answer names looked for and the two
    ways out. With none (one column, or the prompt beside ids), the file is most likely a real set of
    prompts to generate answers for or to label: only a note on what tuning would need."""
    names = answer_names(prompt_column)
    known_prompt = any(p == prompt_column for p, _ in KNOWN_COLUMNS)
    looked = " or ".join(f"`{n}`" for n in names) + (f" (beside `{prompt_column}`)" if known_prompt else "")
    rename = (f"rename it to `{names[0]}`" if known_prompt
              else "rename the prompt and answer columns to `input_text` and `output_text`")
    candidates = answer_candidates(df, columns, prompt_column)
    if not candidates:
        add = (f"add the answers in a column named `{names[0]}`" if known_prompt
               else "add a column of answers and name the two `input_text` and `output_text`")
        notes.append(f"{printable(path.name)} has no answer column, so it is read as prompts only (to generate "
                     f"answers for, evaluate on, or label). An answer column is looked for as {looked}; to tune "
                     f"on this file, {add}.")
        return
    which = (f"`{candidates[0]}` holds" if len(candidates) == 1
             else f"one of {', '.join(f'`{c}`' for c in candidates)} holds")
    warnings.append(DataError(
        f"no answer column was found, so the file is read as prompts only: it has the columns "
        f"{', '.join(f'`{c}`' for c in columns)}, and the answer column is looked for as {looked}.",
        file=path, kind=ANSWER_MISSING,
        hint=f"If {which} the answers, {rename}, or pick it as the answer column: on the Datasets page choose the "
             f"format *Prompt → answer* and then the *Answer column* (command line: --input-column "
             f"{prompt_column} --output-column {candidates[0]})."))


def _require(path, columns, *names):
    for col in names:
        if col and col not in columns:
            raise DataError(f"column `{col}` is not in the file (it has {', '.join(columns)})", file=path, field=col)


def _parse_prompt_answer(df, lines, path, columns, input_column, output_column, cells):
    if input_column is None or output_column is None:
        found = detect_columns(columns)
        if found is None:
            raise DataError(f"no prompt/answer columns found; the file has {', '.join(columns)}", file=path,
                            hint="Name them input_text/output_text (or prompt/label), "
                                 "or map them with --input-column/--output-column.")
        input_column, output_column = input_column or found[0], output_column or found[1]
    _require(path, columns, input_column, output_column)
    rows = []
    for line, inp, out in zip(lines, _column(df, input_column), _column(df, output_column)):
        try:
            rows.append({"input_text": cells.text(inp, line, input_column),
                         "output_text": cells.text(out, line, output_column), "line": line})
        except DataError as e:
            rows.append(e)
    return (input_column, output_column), rows


def _column(df: pd.DataFrame, name: str) -> list:
    col = df[name]
    if isinstance(col, pd.DataFrame):  # the name is given twice (pandas keeps both): the first one
        col = col.iloc[:, 0]
    return col.tolist()


def _parse_unlabeled(df, lines, path, columns, input_column, output_column, cells):
    col = input_column or next((c for c in UNLABELED_COLUMNS if c in columns), columns[0])
    _require(path, columns, col)
    rows = []
    for line, inp in zip(lines, _column(df, col)):
        try:
            rows.append({"input_text": cells.text(inp, line, col), "line": line})
        except DataError as e:
            rows.append(e)
    return (col, ""), rows


def _parse_preference(df, lines, path, columns, input_column, output_column, cells):
    """Labeled pairs as {prompt, chosen, rejected}. A candidates row without a choice is a pair still to
    be labeled: {prompt, answer_a, answer_b} with chosen/rejected None (a labeling queue takes it; DPO
    leaves it out)."""
    vertex = all(c in columns for c in PREFERENCE_COLUMNS[0])
    names = PREFERENCE_COLUMNS[0] + (("choice",) if "choice" in columns else ()) if vertex else PREFERENCE_COLUMNS[1]
    rows = []
    for line, *values in zip(lines, *(_column(df, c) for c in names)):
        r = dict(zip(names, values))
        try:
            if vertex:
                prompt = cells.text(r["input_text"], line, "input_text")
                cands = [cells.text(r[f"candidate_{k}"], line, f"candidate_{k}") for k in (0, 1)]
                if is_missing(r.get("choice")):
                    rows.append({"prompt": prompt, "chosen": None, "rejected": None, "answer_a": cands[0],
                                 "answer_b": cands[1], "line": line})
                    continue
                choice = _choice(r["choice"])
                if choice is None:
                    raise DataError(f"must be 0 or 1 (or empty: not labeled yet), got {short_repr(r['choice'])}",
                                    file=path, line=line, field="choice",
                                    hint="choice names the better candidate: 0 or 1.", kind="`choice` must be 0 or 1")
                chosen, rejected = cands[choice], cands[1 - choice]
            else:
                prompt = cells.text(r["prompt"], line, "prompt")
                chosen = cells.text(r["chosen"], line, "chosen")
                rejected = cells.text(r["rejected"], line, "rejected")
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "line": line})
        except DataError as e:
            rows.append(e)
    return (("input_text", "choice") if vertex else ("prompt", "chosen")), rows


def labeled_pairs(examples: list[dict]) -> list[dict]:
    """The pairs with a choice: what DPO trains on."""
    return [e for e in examples if e.get("chosen") is not None]


def _choice(value) -> int | None:
    """0 or 1 from a choice cell: 0/1 as numbers (also 0.0/1.0, nullable integers) or as text; else None."""
    if isinstance(value, str):
        return {"0": 0, "1": 1, "0.0": 0, "1.0": 1}.get(value.strip())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, NUMBER_TYPES):
        return None
    return int(value) if value in (0, 1) else None


def _parse_chat(df, lines, path, columns, input_column, output_column, cells):
    key = "messages" if "messages" in columns else "contents"
    system = _column(df, "systemInstruction") if key == "contents" and "systemInstruction" in columns else None
    rows = []
    for i, (line, turns) in enumerate(zip(lines, _column(df, key))):
        try:
            rows.append({"messages": _chat_messages(turns, system[i] if system else None, key, path, line),
                         "line": line})
        except DataError as e:
            rows.append(e)
    return (key, ""), rows


def _chat_messages(turns, system, key: str, path: Path, line: int) -> list[dict]:
    if isinstance(turns, (tuple, np.ndarray)):
        turns = list(turns)
    if not isinstance(turns, list) or not turns:
        raise DataError("must be a non-empty list of turns", file=path, line=line, field=key,
                        hint='Each turn is an object like {"role": "user", "content": "…"}.')
    messages = []
    if isinstance(system, dict):
        system = _parts_text(system, "systemInstruction", path, line) if "parts" in system else None
    elif not (system is None or isinstance(system, str) or is_missing(system)):
        raise DataError(f"must be an object with parts, got {describe_value(system)}", file=path, line=line,
                        field="systemInstruction", hint='Write it as {"parts": [{"text": "…"}]}.')
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": refuse_surrogate(system, path, line, "systemInstruction")})
    for n, turn in enumerate(turns, start=1):
        where = f"{key}[{n}]"
        if not isinstance(turn, dict):
            raise DataError(f"each turn must be an object with a role, got {describe_value(turn)}", file=path,
                            line=line, field=where, kind="each turn must be an object with a role")
        role = ROLES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise DataError(f"unknown role {short_repr(turn.get('role'))}", file=path, line=line, field=f"{where}.role",
                            hint="Use system, user, model or assistant.", kind="unknown role")
        if key == "messages":
            content, at = turn.get("content"), f"{where}.content"
            if not (content is None or isinstance(content, str)):
                raise DataError(f"is {describe_value(content)}, expected text", file=path, line=line, field=at,
                                kind="turn content is not text", hint="Each turn's content must be a string.")
        else:
            content, at = _parts_text(turn, where, path, line), f"{where}.parts"
        if not isinstance(content, str) or not content.strip():
            raise DataError("is empty; every turn needs text", file=path, line=line, field=at)
        messages.append({"role": role, "content": refuse_surrogate(content, path, line, at)})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError("has no model/assistant turn to learn from", file=path, line=line, field=key,
                        hint="Each conversation needs at least one answer by the model.")
    asked = False
    for m in messages:
        if m["role"] == "user":
            asked = True
        elif m["role"] == "assistant" and asked:
            return messages
    raise DataError("has no user turn before the model's answer, so it gives nothing to learn from", file=path,
                    line=line, field=key, hint="Start the conversation with a user turn that the model answers.")


def _parts_text(obj: dict, where: str, path: Path, line: int) -> str:
    """The text of a Gemini-style `parts` list; parts without text (images, files) add nothing."""
    parts = obj.get("parts", [])
    if isinstance(parts, (tuple, np.ndarray)):
        parts = list(parts)
    if not isinstance(parts, list):
        raise DataError(f'must be a list of parts like [{{"text": "…"}}], got {describe_value(parts)}', file=path,
                        line=line, field=f"{where}.parts", kind="parts must be a list")
    texts = []
    for k, part in enumerate(parts, start=1):
        if not isinstance(part, dict):
            raise DataError(f'each part must be an object like {{"text": "…"}}, got {describe_value(part)}', file=path,
                            line=line, field=f"{where}.parts[{k}]", kind="each part must be an object")
        if "text" in part:
            if not isinstance(part["text"], str):
                raise DataError(f"is {describe_value(part['text'])}, expected text", file=path, line=line,
                                field=f"{where}.parts[{k}].text", kind="part text is not text")
            texts.append(part["text"])
    return " ".join(texts)


# Each format's parser: (df, lines, path, columns, input_column, output_column, cells) →
# ((input column, output column), rows), each row an example dict or the DataError for it.
PARSERS = {"prompt_answer": _parse_prompt_answer, "chat": _parse_chat,
           "preference": _parse_preference, "unlabeled": _parse_unlabeled}
