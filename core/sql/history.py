"""The statement history, workspace/sql/history.jsonl: one line per statement run, failed ones too.
A statement that became a job is shown with its job's state as it is now."""
from __future__ import annotations

from pathlib import Path

from core import runs
from core.names import ACTIVE_STATES, SQL_DIR

HISTORY_FILE = "history.jsonl"
RESULT_JSON = "result.json"


def history_path(workspace: str | Path) -> Path:
    return Path(workspace) / SQL_DIR / HISTORY_FILE


def record(workspace: str | Path, *, statement: str, started: str, seconds: float, state: str, message: str,
           rows: int | None = None, job_dir: str | None = None) -> None:
    path = history_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.append_jsonl(path, {"statement": statement, "started": started, "seconds": round(seconds, 3),
                             "state": state, "message": message, "rows": rows, "job_dir": job_dir})


def history(workspace: str | Path, limit: int = 50) -> list[dict]:
    """Newest first: {"statement", "started", "seconds", "state", "message", "rows", "job_dir"}."""
    out = []
    for entry in reversed(runs.read_jsonl(history_path(workspace))[-limit:] if limit else []):
        job_dir = entry.get("job_dir")
        if job_dir and entry.get("state") in ACTIVE_STATES and Path(job_dir).is_dir():
            status = runs.read_status(job_dir)
            entry = {**entry, "state": status.get("state", entry.get("state"))}
            done = runs.read_json(Path(job_dir) / RESULT_JSON, None)
            if isinstance(done, dict):
                entry.update(message=done.get("message", entry.get("message")), rows=done.get("rows"),
                             seconds=done.get("seconds", entry.get("seconds")))  # the job's, not its submission's
        out.append(entry)
    return out
