"""The Export panel under a run (Runs page): starting an export makes the job folder core expects, and a
finished export shows its size, its verification and a download. No worker runs: jobs.submit is recorded."""
from __future__ import annotations

from conftest import open_page
from test_pages_runs import launches, make_run  # noqa: F401  (launches is a fixture)

from core import runs
from core.names import EXPORTS_DIR


def finished_export(run_dir, label="gguf-q8_0", identical=5):
    folder = run_dir / EXPORTS_DIR / label
    folder.mkdir(parents=True)
    (folder / "alpha-q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 2044)
    (folder / "Modelfile").write_text("FROM ./alpha-q8_0.gguf\n")
    rows = [{"input": f"text {i}", "studio": "games", "export": "games" if i < identical else "math",
             "same": i < identical} for i in range(5)]
    runs.write_json(folder / "export.json", {
        "format": "gguf", "quant": "q8_0", "download": "alpha-q8_0.gguf",
        "ollama_command": "ollama create alpha -f Modelfile && ollama run alpha",
        "files": [{"name": "alpha-q8_0.gguf", "bytes": 2048}, {"name": "Modelfile", "bytes": 23}],
        "verification": {"runtime": "llama.cpp (llama-cpp-python 0.3.36)", "prompts": 5, "identical": identical,
                         "agreement": identical / 5, "rows": rows}})
    runs.write_json(folder / "status.json", {"run_id": label, "kind": "export", "state": "succeeded",
                                             "created": "2026-01-01T10:01:00+00:00"})
    return folder


def test_a_finished_export_shows_size_verification_and_downloads(ws):
    run_dir = make_run(ws, "alpha")
    finished_export(run_dir)
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value == "Export" for s in at.subheader)
    text = " ".join(m.value for m in at.markdown)
    assert "**gguf-q8_0** · 2.0 KB" in text
    assert "verified: 5/5 identical answers · llama.cpp (llama-cpp-python 0.3.36)" in text
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download alpha-q8_0.gguf" in labels and "Modelfile" in labels
    assert any("ollama create alpha -f Modelfile" in c.value for c in at.code)


def test_export_button_queues_an_export_job_with_the_chosen_settings(ws, launches):  # noqa: F811
    run_dir = make_run(ws, "alpha")
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    key = f"export::{run_dir.name}"
    at.selectbox(key=f"{key}_quant").set_value("q8_0").run()
    at.button(key=f"{key}_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job_dir = run_dir / EXPORTS_DIR / "gguf-q8_0"
    assert launches["submit"] == [job_dir]
    job = runs.read_json(job_dir / "job.json")
    assert job["kind"] == "export" and job["path"] == f"runs/{run_dir.name}/{EXPORTS_DIR}/gguf-q8_0"
    assert (job["config"]["format"], job["config"]["quant"], job["config"]["ollama"]) == ("gguf", "q8_0", True)
    assert any("Export **gguf-q8_0** started" in s.value for s in at.success)

    # The same export again while it waits is refused with a reason, not started twice.
    at.button(key=f"{key}_go").click().run()
    assert any("already queued or running" in e.value for e in at.error)
    assert len(launches["submit"]) == 1


def test_an_export_that_disagrees_says_checked_not_verified(ws):
    run_dir = make_run(ws, "alpha")
    finished_export(run_dir, identical=4)
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    text = " ".join(m.value for m in at.markdown)
    assert ":orange[:material/rule: checked: 4/5 identical answers" in text


def test_a_running_export_shows_its_phase_and_can_be_cancelled(ws):
    import os
    import time

    run_dir = make_run(ws, "alpha")
    folder = run_dir / EXPORTS_DIR / "merged"
    folder.mkdir(parents=True)
    runs.write_json(folder / "job.json", {"kind": "export", "config": {"run_id": run_dir.name, "format": "merged"},
                                          "path": f"runs/{run_dir.name}/{EXPORTS_DIR}/merged"})
    runs.write_json(folder / "status.json", {"run_id": "merged", "kind": "export", "state": "running", "pid": os.getpid(),
                                             "heartbeat_ts": time.time(), "phase": "merging the adapter", "done": 1,
                                             "total": 3, "created": "2026-01-01T10:01:00+00:00"})
    at = open_page("runs")
    at.multiselect(key="runs_pick").set_value([run_dir.name]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(p.proto.text == "merging the adapter" for p in at.get("progress"))
    at.button(key=f"cancel::{folder}").click().run()
    assert (folder / "cancel").exists()
