"""Hazard photos: decode, check and re-encode, so that nothing of the phone survives.

DESIGN.md §1.8. The original bytes are read from memory only and never written anywhere: the
stored photo is a fresh baseline JPEG made from the pixels alone (orientation applied, long edge
at most ``MAX_EDGE``), so EXIF (GPS, time, make, model, serial, embedded thumbnail), XMP, IPTC,
maker notes, ICC profiles and trailing bytes are all gone. Sizes are checked from the header,
before a single pixel is decoded. No HTTP here.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_EDGE = 2048
THUMB_EDGE = 320
MAX_PIXELS = 64_000_000  # 64 MP: the largest ordinary phone photo is 50 MP
MAX_SIDE = 16_384
FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC", "MPO": "JPEG"}
# A file that is also a web page, a script or a ZIP archive is refused, not cleaned: it was made
# to be something else as well.
_FOREIGN = (b"<html", b"<script", b"<!doctype", b"<svg", b"<?php", b"<iframe")
_heif_ready = False


class PhotoError(ValueError):
    """A refused photo; ``message`` is shown to the worker as is (Chinese)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CleanPhoto:
    jpeg: bytes
    thumb: bytes
    width: int
    height: int


def _register_heif() -> None:
    global _heif_ready
    if not _heif_ready:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
        except ImportError:  # pragma: no cover - HEIC then counts as an unknown format
            pass
        _heif_ready = True


def _looks_foreign(data: bytes) -> bool:
    lowered = data.lower()
    if any(marker in lowered for marker in _FOREIGN):
        return True
    # A ZIP archive is read from its end: its directory record sits in the last 64 KiB.
    return b"PK\x05\x06" in data[-65_558:]


def _encode(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True)  # no exif=, icc_profile=, comment=
    return out.getvalue()


def clean(data: bytes, *, label: str = "照片") -> CleanPhoto:
    """A re-encoded copy of an uploaded photo; PhotoError (Chinese) when it is refused."""
    if not data:
        raise PhotoError(f"{label}是空文件，请重新选择。")
    if _looks_foreign(data):
        raise PhotoError(f"{label}不是普通的图片文件，请换一张照片。")
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                kind = FORMATS.get(im.format or "")
                if kind is None:
                    raise PhotoError(
                        f"{label}的格式不支持：只能上传 JPEG、PNG、WebP 或 HEIC 照片。")
                width, height = im.size
                if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE \
                        or width * height > MAX_PIXELS:
                    raise PhotoError(f"{label}的尺寸太大（{width}×{height}），请换一张或先缩小。")
                if im.format in ("JPEG", "MPO"):
                    im.draft("RGB", (MAX_EDGE, MAX_EDGE))  # decode at a reduced scale
                im.load()
                upright = ImageOps.exif_transpose(im)
                if upright.mode in ("RGBA", "LA", "PA") or (
                        upright.mode == "P" and "transparency" in upright.info):
                    rgba = upright.convert("RGBA")
                    rgb = Image.new("RGB", rgba.size, "white")
                    rgb.paste(rgba, mask=rgba.getchannel("A"))
                else:
                    rgb = upright.convert("RGB")
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{label}的尺寸太大，请换一张或先缩小。") from exc
    except UnidentifiedImageError as exc:
        raise PhotoError(f"{label}无法识别：只能上传 JPEG、PNG、WebP 或 HEIC 照片。") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PhotoError(f"{label}文件不完整或已损坏，请重新拍一张。") from exc
    rgb.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    # Only the pixels go on: a new image carries no info dict from the file.
    pixels = Image.new("RGB", rgb.size)
    pixels.paste(rgb)
    thumb = pixels.copy()
    thumb.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS)
    return CleanPhoto(jpeg=_encode(pixels, 85), thumb=_encode(thumb, 70),
                      width=pixels.width, height=pixels.height)
