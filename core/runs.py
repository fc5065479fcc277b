"""The run folder: the contract between the worker process and everything that reads it (UI, CLI).
Every job folder (core.jobs) follows it; a tuning run's folder is the fullest:

workspace/runs/<run_id>/
  job.json        {kind, config}: what core.worker runs
  config.json     TuneConfig, template included (everything to reproduce the run)
  status.json     state (queued/running/succeeded/failed/cancelled), step, pid, heartbeat, error + hint
  metrics.jsonl   one line per logged step, flushed per line
  checkpoints/    checkpoint-N folders (adapter, optimizer, scheduler, RNG state) for resume
  adapter/        standard PEFT files
  evals/<name>/   metrics.json + predictions.jsonl
  worker.log      the worker's stdout/stderr
JSON files are written atomically (temp file + rename) so a reader never sees half a file."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from core.names import ADAPTER_DIR, CHECKPOINT_COMPLETE, CHECKPOINT_PREFIX, CHECKPOINTS_DIR, CONFIG_FILE, FINAL_STATES, METRICS_FILE, \
    RUNS_DIR, STATES, STATUS_FILE, UNREADABLE, WORKER_LOG, check_name

__all__ = ["STATES", "FINAL_STATES"]  # re-exported: callers read runs.FINAL_STATES
# A running worker refreshes its heartbeat at least this often (seconds); see core.worker.
HEARTBEAT_EVERY = 5.0


def workspace_dir(path: str | Path | None = None) -> Path:
    ws = Path(path or os.environ.get("STUDIO_WORKSPACE") or "workspace").expanduser()
    ws.mkdir(parents=True, exist_ok=True)
    return ws.resolve()


def runs_dir(workspace: str | Path) -> Path:
    return Path(workspace) / RUNS_DIR


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str | Path, default=None):
    """A JSON file, or `default` when it is missing or cannot be read as JSON (torn, not UTF-8)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return default


def read_object(path: str | Path) -> tuple[dict | None, str | None]:
    """A JSON object file as (object, None), or (None, why it is unusable); a missing file is ({}, None)."""
    path = Path(path)
    if not path.exists():
        return {}, None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, f"{path.name} is not UTF-8 text"
    except (OSError, ValueError, RecursionError) as e:
        return None, f"{path.name} cannot be read ({type(e).__name__})"
    if not isinstance(value, dict):
        return None, f"{path.name} holds a {type(value).__name__}, not an object"
    return value, None


def run_path(workspace: str | Path, run_id: str) -> Path:
    """The folder of a run id; ids from users never become arbitrary paths."""
    check_name(run_id, "run id", max_len=100)  # InvalidName is a ValueError
    path = runs_dir(workspace) / run_id
    if not path.is_dir():
        raise FileNotFoundError(f"no run `{run_id}` in {runs_dir(workspace)}; `studio runs` lists them")
    return path


def new_job_id(label: str) -> str:
    """A folder name that sorts by time: 20260101-120000-classification-1a2b (make_job_folder claims it)."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)[:24]}-{secrets.token_hex(2)}"


def make_job_folder(parent: str | Path, label: str) -> Path:
    """A new, empty folder under `parent` named by new_job_id. Its random part is short (it is read by
    people), so two folders made in the same second can draw the same one: mkdir without exist_ok makes
    the claim atomic, and a taken name is simply drawn again."""
    for _ in range(100):
        path = Path(parent) / new_job_id(label)
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free folder name under {parent} after 100 tries")


def create_run(workspace: str | Path, config: dict, name: str = "", folder: str = RUNS_DIR) -> Path:
    """A new tuning run folder under workspace/<folder>/ with config.json and a queued status; core.jobs
    adds job.json (create_run is the run-folder half of jobs.create)."""
    run_dir = make_job_folder(Path(workspace) / folder, config.get("task", "run")[:14])
    run_id = run_dir.name
    write_json(run_dir / CONFIG_FILE, config)
    write_json(run_dir / STATUS_FILE, {"run_id": run_id, "name": name or config.get("name") or run_id,
                                       "state": "queued", "created": now_iso(), "step": 0,
                                       "max_steps": config.get("max_iterations")})
    return run_dir


def update_status(run_dir: str | Path, **fields) -> dict:
    status = read_json(Path(run_dir) / STATUS_FILE, {})
    status = status if isinstance(status, dict) else {}  # a damaged status.json is replaced, not kept
    status.update(fields)
    write_json(Path(run_dir) / STATUS_FILE, status)
    return status


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one line, flushed to disk. A torn last line (a worker killed mid-write) is closed first,
    so the new record starts on a line of its own instead of being lost with it."""
    with open(path, "ab") as f:
        if f.tell() > 0:
            with open(path, "rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    f.write(b"\n")
        f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def write_jsonl(path: str | Path, records) -> None:
    """A JSON-lines file of `records`, one object a line (a new file: data for a job or a dataset)."""
    Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def append_metrics(run_dir: str | Path, record: dict) -> None:
    append_jsonl(Path(run_dir) / METRICS_FILE, record)


def keep_steps_up_to(run_dir: str | Path, step: int, files: tuple[str, ...] = (METRICS_FILE,)) -> None:
    """Drop the records after `step` (a resumed run logs those steps again), rewriting atomically."""
    for name in files:
        path = Path(run_dir) / name
        if not path.exists():
            continue
        kept = [r for r in read_jsonl(path) if not isinstance(r.get("step"), (int, float)) or r["step"] <= step]
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}.tmp")
        write_jsonl(tmp, kept)
        os.replace(tmp, path)


