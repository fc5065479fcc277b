"""Model names for SQL: the registry workspace/sql/models.json, {name: {"endpoint", "run_id", "task",
"created", "statement"}}. A name stands for a base model (endpoint: the bundled model, a local folder or
a hub id; run_id None) or for a tuning run (its run_id; endpoint is the run's base model).

`MODEL x` resolves through the registry first, then to a run whose name (core.runs.display_name) or id
is x, so runs made on the Tune page are usable from SQL. CREATE OR REPLACE re-points a name; DROP MODEL
removes the name only. No statement ever deletes a run or a model's folder."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from core import runs
from core.config import BUNDLED_MODEL
from core.models import RUN_MODEL_PREFIX
from core.names import ACTIVE_STATES, CONFIG_FILE, SQL_DIR
from core.sql.errors import SqlError

REGISTRY_FILE = "models.json"
BUNDLED_PREFIX = "bundled:"
HUB_ID_EXAMPLE = "HuggingFaceTB/SmolLM2-360M-Instruct"


@dataclass
class ModelRef:
    name: str
    endpoint: str                  # the base model: bundled name, local folder, hub id or run:RUN_ID
    run_id: str | None = None      # the tuning run, for a tuned model
    task: str | None = None        # what it was tuned (or registered) for; ML.EVALUATE's default task_type
    source: str = "sql"            # "sql": a name in the registry; "run": a run by its own name or id


def registry_path(workspace: str | Path) -> Path:
    return Path(workspace) / SQL_DIR / REGISTRY_FILE


def read_registry(workspace: str | Path) -> dict[str, dict]:
    data = runs.read_json(registry_path(workspace), {})
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def register(workspace: str | Path, name: str, *, endpoint: str, run_id: str | None, task: str | None,
             statement: str) -> dict:
    entry = {"endpoint": endpoint, "run_id": run_id, "task": task, "created": runs.now_iso(), "statement": statement}
    registry = read_registry(workspace)
    registry[name] = entry
    registry_path(workspace).parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(registry_path(workspace), registry)
    return entry


def unregister(workspace: str | Path, name: str) -> dict:
    registry = read_registry(workspace)
    entry = registry.pop(name)
    runs.write_json(registry_path(workspace), registry)
    return entry


def _from_run(run: dict, name: str) -> ModelRef:
    config = run["config"] or {}
    return ModelRef(name=name, endpoint=str(config.get("model") or BUNDLED_MODEL), run_id=run["run_id"],
                    task=config.get("task"), source="run")


def find(workspace: str | Path, name: str) -> ModelRef | None:
    """The model a name stands for, or None: the registry (exact, then ignoring case), then a run by id
    or by name (the newest of several with one name)."""
    registry = read_registry(workspace)
    key = name if name in registry else next((k for k in registry if k.lower() == name.lower()), None)
    if key is not None:
        e = registry[key]
        return ModelRef(name=key, endpoint=str(e.get("endpoint") or BUNDLED_MODEL), run_id=e.get("run_id"),
                        task=e.get("task"))
    for run in runs.list_runs(workspace):  # newest first
        if name in (run["run_id"], run["status"].get("name")):
            return _from_run(run, name)
    return None


def known_names(workspace: str | Path) -> list[str]:
    return [m["name"] for m in list_models(workspace)]


def resolve(workspace: str | Path, name: str, clause: str) -> ModelRef:
    found = find(workspace, name)
    if found is not None:
        return found
    names = known_names(workspace)
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    listed = f"The models are: {', '.join(names)}." if names else "There are no models yet."
    raise SqlError(f"unknown model `{name}`" + (f"; did you mean `{near[0]}`?" if near else ""), clause=clause,
                   hint=f"{listed} Make one with CREATE MODEL {name} OPTIONS (endpoint = '{BUNDLED_MODEL}').")


def run_dir(workspace: str | Path, ref: ModelRef) -> Path:
    try:
        return runs.run_path(workspace, ref.run_id)
    except (ValueError, FileNotFoundError):
        raise SqlError(f"the tuning run of model `{ref.name}` ({ref.run_id}) no longer exists", clause=f"MODEL {ref.name}",
                       hint=f"Point the name at another model: CREATE OR REPLACE MODEL {ref.name} …") from None


def check_ready(workspace: str | Path, ref: ModelRef, clause: str, can_wait: bool) -> None:
    """A tuned model can answer once its run succeeded (or was cancelled after saving an adapter). One
    still training is refused unless the statement waits behind it in the queue (`can_wait`)."""
    if ref.run_id is None:
        return
    folder = run_dir(workspace, ref)
    status = runs.read_status(folder)
    state = status.get("state")
    if state == "succeeded" or (state == "cancelled" and runs.has_adapter(folder)):
        return
    if state in ACTIVE_STATES:
        if can_wait:
            return
        raise SqlError(f"model `{ref.name}` is still training (step {status.get('step') or 0} of "
                       f"{status.get('max_steps') or '?'})", clause=clause,
                       hint="Wait for it: studio sql --wait, or the Runs page; then run the statement again.")
    why = f": {status['error']}" if status.get("error") else ""
    raise SqlError(f"the tuning run of model `{ref.name}` ({ref.run_id}) {state}{why}", clause=clause,
                   hint=f"Tune it again: CREATE OR REPLACE MODEL {ref.name} … AS SELECT …")


def check_endpoint(workspace: str | Path, endpoint: str) -> str:
    """The base model `endpoint` names, as a TuneConfig/load_model model name, checked without loading or
    downloading anything: the bundled model, another SQL model or run (run:RUN_ID), a local model
    folder, or a hub id."""
    clause = "OPTIONS endpoint"
    endpoint = endpoint.strip()
    if endpoint == BUNDLED_MODEL:
        return endpoint
    if endpoint.lower().startswith(BUNDLED_PREFIX):
        raise SqlError(f"there is no bundled model `{endpoint}`", clause=clause,
                       hint=f"The bundled model is '{BUNDLED_MODEL}'; or name a local model folder or a hub id.")
    if endpoint.startswith(RUN_MODEL_PREFIX):
        run_id = endpoint[len(RUN_MODEL_PREFIX):]
        try:
            runs.run_path(workspace, run_id)
        except (ValueError, FileNotFoundError):
            raise SqlError(f"no run `{run_id}`", clause=clause, hint="`studio runs` lists the runs.") from None
        return endpoint
    other = find(workspace, endpoint)
    if other is not None:  # a model of this workspace: tune on top of it
        if other.run_id is None:
            return other.endpoint
        check_ready(workspace, other, clause, can_wait=True)
        return f"{RUN_MODEL_PREFIX}{other.run_id}"
    path = Path(endpoint).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).exists():
            raise SqlError(f"the folder {path} holds no config.json", clause=clause,
                           hint="Point endpoint at a Hugging Face model folder (config.json, weights, tokenizer).")
        return str(path.resolve())
    from core.models import _HUB_ID  # the one rule for hub ids

    if _HUB_ID.match(endpoint):
        return endpoint
    raise SqlError(f"endpoint '{endpoint}' is neither the bundled model, a model of this workspace, a local model "
                   "folder nor a hub id", clause=clause,
                   hint=f"Use '{BUNDLED_MODEL}', a folder holding config.json, or a hub id like '{HUB_ID_EXAMPLE}'.")


def list_models(workspace: str | Path) -> list[dict]:
    """{"name", "endpoint", "run_id", "state", "task", "source"}: the registry's names, then the runs
    not named there (by their own name). A base model's state is "ready"."""
    out, named_runs = [], set()
    for name, e in sorted(read_registry(workspace).items()):
        run_id = e.get("run_id")
        state = "ready"
        if run_id:
            named_runs.add(run_id)
            try:
                state = runs.read_status(runs.run_path(workspace, run_id)).get("state")
            except (ValueError, FileNotFoundError):
                state = "missing"
        out.append({"name": name, "endpoint": e.get("endpoint"), "run_id": run_id, "state": state,
                    "task": e.get("task"), "source": "sql"})
    taken = {m["name"] for m in out}
    for run in runs.list_runs(workspace):
        name = str(run["status"].get("name") or run["run_id"])
        if run["run_id"] in named_runs or name in taken:
            continue
        taken.add(name)
        ref = _from_run(run, name)
        out.append({"name": name, "endpoint": ref.endpoint, "run_id": ref.run_id,
                    "state": run["status"].get("state"), "task": ref.task, "source": "run"})
    return out


def run_config(workspace: str | Path, ref: ModelRef) -> dict:
    return runs.read_json(run_dir(workspace, ref) / CONFIG_FILE, {}) or {}
