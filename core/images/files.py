"""Training images: reading a folder of them and checking it (readable, big enough, not repeated, 5–30 of
them), and saving uploads under names the project makes (never the uploaded file's name). Pillow only, no
torch: the page imports this."""
from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.data import DataError
from core.names import IMAGE_SETS_DIR, check_name

MIN_IMAGES, MAX_IMAGES = 5, 30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
UPLOAD_TYPES = [s[1:] for s in IMAGE_SUFFIXES]
MAX_PIXELS = 40_000_000        # a bigger image is refused before it is decoded (a "decompression bomb")
MAX_UPLOAD_BYTES = 30_000_000
NEAR_DUPLICATE_BITS = 4        # average hashes this close (of 64 bits) look like the same picture …
NEAR_DUPLICATE_COLOR = 12      # … when their thumbnails' colours also differ by less than this on average (0–255)
# Pillow's format name -> the suffix a saved upload gets.
FORMAT_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}


@dataclass
class ImageInfo:
    file: str
    width: int = 0
    height: int = 0
    sha: str = ""
    ahash: int = 0
    colors: bytes = b""    # an 8x8 RGB thumbnail: a near-duplicate has the same shapes *and* colours
    problem: str = ""      # set: the image is left out
    warning: str = ""      # set: it is used, with this caveat


def _average_hash(image) -> int:
    """64-bit average hash: an 8x8 grey thumbnail, one bit per pixel above the mean. Survives resizing and
    recompression, so the same photo saved twice is caught."""
    small = image.convert("L").resize((8, 8))
    pixels = list(small.getdata())
    mean = sum(pixels) / len(pixels)
    return sum(1 << i for i, p in enumerate(pixels) if p > mean)


def _color_distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b)) / max(1, len(a))


def inspect(data: bytes, name: str) -> ImageInfo:
    """One image's size and fingerprints, or the problem that keeps it out."""
    from PIL import Image, UnidentifiedImageError

    info = ImageInfo(file=name, sha=hashlib.sha256(data).hexdigest())
    try:
        with Image.open(io.BytesIO(data)) as im:
            info.width, info.height = im.size
            if im.format not in FORMAT_SUFFIXES:
                info.problem = f"{im.format} images are not supported; use PNG, JPEG, WebP or BMP"
                return info
            if info.width * info.height > MAX_PIXELS:
                info.problem = f"{info.width}×{info.height} is too large to read safely (over {MAX_PIXELS // 1_000_000} MP)"
                return info
            im.load()
            info.ahash = _average_hash(im)
            info.colors = im.convert("RGB").resize((8, 8)).tobytes()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        info.problem = f"not a readable image ({type(e).__name__})"
    return info


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("is not a folder of images", file=folder, hint="Name a folder that holds the training images.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def check_images(items: list[tuple[str, bytes]], resolution: int) -> dict:
    """The report on (name, bytes) images: each one's size and flags, and whether the set can tune.
    {"usable", "why_not", "images": [ImageInfo as dict], "used": n, "problems": n, "warnings": n}."""
    infos, by_sha, hashes = [], {}, []
    for name, data in items:
        info = inspect(data, name)
        if not info.problem:
            short = min(info.width, info.height)
            if info.sha in by_sha:
                info.problem = f"the same file as {by_sha[info.sha]}"
            elif short < resolution // 2:
                info.problem = (f"too small: {info.width}×{info.height}, the shorter side under half the "
                                f"training resolution ({resolution} px)")
            else:
                twin = next((n for n, h, c in hashes if (h ^ info.ahash).bit_count() <= NEAR_DUPLICATE_BITS
                             and _color_distance(c, info.colors) < NEAR_DUPLICATE_COLOR), None)
                if twin:
                    info.warning = f"looks like a near-duplicate of {twin}"
                elif short < resolution:
                    info.warning = f"smaller than {resolution} px: it will be upscaled (softer)"
                if max(info.width, info.height) > 2 * short:
                    info.warning = info.warning or "very wide or tall: the centre square is what is learned"
                by_sha[info.sha] = name
                hashes.append((name, info.ahash, info.colors))
        infos.append(info)
    used = sum(not i.problem for i in infos)
    why_not = ""
    if used < MIN_IMAGES:
        why_not = f"{used} usable image{'s' if used != 1 else ''}; tuning needs at least {MIN_IMAGES}"
    elif used > MAX_IMAGES:
        why_not = f"{used} usable images; use at most {MAX_IMAGES} (pick the most varied ones)"
    return {"usable": not why_not, "why_not": why_not, "used": used, "resolution": resolution,
            "problems": sum(bool(i.problem) for i in infos), "warnings": sum(bool(i.warning) for i in infos),
            "images": [{k: v for k, v in vars(i).items() if k not in ("ahash", "colors")} for i in infos]}


def check_folder(folder: str | Path, resolution: int) -> dict:
    files = image_files(folder)
    return check_images([(p.name, p.read_bytes()) for p in files], resolution) | {"folder": str(folder)}


def usable_images(folder: str | Path, resolution: int) -> list[Path]:
    """The images of a folder that tuning uses (the check's kept ones, in name order). Raises DataError
    when the set cannot tune."""
    report = check_folder(folder, resolution)
    if not report["usable"]:
        raise DataError(report["why_not"], file=folder, hint="Fix the flagged images (`studio images check FOLDER`).")
    return [Path(folder) / i["file"] for i in report["images"] if not i["problem"]]


def sets_dir(workspace: str | Path) -> Path:
    return Path(workspace) / IMAGE_SETS_DIR


def list_sets(workspace: str | Path) -> list[Path]:
    """Image sets saved in the workspace (uploads), newest first."""
    root = sets_dir(workspace)
    found = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    return sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)


def save_set(workspace: str | Path, name: str, items: list[tuple[str, bytes]]) -> Path:
    """Uploaded images into workspace/image_sets/<name>/ as image-001.png …: the names are made here from
    the order and the decoded format, never from the upload. Unreadable files are not written; a set of
    that name already there is replaced only after the new one is complete."""
    from PIL import Image

    check_name(name, "image set name")
    target = sets_dir(workspace) / name
    tmp = target.parent / f".{name}.new"
    if tmp.exists():

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    kept = 0
    for _, data in items:
        if len(data) > MAX_UPLOAD_BYTES or inspect(data, "upload").problem.startswith(("not a readable", "too large")):
            continue
        with Image.open(io.BytesIO(data)) as im:
            suffix = FORMAT_SUFFIXES.get(im.format)
        if suffix:
            kept += 1
            (tmp / f"image-{kept:03d}{suffix}").write_bytes(data)
    if not kept:
        tmp.rmdir()
        raise DataError("none of the uploaded files is a readable image", hint="Upload PNG, JPEG, WebP or BMP files.")
    if target.exists():

        shutil.rmtree(target)
    tmp.rename(target)
    return target
