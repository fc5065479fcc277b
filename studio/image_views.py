"""The Images page's set-up parts: the base model (the pipelines found on this machine, or a hub id), the
training images (uploaded, a saved set, or a workspace folder) shown as a grid with their flags, the tuning
form, and what a run will cost here (a measured speed trial; a long run on a CPU is confirmed first). Every
decision comes from core.images; nothing here loads torch."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from core import job_queue
from core.data import DataError
from core.images.files import UPLOAD_TYPES, check_folder, check_images, list_sets, save_set
from core.images.models import ImageModelError, find_pipelines, resolve_image_model
from core.names import InvalidName
from studio import ui

OTHER = "\x00other"
RESOLUTIONS = (256, 512, 768, 1024)
SOURCES = {"upload": "Upload images", "set": "A saved image set", "folder": "A folder in the workspace"}
GRID_COLUMNS = 6


# ---------------------------------------------------------------- base model

def pick_model(ws: Path) -> tuple[str, int]:
    """The base pipeline (a found folder, or a hub id / folder typed in) and the training resolution."""
    found = [f for f in find_pipelines(ws) if f["supported"]]
    device = job_queue.default_device()
    where = {"cuda": "a CUDA GPU", "mps": "Apple MPS"}.get(device, "no GPU: runs train on the CPU")
    if not found:
        st.warning("**No image model on this machine.** Put a diffusers pipeline folder (Stable Diffusion 1.5, 2.x or "
                   f"SDXL, saved with `save_pretrained`) under `{ws / 'models'}`, or type a hub id below — it is "
                   "downloaded on first use, which needs the network. `studio images tiny-pipeline "
                   f"{ws / 'models' / 'tiny-sd'}` makes a tiny random one to try the whole road with.",
                   icon=":material/image_not_supported:")
    options = [f["location"] for f in found] + [OTHER]
    names = {f["location"]: f"{f['name'] if f['source'] != 'workspace' else Path(f['location']).name} · "
                            f"{f['class_name'].replace('Pipeline', '')} · {f['source']}" for f in found}
    ui.seed_choice("img_model", options, options[0])
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox("Base model", options, key="img_model", format_func=lambda o: names.get(o, "Another model…"),
                          help="Pipelines found under the workspace's models/ folder and in the Hugging Face cache.")
    if choice == OTHER:
        choice = c1.text_input("Hub id or pipeline folder", key="img_model_other",
                               placeholder="stable-diffusion-v1-5/stable-diffusion-v1-5").strip()
        try:
            resolve_image_model(choice, ws) if choice else None
        except ImageModelError as e:
            st.error(f"**Base model:** {e}", icon=":material/image_not_supported:")
            choice = ""
    sdxl = "xl" in (names.get(choice, "") + choice).lower()
    ui.seed_choice("img_resolution", list(RESOLUTIONS), 1024 if sdxl else 512)
    resolution = c2.selectbox("Resolution", RESOLUTIONS, key="img_resolution",
                              help="Training images are cut to this square: 512 for SD 1.5, 768 for SD 2.x, 1024 for SDXL.")
    st.caption(f":material/memory: This machine: {where}.")
    return choice, int(resolution)


# ---------------------------------------------------------------- training images

@st.cache_data(show_spinner=False, max_entries=8)
def _check_uploads(key: str, items: tuple, resolution: int) -> dict:
    return check_images(list(items), resolution)


def _grid(report: dict, data: dict[str, bytes] | None = None, folder: Path | None = None) -> None:
    """The images as a grid, each with its size and flag (left out in red, a caveat in orange)."""
    items = report["images"]
    for start in range(0, len(items), GRID_COLUMNS):
        cols = st.columns(GRID_COLUMNS)
        for col, item in zip(cols, items[start:start + GRID_COLUMNS]):
            with col:
                if not item["problem"].startswith("not a readable"):
                    st.image(data[item["file"]] if data else str(folder / item["file"]), width="stretch")
                size = f"{item['width']}×{item['height']}" if item["width"] else ""
                flag = (f":red[:material/block: {item['problem']}]" if item["problem"] else
                        f":orange[:material/warning: {item['warning']}]" if item["warning"] else ":green[:material/check:]")
                st.caption(f"`{item['file'][:24]}` {size}  \n{flag}")


def _summary(report: dict) -> None:
    c = st.columns(3)
    c[0].metric("Images used", report["used"], border=True)
    c[1].metric("Left out", report["problems"], border=True, help="Unreadable, repeated or too small (flagged in red).")
    c[2].metric("Warnings", report["warnings"], border=True, help="Used, with a caveat (flagged in orange).")
    if report["usable"]:
        st.success(f"Ready: {report['used']} images to tune on at {report['resolution']} px.", icon=":material/task_alt:")
    else:
        st.error(f"**Not usable yet:** {report['why_not']}.", icon=":material/report:")


def _folder_in_workspace(path: str, ws: Path) -> Path:
    target = Path(path).expanduser().resolve()
    if not (target == ws.resolve() or ws.resolve() in target.parents):
        raise DataError("is outside the workspace; the page reads images in the workspace (or uploads)", file=target,
                        hint=f"Copy the folder into {ws} or upload the images; `studio images` reads any folder.")
    return target


def pick_images(ws: Path, resolution: int) -> tuple[str | None, dict | None]:
    """The training images' folder and its check report (None, None until there is a folder to check)."""
    if "img_set_next" in st.session_state:  # a set just saved from uploads: show it selected
        st.session_state["img_source"], st.session_state["img_set"] = "set", st.session_state.pop("img_set_next")
    source = st.radio("Images", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="img_source")
    if source == "upload":
        ups = st.file_uploader("Drop 5–30 images here", type=UPLOAD_TYPES, accept_multiple_files=True, key="img_upload",
                               help="PNG, JPEG, WebP or BMP. Varied angles and backgrounds teach a subject best.")
        if not ups:
            st.info("Drop 5–30 images of one subject, or in one style.", icon=":material/add_photo_alternate:")
            return None, None
        items = tuple((u.name, u.getvalue()) for u in ups)
        key = hashlib.sha1(b"".join(hashlib.sha1(d).digest() for _, d in items)).hexdigest()
        report = _check_uploads(key, items, resolution)
        _summary(report)
        _grid(report, data=dict(items))
        c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
        name = c1.text_input("Save as image set", value="my-images", key="img_set_name",
                             help="Letters, digits, '.', '-' and '_'. Files get names made here (image-001.png …).")
        if c2.button("Keep these images", icon=":material/save:", key="img_keep", disabled=not report["usable"],
                     help="Saves the images the check kept (the ones flagged in red are left out)."):
            try:
                kept = [item for item, info in zip(items, report["images"]) if not info["problem"]]
                folder = save_set(ws, name.strip(), kept)  # only what the check kept: no copies, nothing too small
            except (InvalidName, DataError) as e:
                ui.show_request_error(e)
            else:
                st.session_state["img_set_next"] = folder.name
                st.rerun()
        return None, None
    if source == "set":
        sets = [d.name for d in list_sets(ws)]
        if not sets:
            st.info("No image sets saved yet: upload images and keep them.", icon=":material/photo_library:")
            return None, None
        ui.seed_choice("img_set", sets, sets[0])
        folder = list_sets(ws)[0].parent / st.selectbox("Image set", sets, key="img_set")
    else:
        typed = st.text_input("Folder", key="img_folder", placeholder=f"{ws}/…").strip()
        if not typed:
            return None, None
        try:
            folder = _folder_in_workspace(typed, ws)
            report = check_folder(folder, resolution)
        except DataError as e:
            ui.show_data_error(e)
            return None, None
    report = check_folder(folder, resolution) if source == "set" else report
    _summary(report)
    with st.expander(f"The {len(report['images'])} images", expanded=not report["usable"] or report["warnings"] > 0):
        _grid(report, folder=folder)
    return str(folder), report
