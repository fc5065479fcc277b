"""A run's exports as the Runs page and `studio export --list` show them. No torch here: the UI imports it."""
from __future__ import annotations

from pathlib import Path

from core import runs
from core.names import EXPORT_FILE, EXPORTS_DIR, STATUS_FILE


def list_exports(run_dir: str | Path) -> list[dict]:
    """{"dir", "label", "status", "result" (export.json, {} until it ends), "bytes"} per export, newest first."""
    folder = Path(run_dir) / EXPORTS_DIR
    out = []
    for d in folder.glob("*"):
        if not (d / STATUS_FILE).exists():
            continue
        result = runs.read_json(d / EXPORT_FILE, {}) or {}
        out.append({"dir": d, "label": d.name, "status": runs.read_status(d), "result": result,
                    "bytes": sum(f.get("bytes", 0) for f in result.get("files", []))})
    return sorted(out, key=lambda e: e["status"].get("created") or "", reverse=True)


def verification_line(result: dict) -> str:
    """"verified: 5/5 identical answers (llama.cpp …)", or why there is none."""
    check = result.get("verification")
    if not check:
        return "not verified (verification was turned off)"
    if not check.get("prompts"):
        return "not verified (no eval prompts)"
    word = "verified" if check["identical"] == check["prompts"] else "checked"
    return f"{word}: {check['identical']}/{check['prompts']} identical answers · {check['runtime']}"


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