def read_jsonl(path: str | Path) -> list[dict]:
    """The complete records of a JSON-lines file that another process may be appending to: a line being
    written right now, a torn line, or a line that is not a JSON object is skipped. Lines end at "\n"
    only (str.splitlines would also split inside a string holding U+2028)."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.split("\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_metrics(run_dir: str | Path) -> list[dict]:
    """metrics.jsonl: every value is a number (step, time, losses, rates); a value of another type, or a
    record without a step, comes from a hand-edited file and is left out rather than breaking a chart."""
    out = []
    for record in read_jsonl(Path(run_dir) / METRICS_FILE):
        clean = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "step" in clean:
            out.append(clean)
    return out


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not a live worker.
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _number(value, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def worker_gone(status: dict) -> bool:
    """A job that was launched (has a pid) and is not finished, but whose process is gone and whose
    heartbeat is stale: its worker was killed or crashed without recording why."""
    pid = status.get("pid")
    return (status.get("state") in ("queued", "running") and isinstance(pid, int) and pid > 0
            and not pid_alive(pid) and time.time() - _number(status.get("heartbeat_ts")) > 2 * HEARTBEAT_EVERY)


def failure_of_gone_worker(job_dir: str | Path) -> dict:
    """The fields that record a vanished worker as failed: the last error line of its log, else a plain cause."""
    errors = [x for x in log_tail(job_dir, 40).splitlines() if x.startswith("error:") or "Error" in x]
    return {"state": "failed", "finished": now_iso(),
            "error": errors[-1] if errors else "The worker stopped unexpectedly (killed or crashed).",
            "hint": "Look at the last lines of the log, then start it again."}


# status.json fields the pages do arithmetic or formatting with: a value of another type (a folder edited
# by hand) is dropped on reading rather than crashing every view of the run.
_NUMBER_FIELDS = ("step", "max_steps", "pid", "heartbeat_ts", "eta_s", "elapsed_s", "peak_memory_mb", "done",
                  "total", "best_eval_loss", "best_step", "train_rows", "eval_rows", "resumed_from", "pairs")
_TEXT_FIELDS = ("name", "error", "hint", "phase", "device", "precision", "created", "started", "finished")


def _typed(status: dict) -> dict:
    clean = dict(status)
    for key in _NUMBER_FIELDS:
        value = clean.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            clean[key] = None
    for key in _TEXT_FIELDS:
        if clean.get(key) is not None and not isinstance(clean[key], str):
            clean[key] = str(clean[key])
    return clean


def read_status(run_dir: str | Path) -> dict:
    """status.json of a job folder, never written here. A vanished worker reads as failed (so neither the
    UI nor the CLI waits forever); core.jobs.reap records that in the file."""
    run_dir = Path(run_dir)
    status, problem = read_object(run_dir / STATUS_FILE)
    if status and status.get("state") not in STATES:
        problem = f"status.json has no valid state ({status.get('state')!r})"
    if problem:  # shown as such; never hides the other runs
        return {"state": UNREADABLE, "error": problem,
                "hint": "This folder was damaged outside the studio; delete it or restore the file."}
    status = _typed(status)
    if worker_gone(status):
        return {**status, **failure_of_gone_worker(run_dir)}
    return status


def list_runs(workspace: str | Path) -> list[dict]:
    """Every run's status and config, newest first."""
    root = runs_dir(workspace)
    if not root.exists():
        return []
    runs = []
    for d in sorted(root.iterdir(), reverse=True):
        if d.is_dir() and (d / STATUS_FILE).exists():
            status = read_status(d)
            config, problem = read_object(d / CONFIG_FILE)
            if problem and status.get("state") != UNREADABLE:
                status = {**status, "state": UNREADABLE, "error": problem}
            runs.append({"run_id": d.name, "run_dir": str(d), "status": status, "config": config or {}})
    return runs


def display_name(run_dir: str | Path) -> str:
    """A run as people call it: the name it was given, else its id."""
    return str(read_status(run_dir).get("name") or Path(run_dir).name)


def has_adapter(run_dir: str | Path) -> bool:
    return (Path(run_dir) / ADAPTER_DIR).is_dir()


