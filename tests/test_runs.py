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
