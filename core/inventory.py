"""The datasets a workspace can use, and where uploads go.

Three sources, listed in this order: the samples shipped in assets/, files uploaded into
<workspace>/datasets/, and the train/eval files of datasets registered in the catalog (core.catalog).
Also the small decisions every page and the CLI make about a file: the eval file that goes with a
training file, a catalog name for it, and which task its answers suggest."""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import core
from core import catalog
from core.data import SUPPORTED_SUFFIXES, DataError, Dataset, data_suffix

SAMPLES_DIR = Path(core.__file__).resolve().parent.parent / "assets"
UPLOADS = "datasets"  # the uploads folder inside a workspace
MAX_CLASSES = 50  # more distinct answers than this read as free text, not classes


def uploads_dir(workspace: str | Path) -> Path:
    """<workspace>/datasets: where uploaded files are stored (not created here)."""
    return Path(workspace) / UPLOADS


def safe_filename(name: str) -> str:
    """A file name a user supplied, reduced to [A-Za-z0-9._-] with no folder part and no leading dot,
    so it can never point outside the uploads folder (and is never hidden)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)
    base = re.sub(r"\.{2,}", ".", base).lstrip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip("._-")[:80] or "dataset"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def save_upload(workspace: str | Path, name: str, data: bytes) -> Path:
    """Store an uploaded file under <workspace>/datasets/ with a sanitized name. The write is atomic
    (temp file + rename) so the pickers never list half a file; an identical file is left alone so its
    mtime, and the caches keyed by it, stay valid."""
    fname = safe_filename(name)
    if data_suffix(fname) not in SUPPORTED_SUFFIXES:
        raise DataError(f"unsupported file type `{''.join(Path(fname).suffixes[-2:]) or '(none)'}`", file=fname,
                        hint=f"Use one of {', '.join(SUPPORTED_SUFFIXES)}, optionally gzipped (.jsonl.gz).")
    return store_file(uploads_dir(workspace), fname, data)


def store_file(folder: str | Path, fname: str, data: bytes) -> Path:
    """Write `data` as folder/fname (a name safe_filename made): atomically (temp file + rename, so the
    pickers never list half a file), and not at all when an identical file is there (its mtime, and the
    caches keyed by it, stay valid)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    target = (folder / fname).resolve()
    if target.parent != folder:  # belt and braces: safe_filename already forbids this
        raise DataError("this file name cannot be stored", file=fname, hint="Rename the file and upload it again.")
    if not target.exists() or target.read_bytes() != data:
        tmp = folder / f".{fname}.{secrets.token_hex(3)}.tmp"  # hidden: list_datasets skips it
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def list_datasets(workspace: str | Path) -> list[dict]:
    """Every dataset file the workspace can use, as {path, name, source}: first each registered dataset's
    train file (named by the dataset) and eval file — checked and split, what a run should use — then
    the samples, then the raw uploads."""
    items = []
    for name, entry in sorted(catalog.list_datasets(workspace).items()):
        for key, label in (("train_file", name), ("eval_file", f"{name} (eval)")):
            if entry.get(key) and Path(entry[key]).exists():
                items.append({"path": entry[key], "name": label, "source": "registered"})
    items += [{"path": str(p), "name": p.name, "source": "sample"} for p in sorted(SAMPLES_DIR.glob("*.jsonl"))]
    uploads = uploads_dir(workspace)
    for p in sorted(uploads.iterdir()) if uploads.is_dir() else []:
        if p.is_file() and data_suffix(p) in SUPPORTED_SUFFIXES and not p.name.startswith("."):
            items.append({"path": str(p), "name": p.name, "source": "uploaded"})
    return items


def sibling_eval(path: str | Path | None) -> str | None:
    """The eval file that goes with a training file, when it exists: `x_train.jsonl` → `x_eval.jsonl`
    (the samples), or a registered dataset's `train.jsonl` → `eval.jsonl`."""
    if not path:
        return None
    name = Path(path).name
    if name == "train.jsonl":
        other = Path(path).with_name("eval.jsonl")
    elif "_train" in name:
        other = Path(path).with_name(name.replace("_train", "_eval"))
    else:
        return None
    return str(other) if other.exists() else None


def dataset_name(path: str | Path, suffix: str = "") -> str:
    """A catalog name for a file: its stem (a registered dataset's own name), reduced to what
    core.catalog accepts, with `suffix` appended."""
    p = Path(path)
    if p.name in ("train.jsonl", "eval.jsonl"):
        stem = p.parent.name
    else:
        stem = Path(p.name[:-3] if p.name.lower().endswith(".gz") else p.name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).lstrip("._-")[: 64 - len(suffix)].rstrip(".-_") or "dataset"
    return stem + suffix


def looks_like_labels(dataset: Dataset) -> bool:
    """Answers drawn from a small set of values (classes) rather than free text: more than one distinct
    answer, at most MAX_CLASSES, and either at most one per two rows or short answers (three words or
    fewer on average) that repeat — a small file of section names is classes too."""
    answers = [e["output_text"] for e in dataset.examples if isinstance(e.get("output_text"), str)]
    n = len(set(answers))
    if not 1 < n <= MAX_CLASSES:
        return False
    short = sum(len(a.split()) for a in answers) / max(1, len(answers)) <= 3
    return n <= 0.5 * len(answers) or (short and n < len(answers))


def guess_task(dataset: Dataset) -> str:
    """The task a dataset most likely is for, a default the user can change: classification when its
    answers look like labels, text_generation for conversations, else summarization."""
    if looks_like_labels(dataset):
        return "classification"
    return "text_generation" if dataset.format == "chat" else "summarization"


def task_reason(dataset: Dataset) -> str:
    """Why guess_task chose what it chose, in a sentence the page shows beside the choice."""
    answers = [e["output_text"] for e in dataset.examples if isinstance(e.get("output_text"), str)]
    n, task = len(set(answers)), guess_task(dataset)
    if task == "classification":
        return f"Classification: the {len(answers)} answers take only {n} distinct values."
    if dataset.format == "chat":
        return "Text generation: the file holds conversations."
    if n <= 1:
        return "Summarization: every answer is the same, so they are not classes."
    return (f"Summarization: {n} distinct answers in {len(answers)} rows read as free text, not classes "
            f"(classes are at most {MAX_CLASSES} values that repeat).")