def adapter_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / ADAPTER_DIR


def finished_runs(workspace: str | Path) -> list[dict]:
    """Runs whose adapter can be loaded: succeeded, or cancelled after saving what was trained."""
    return [r for r in list_runs(workspace)
            if r["status"].get("state") in ("succeeded", "cancelled") and has_adapter(r["run_dir"])]


def checkpoint_step(path: str | Path) -> int | None:
    """N of a checkpoint-N folder, or None for any other name."""
    tail = Path(path).name.removeprefix(CHECKPOINT_PREFIX)
    return int(tail) if Path(path).name.startswith(CHECKPOINT_PREFIX) and tail.isdigit() else None


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint-N folders (adapter + optimizer + scheduler + RNG state), oldest first."""
    found = [p for p in (Path(run_dir) / CHECKPOINTS_DIR).glob(CHECKPOINT_PREFIX + "*") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def checkpoint_complete(path: str | Path) -> bool:
    """Whether a checkpoint folder was written to the end. The trainer writes checkpoint-N/ file by file
    (weights, optimizer, scheduler, RNG, trainer_state.json last); a worker killed in between leaves a
    folder that cannot be resumed. core.monitor marks a finished one; folders from before the mark count
    when their trainer_state.json reads whole."""
    path = Path(path)
    if (path / CHECKPOINT_COMPLETE).exists():
        return True
    return isinstance(read_json(path / "trainer_state.json"), dict)


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint-N folder, if any: where a resume goes on from."""
    found = [c for c in checkpoints(run_dir) if checkpoint_complete(c)]
    return found[-1] if found else None


def best_eval(run_dir: str | Path, status: dict) -> tuple[float | None, int | None]:
    """(best eval loss, its step): as the worker recorded it, else (best checkpoint off, or a run from
    before it was recorded) the lowest eval loss the run logged."""
    if status.get("best_eval_loss") is not None:
        return status["best_eval_loss"], status.get("best_step")
    evals = [(m["eval_loss"], m.get("step")) for m in read_metrics(run_dir)
             if isinstance(m.get("eval_loss"), (int, float))]
    return min(evals, key=lambda e: e[0]) if evals else (None, None)


def log_tail(run_dir: str | Path, lines: int = 30) -> str:
    path = Path(run_dir) / WORKER_LOG
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def dataset_label(config: dict) -> str:
    """What a run learned from, as people named it: a labeling queue, a registered dataset by its name
    (not its train.jsonl), or the file's name."""
    if config.get("preference_queue"):
        return f"queue {config['preference_queue']}"
    path = Path(str(config.get("train_file") or ""))
    return path.parent.name if path.parent.parent.name == "catalog" else path.name


def summary(run: dict) -> dict:
    """One row of the runs list: what a person scans for (from a list_runs item)."""
    st, cfg = run["status"], run["config"]
    try:
        duration = (datetime.fromisoformat(st["finished"]) - datetime.fromisoformat(st["started"])).total_seconds()
    except (KeyError, TypeError, ValueError):  # not finished, or dates written by hand
        duration = None
    best, best_step = best_eval(run["run_dir"], st)
    if not isinstance(best, (int, float)):
        best, best_step = None, None
    return {"run_id": run["run_id"], "name": str(st.get("name") or run["run_id"]), "state": st.get("state"),
            "model": cfg.get("model"), "dataset": dataset_label(cfg), "task": cfg.get("task"),
            "steps": st.get("step", 0), "max_steps": cfg.get("max_iterations"),
            "best_eval_loss": best, "best_step": best_step,
            "duration_s": duration, "created": st.get("created")}


def compare(run_dirs: list[Path]) -> dict:
    """Summaries of several runs, the config keys whose values differ, and each run's curves."""
    items = [{"run_id": d.name, "run_dir": str(d), "status": read_status(d),
              "config": read_object(d / CONFIG_FILE)[0] or {}} for d in run_dirs]
    keys = sorted({k for it in items for k in it["config"]})
    diff = {k: [it["config"].get(k) for it in items] for k in keys
            if len({json.dumps(it["config"].get(k), sort_keys=True) for it in items}) > 1}
    return {"runs": [summary(it) for it in items], "config_diff": diff,
            "metrics": {it["run_id"]: read_metrics(it["run_dir"]) for it in items}}


def rename(run_dir: str | Path, name: str) -> None:
    name = " ".join(str(name).split())[:100]
    if not name:
        raise ValueError("a run name cannot be empty")
    update_status(run_dir, name=name)


def delete(run_dir: str | Path) -> None:
    """Remove a run folder; a run that is still working is refused (cancel it first)."""
    run_dir = Path(run_dir)
    state = read_status(run_dir).get("state")
    if state == "running":
        raise ValueError(f"run {run_dir.name} is running; cancel it first")
    shutil.rmtree(run_dir)
