"""What every data module shares: DataError, the one exception a dataset problem raises (with printable,
which keeps its text safe to show), and Dataset, what a parsed file becomes. They live here, below the
readers and the format parsers, so those can raise and build them without importing core.data, which
imports them (a cycle otherwise). core.data re-exports them, so `from core.data import DataError` works."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


class DataError(ValueError):
    """A dataset problem a person can fix: where it is, what is wrong, what to do. `kind` (optional) is a
    stable name for grouping in the check report when the message itself names a value."""

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None, kind: str | None = None):
        message, field, hint = printable(message), field and printable(field), hint and printable(hint)
        self.message, self.file, self.line, self.field, self.hint, self.kind = message, file, line, field, hint, kind
        where = ", ".join(p for p in (
            printable(Path(file).name) if file else "",
            f"line {line}" if line is not None else "",
            f"field `{field}`" if field else "") if p)
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} {hint}" if hint else text)

    def __reduce__(self):  # pickled by Streamlit's cache (Dataset.warnings): keep every part, not just the text
        return type(self), (self.message, self.file, self.line, self.field, self.hint, self.kind)


# A lone surrogate: half of a UTF-16 pair, which JSON's \uD800 escapes can produce and UTF-8 cannot store.
SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` safe to print and to store as UTF-8: a lone surrogate (half of a UTF-16 pair, which JSON's
    \\uD800 escapes can produce) is shown as its escape instead of failing later."""
    if text.isascii() or not SURROGATE.search(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class Dataset:
    path: Path
    examples: list[dict]
    """prompt_answer: {input_text, output_text, line}; chat: {messages, line};
    preference: {prompt, chosen, rejected, line}; unlabeled: {input_text, line}. `line` is the 1-based
    line an editor shows (CSV/TSV: the header is line 1); in a JSON array file, the item's number."""
    input_column: str
    output_column: str
    format: str = "prompt_answer"
    notes: list[str] = field(default_factory=list)
    """Things the reader did on the way that the user should know (e.g. a non-UTF-8 encoding)."""
    warnings: list[DataError] = field(default_factory=list)
    """Values the reader accepted but changed or doubts, each with its line and field (a number read as
    text, a key given twice); the check report lists them as warnings."""

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def labels(self) -> list[str]:
        return sorted({e["output_text"] for e in self.examples if "output_text" in e})

    def label_counts(self) -> dict[str, int]:
        return dict(Counter(e["output_text"] for e in self.examples if "output_text" in e).most_common())
