"""The run folder: the contract between the worker process and everything that reads it (UI, CLI).

workspace/runs/<run_id>/
  config.json     TuneConfig, template included (everything to reproduce the run)
  status.json     state (queued/running/succeeded/failed/cancelled), step, pid, heartbeat, error + hint
  metrics.jsonl   one line per logged step, flushed per line
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

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,100}$")
# A running worker refreshes its heartbeat at least this often (seconds); see core.train.
HEARTBEAT_EVERY = 5.0


def workspace_dir(path: str | Path | None = None) -> Path:
    ws = Path(path or os.environ.get("STUDIO_WORKSPACE") or "workspace").expanduser()
    ws.mkdir(parents=True, exist_ok=True)
    return ws.resolve()


def runs_dir(workspace: str | Path) -> Path:
    return Path(workspace) / "runs"


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
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def run_path(workspace: str | Path, run_id: str) -> Path:
    """The folder of a run id; ids from users never become arbitrary paths."""
    if not RUN_ID.match(run_id or ""):
        raise ValueError(f"`{run_id}` is not a valid run id (letters, digits, '-', '_', '.')")
    path = runs_dir(workspace) / run_id
    if not path.is_dir():
        raise FileNotFoundError(f"no run `{run_id}` in {runs_dir(workspace)}; `studio runs` lists them")
    return path


def create_run(workspace: str | Path, config: dict, name: str = "", folder: str = "runs") -> Path:
    """A new run folder under workspace/<folder>/ (runs, or estimates for speed trials)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{config.get('task', 'run')[:14]}-{secrets.token_hex(2)}"
    run_dir = Path(workspace) / folder / run_id
    run_dir.mkdir(parents=True)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "status.json", {"run_id": run_id, "name": name or config.get("name") or run_id,
                                         "state": "queued", "created": now_iso(), "step": 0,
                                         "max_steps": config.get("max_iterations")})
    return run_dir


def update_status(run_dir: str | Path, **fields) -> dict:
    status = read_json(Path(run_dir) / "status.json", {}) or {}
    status.update(fields)
    write_json(Path(run_dir) / "status.json", status)
    return status


def append_metrics(run_dir: str | Path, record: dict) -> None:
    with open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    """The complete lines of a JSON-lines file that another process may be appending to."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written right now
            pass
    return out


def read_metrics(run_dir: str | Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


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


def read_status(run_dir: str | Path) -> dict:
    """status.json (of a run or an evaluation job), with a dead worker detected: a job that was launched
    (has a pid) and is not finished, but whose process is gone and whose heartbeat is stale, is marked
    failed with the last error line of its log, so neither the UI nor the CLI waits forever."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / "status.json", {}) or {}
    if status.get("state") in ("queued", "running") and status.get("pid") and not pid_alive(status["pid"]):
        if time.time() - float(status.get("heartbeat_ts", 0)) > 2 * HEARTBEAT_EVERY:
            errors = [x for x in log_tail(run_dir, 40).splitlines() if x.startswith("error:") or "Error" in x]
            status = update_status(
                run_dir, state="failed", finished=now_iso(),
                error=errors[-1] if errors else "The worker stopped unexpectedly (killed or crashed).",
                hint="Look at the last lines of the log, then start it again.")
    return status


def list_runs(workspace: str | Path) -> list[dict]:
    """Every run's status and config, newest first."""
    root = runs_dir(workspace)
    if not root.exists():
        return []
    runs = []
    for d in sorted(root.iterdir(), reverse=True):
        if d.is_dir() and (d / "status.json").exists():
            runs.append({"run_id": d.name, "run_dir": str(d), "status": read_status(d),
                         "config": read_json(d / "config.json", {})})
    return runs


def log_tail(run_dir: str | Path, lines: int = 30) -> str:
    path = Path(run_dir) / "worker.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def summary(run: dict) -> dict:
    """One row of the runs list: what a person scans for (from a list_runs item)."""
    st, cfg = run["status"], run["config"]
    started, finished = st.get("started"), st.get("finished")
    duration = None
    if started and finished:
        duration = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    best = st.get("best_eval_loss")
    if best is None:  # best checkpoint off, or a run from before it was recorded: the lowest logged
        evals = [m["eval_loss"] for m in read_metrics(run["run_dir"]) if "eval_loss" in m]
        best = min(evals) if evals else None
    return {"run_id": run["run_id"], "name": st.get("name") or run["run_id"], "state": st.get("state"),
            "model": cfg.get("model"), "dataset": Path(cfg.get("train_file") or "").name, "task": cfg.get("task"),
            "steps": st.get("step", 0), "max_steps": cfg.get("max_iterations"),
            "best_eval_loss": best, "best_step": st.get("best_step"),
            "duration_s": duration, "created": st.get("created")}


def compare(run_dirs: list[Path]) -> dict:
    """Summaries of several runs, the config keys whose values differ, and each run's curves."""
    items = [{"run_id": d.name, "run_dir": str(d), "status": read_status(d), "config": read_json(d / "config.json", {})}
             for d in run_dirs]
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
