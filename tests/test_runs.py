import json

import pytest

from core import runs


def test_create_update_and_list(tmp_path):
    run_dir = runs.create_run(tmp_path, {"task": "classification", "max_iterations": 5})
    assert runs.read_status(run_dir)["state"] == "queued"
    runs.update_status(run_dir, state="running", step=2, pid=None, heartbeat_ts=0)
    runs.append_metrics(run_dir, {"step": 1, "loss": 2.0})
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')  # a line being written right now
    assert runs.read_metrics(run_dir) == [{"step": 1, "loss": 2.0}]
    [listed] = runs.list_runs(tmp_path)
    assert listed["run_id"] == run_dir.name and listed["config"]["task"] == "classification"


def test_running_without_a_live_worker_becomes_failed(tmp_path):
    run_dir = runs.create_run(tmp_path, {"task": "summarization"})
    runs.update_status(run_dir, state="running", pid=2 ** 22 + 12345, heartbeat_ts=0)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "stopped unexpectedly" in status["error"]


def test_reading_a_dead_runs_status_does_not_write_reaping_does(tmp_path):
    from core import job_queue

    run_dir = runs.create_run(tmp_path, {"task": "summarization"})
    runs.update_status(run_dir, state="running", pid=2 ** 22 + 12345, heartbeat_ts=0)
    before = (run_dir / "status.json").read_bytes()
    stamp = (run_dir / "status.json").stat().st_mtime_ns
    for _ in range(3):
        assert runs.read_status(run_dir)["state"] == "failed"
        runs.list_runs(tmp_path)
        runs.summary(runs.list_runs(tmp_path)[0])
    assert (run_dir / "status.json").read_bytes() == before
    assert (run_dir / "status.json").stat().st_mtime_ns == stamp
    assert job_queue.reap_job(run_dir) is True  # the queue's explicit call records it
    on_disk = runs.read_json(run_dir / "status.json")
    assert on_disk["state"] == "failed" and "stopped unexpectedly" in on_disk["error"]
    assert job_queue.reap_job(run_dir) is False  # once


