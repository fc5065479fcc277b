"""The Images page through the real navigation: a machine without an image model says so; uploads are shown
as a grid with their flags and kept under names made here; on a CPU a run is timed by a speed trial first
and a long one confirmed before it starts; a finished job (tuned for real on the tiny pipeline) shows its
loss, samples and the base/tuned compare. Drawing the page writes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import open_page
from test_images import RES, picture, tiny_config, tiny_pipeline  # noqa: F401 -- fixtures
from test_pages_readonly import snapshot

from core import job_queue, jobs, runs
from core.images.files import save_set


def texts(at, kind: str) -> list[str]:
    return [e.value for e in at.get(kind)]


@pytest.fixture
def no_hub_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty-hub")))


@pytest.fixture
def ws_with_model(ws, tiny_pipeline, no_hub_cache):  # noqa: F811
    (ws / "models").mkdir()
    (ws / "models" / "tiny-sd").symlink_to(tiny_pipeline)
    return ws


def test_no_model_and_uploads_flagged_then_kept(ws, no_hub_cache):
    at = open_page("images")
    assert any("No image model on this machine" in w for w in texts(at, "warning"))
    assert at.selectbox(key="img_model").value == "\x00other"
    at.selectbox(key="img_resolution").set_value(256).run()  # the checks measure against it
    uploads = [(f"../photo {i}.png", picture(i, size=160), "image/png") for i in range(5)]
    uploads += [("again.png", picture(0, size=160), "image/png"), ("small.png", picture(7, size=40), "image/png"),
                ("notes.png", b"not an image", "image/png")]
    at.file_uploader(key="img_upload").set_value(uploads).run()
    assert not at.exception, [e.value for e in at.exception]
    values = {m.label: m.value for m in at.metric}
    assert values["Images used"] == "5" and values["Left out"] == "3"
    captions = " ".join(texts(at, "caption"))
    assert "the same file as ../photo 0.png" in captions and "too small: 40×40" in captions
    assert "not a readable image" in captions
    assert snapshot(ws) == {}  # checked, not yet saved
    at.text_input(key="img_set_name").set_value("pitcher").run()
    at.button(key="img_keep").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(p.name for p in (ws / "image_sets" / "pitcher").iterdir()) == [f"image-00{i}.png" for i in range(1, 6)]
    assert at.radio(key="img_source").value == "set" and at.selectbox(key="img_set").value == "pitcher"
    assert "img_start" not in [b.key for b in at.button]  # no model yet: no tuning form


def _images(ws: Path) -> Path:
    return save_set(ws, "pitcher", [(f"{i}.png", picture(i, size=160)) for i in range(6)])


def test_cpu_run_is_timed_then_confirmed(ws_with_model, monkeypatch):
    ws = ws_with_model
    _images(ws)
    submitted = []
    monkeypatch.setattr(jobs, "submit", lambda d: submitted.append(Path(d)) or "queued")
    monkeypatch.setattr(job_queue, "default_device", lambda: "cpu")
    at = open_page("images")
    at.selectbox(key="img_resolution").set_value(256).run()
    at.radio(key="img_source").set_value("set").run()
    assert any("Ready: 6 images" in s for s in texts(at, "success"))
    assert at.text_area(key="img_prompts::subject::sks pitcher").value.splitlines()[:2] == [
        "a photo of sks pitcher on a beach", "a photo of sks pitcher on a wooden table"]
    assert at.text_input(key="img_class::sks pitcher").value == "pitcher"
    assert at.button(key="img_start").disabled  # on a CPU: timed first
    at.button(key="img_trial").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trial = submitted[-1]
    assert trial.parent == ws / "images" / "trials" and json.loads((trial / "job.json").read_text())["kind"] == "image_trial"
    # the trial measured 30 s a step and 20 s an image: 400 steps are hours here
    runs.update_status(trial, state="succeeded", seconds_per_step=30.0, seconds_per_image=20.0, load_seconds=10,
                       device="CPU (2 cores)")
    at.run()
    values = {m.label: m.value for m in at.metric}
    assert values["Projected time here"] == "3 h 28 min"  # 10 + 400×30 + (8 samples + 16 compare images)×20 s
    assert at.button(key="img_start").disabled
    at.checkbox(key="img_confirm").check().run()
    at.button(key="img_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = json.loads((submitted[-1] / "job.json").read_text())
    assert job["kind"] == "image_tune" and job["config"]["instance_prompt"] == "a photo of sks pitcher"
    assert job["config"]["resolution"] == 256 and job["config"]["images"] == str(ws / "image_sets" / "pitcher")
    assert at.selectbox(key="img_job").value == str(submitted[-1])


def test_gpu_starts_without_a_trial(ws_with_model, monkeypatch):
    _images(ws_with_model)
    monkeypatch.setattr(job_queue, "default_device", lambda: "cuda")
    at = open_page("images")
    at.selectbox(key="img_resolution").set_value(256).run()
    at.radio(key="img_source").set_value("set").run()
    assert not at.button(key="img_start").disabled
    assert "a CUDA GPU" in " ".join(texts(at, "caption"))


def test_finished_job_shows_loss_samples_and_compare(ws_with_model, tmp_path):
    from core.worker import run_job

    ws = ws_with_model
    images = tmp_path / "set"
    images.mkdir()
    for i in range(5):
        (images / f"{i}.png").write_bytes(picture(i))
    job_dir = jobs.create_image_tune(ws, tiny_config(images, ws / "models" / "tiny-sd", name="pitcher"))
    run_job(job_dir)
    before = snapshot(ws)
    at = open_page("images")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="img_job").value == str(job_dir)
    assert "Base and tuned, side by side" in texts(at, "subheader")
    markdown = texts(at, "markdown")
    assert "a photo of sks pitcher on a beach  \n:gray[seed 0]" in markdown
    captions = " ".join(texts(at, "caption"))
    assert "no CLIP model on this machine" in captions and "pipe.load_lora_weights" in captions
    assert snapshot(ws) == before  # drawing read only


def test_a_typed_model_that_cannot_be_used_says_why(ws, no_hub_cache):
    at = open_page("images")
    at.text_input(key="img_model_other").set_value(str(ws / "not-here")).run()
    assert any("does not exist" in e for e in texts(at, "error"))
    at.text_input(key="img_model_other").set_value("just-a-word").run()
    assert any("neither a pipeline folder nor a hub id" in e for e in texts(at, "error"))