def test_atomic_json_leaves_no_temp_files(tmp_path):
    for i in range(5):
        runs.write_json(tmp_path / "s.json", {"i": i})
    assert json.loads((tmp_path / "s.json").read_text()) == {"i": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


@pytest.mark.parametrize("bad", ["..", "../x", "/etc", "a/b", ""])
def test_run_ids_never_become_arbitrary_paths(tmp_path, bad):
    with pytest.raises(ValueError):
        runs.run_path(tmp_path, bad)


def test_deleting_a_waiting_run_takes_it_out_of_the_queue(tmp_path):
    from core import job_queue, jobs

    waiting = runs.create_run(tmp_path, {"task": "classification"})
    runs.write_json(tmp_path / "queue.json", [waiting.name])  # the first queue's format still reads
    assert job_queue.queue(tmp_path) == [waiting.name]
    jobs.delete_run(waiting)
    assert job_queue.queue(tmp_path) == [] and not waiting.exists()


def test_best_eval_loss_falls_back_to_the_lowest_logged(tmp_path):
    run_dir = runs.create_run(tmp_path, {"task": "classification"})
    for step, loss in ((2, 1.5), (4, 1.2), (6, 1.3)):
        runs.append_metrics(run_dir, {"step": step, "eval_loss": loss})
    [item] = runs.list_runs(tmp_path)
    row = runs.summary(item)
    assert row["best_eval_loss"] == 1.2 and row["best_step"] == 4  # the step too, not None


def test_a_torn_line_loses_nothing_after_it(tmp_path):
    run_dir = runs.create_run(tmp_path, {"task": "classification"})
    for step in (1, 2):
        runs.append_metrics(run_dir, {"step": step, "loss": 1.0})
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # the worker was killed mid-write
    for step in (4, 5):
        runs.append_metrics(run_dir, {"step": step, "loss": 1.0})
    assert [m["step"] for m in runs.read_metrics(run_dir)] == [1, 2, 4, 5]
    runs.keep_steps_up_to(run_dir, 4)  # a resume from step 4 logs step 5 again
    assert [m["step"] for m in runs.read_metrics(run_dir)] == [1, 2, 4]


def corrupt(run_dir, how: int) -> None:
    """Twenty ways a run folder gets damaged outside the studio."""
    status, config, metrics = run_dir / "status.json", run_dir / "config.json", run_dir / "metrics.jsonl"
    damage = [
        lambda: status.write_bytes(b"\xff\xfe\x00garbage"), lambda: status.write_text("[1, 2]"),
        lambda: status.write_text('"just a string"'), lambda: status.write_text("{"),
        lambda: status.write_text(""), lambda: status.write_text("null"),
        lambda: runs.update_status(run_dir, state="running", pid=2 ** 22 + 7, heartbeat_ts="soon"),
        lambda: runs.update_status(run_dir, state="succeeded", started="yesterday", finished="today"),
        lambda: runs.update_status(run_dir, state="succeeded", started=5, finished=None),
        lambda: metrics.write_text("42\n[1]\n\"x\"\n"),
        lambda: metrics.write_bytes(b"\xff\xfe\n{\"step\": 1, \"eval_loss\": \"low\"}\n"),
        lambda: config.write_bytes(b"\x80\x81"), lambda: config.write_text("[]"), lambda: config.unlink(),
        lambda: runs.update_status(run_dir, name=["a", "list"], step="many", pid="abc", state="queued"),
        lambda: runs.update_status(run_dir, best_eval_loss="low", best_step=None, state="succeeded"),
        lambda: status.write_text('{"state": 7}'), lambda: (run_dir / "worker.log").write_bytes(b"\xff" * 100),
        lambda: runs.update_status(run_dir, state="running", pid=-5, heartbeat_ts=None),
        lambda: status.write_text("1e999999"),
    ]
    damage[how]()


def test_damaged_run_folders_never_hide_the_good_ones(tmp_path, capsys):
    import json as _json

    from core.cli import main

    good = []
    for i in range(3):
        run_dir = runs.create_run(tmp_path, {"task": "classification", "max_iterations": 4, "train_file": "t.jsonl"})
        runs.update_status(run_dir, state="succeeded", step=4, best_eval_loss=1.0 + i, best_step=4,
                           started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:01:00+00:00")
        good.append(run_dir.name)
    for how in range(20):
        corrupt(runs.create_run(tmp_path, {"task": "classification"}), how)
    listed = {r["run_id"]: r for r in runs.list_runs(tmp_path)}
    assert len(listed) == 23 and all(listed[g]["status"]["state"] == "succeeded" for g in good)
    assert sum(r["status"]["state"] == "unreadable" for r in listed.values()) >= 8
    rows = [runs.summary(r) for r in listed.values()]  # every row of the listing builds
    assert {r["run_id"] for r in rows if r["best_eval_loss"] is not None} >= set(good)
    ws = ["--workspace", str(tmp_path)]
    assert main(["runs", "--json", *ws]) == 0
    assert {r["run_id"] for r in _json.loads(capsys.readouterr().out)} == set(listed)
    assert main(["runs", *ws]) == 0
    for run_id in listed:
        assert main(["status", run_id, *ws]) == 0
    assert main(["compare", *listed, "--json", *ws]) == 0
    capsys.readouterr()


def test_a_registered_dataset_is_named_by_its_name_not_its_file(tmp_path):
    run_dir = runs.create_run(tmp_path, {"task": "classification",
                                         "train_file": str(tmp_path / "catalog" / "sections" / "train.jsonl")})
    [item] = runs.list_runs(tmp_path)
    assert runs.summary(item)["dataset"] == "sections"
    assert runs.dataset_label({"preference_queue": "q1", "train_file": "queue:q1"}) == "queue q1"
    assert runs.dataset_label({"train_file": "/data/my.csv"}) == "my.csv" and run_dir.exists()
