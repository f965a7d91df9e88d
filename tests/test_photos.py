"""Photos lose every trace of the phone (issue 15; DESIGN.md §1.8).

The test builds the worst ordinary phone photo it can: GPS position, a camera serial number, an
embedded thumbnail, an XMP packet, an ICC profile with a comment, bytes after the end-of-image
marker and orientation 6. The cleaned photo must hold none of it (checked byte-wise, with Pillow
and with Debian's exiftool), stand upright and be at most 2048 px on its long edge.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from suggestbox import photos
from tests.conftest import IN_CI

MARKERS = {
    "serial": "SERIALMARK4242",
    "xmp": "XMPMARK9913",
    "icc": "ICCMARK7731",
    "trail": "TRAILMARK5521",
    "model": "MODELMARK1188",
    "comment": "COMMENTMARK3344",
}


def exiftool() -> str:
    path = shutil.which("exiftool")
    if path is None:
        if IN_CI:
            pytest.fail("exiftool missing (apt-get install libimage-exiftool-perl)")
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    return path


def evil_photo(tmp: Path) -> bytes:
    """3000×2000, red left half, blue right half, stored sideways (orientation 6)."""
    image = Image.new("RGB", (3000, 2000), "blue")
    image.paste(Image.new("RGB", (1500, 2000), "red"), (0, 0))
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    raw = bytearray(profile.tobytes())
    raw += MARKERS["icc"].encode()  # a comment tucked into the profile
    raw[0:4] = len(raw).to_bytes(4, "big")
    path = tmp / "evil.jpg"
    thumb = tmp / "thumb.jpg"
    Image.new("RGB", (160, 120), "green").save(thumb, "JPEG")
    image.save(path, "JPEG", quality=90, icc_profile=bytes(raw),
               comment=MARKERS["comment"].encode())
    subprocess.run([
        exiftool(), "-q", "-overwrite_original", "-n",
        "-GPSLatitude=30.27415", "-GPSLatitudeRef=N", "-GPSLongitude=120.15515",
        "-GPSLongitudeRef=E", "-Make=Huawei", f"-Model={MARKERS['model']}",
        f"-SerialNumber={MARKERS['serial']}", "-DateTimeOriginal=2026:11:26 09:41:07",
        f"-XMP-dc:Description={MARKERS['xmp']}", "-Orientation=6",
        f"-ThumbnailImage<={thumb}", str(path)], check=True, capture_output=True)
    data = path.read_bytes() + b"\xff\xd9" + MARKERS["trail"].encode() * 10
    # The test photo really carries what it should (so the test can fail).
    tags = json.loads(subprocess.run([exiftool(), "-j", "-G", "-n", "-"], input=data,
                                     capture_output=True, check=True).stdout)[0]
    assert tags.get("EXIF:GPSLatitude") and tags.get("EXIF:SerialNumber") == MARKERS["serial"]
    assert tags.get("EXIF:ThumbnailImage") and tags.get("XMP:Description") == MARKERS["xmp"]
    assert tags.get("EXIF:Orientation") == 6 and "ICC_Profile:ProfileDescription" in tags
    for marker in MARKERS.values():
        assert marker.encode() in data
    return data


def test_a_cleaned_photo_keeps_nothing_of_the_phone(tmp_path: Path) -> None:
    data = evil_photo(tmp_path)
    clean = photos.clean(data)
    for blob in (clean.jpeg, clean.thumb):
        for marker in MARKERS.values():
            assert marker.encode() not in blob
        for needle in (b"Exif", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"Huawei"):
            assert needle not in blob
        tags = json.loads(subprocess.run([exiftool(), "-j", "-G", "-a", "-"], input=blob,
                                         capture_output=True, check=True).stdout)[0]
        groups = {k.split(":")[0] for k in tags if k != "SourceFile"}
        assert groups <= {"ExifTool", "File", "JFIF", "Composite"}, sorted(tags)
        with Image.open(io.BytesIO(blob)) as im:
            assert im.format == "JPEG" and not im.getexif() and "icc_profile" not in im.info
            assert im.info.get("comment") in (None, b"")
            assert blob.endswith(b"\xff\xd9")  # nothing after the end of the image
    with Image.open(io.BytesIO(clean.jpeg)) as im:
        # Orientation 6 applied to the pixels: portrait, the red half now on top.
        assert im.size == (clean.width, clean.height) == (1365, 2048)
        assert max(im.size) <= 2048
        top, bottom = im.getpixel((680, 200)), im.getpixel((680, 1850))
        assert top[0] > 200 and top[2] < 60, top
        assert bottom[2] > 200 and bottom[0] < 60, bottom


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()


def _png_bomb() -> bytes:
    """A small file that claims 30,000 × 30,000 pixels (a 100 KB decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def _zip_polyglot() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.html", "<b>x</b>")
    return _png((40, 40)) + buf.getvalue()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty", b"", "空文件"),
    ("truncated", None, "不完整"),
    ("bomb", None, "尺寸太大"),
    ("html-polyglot", _png((40, 40)) + b"<html><script>alert(1)</script></html>", "不是普通"),
    ("zip-polyglot", None, "不是普通"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "不是普通"),
    ("pdf-named-jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "无法识别"),
    ("gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00"
     b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", "格式不支持"),
])
def test_bad_files_are_refused_with_a_clear_message(name: str, data: bytes | None,
                                                    message: str) -> None:
    if name == "truncated":
        full = io.BytesIO()
        Image.new("RGB", (800, 600), "orange").save(full, "JPEG")
        data = full.getvalue()[: len(full.getvalue()) // 2]
    elif name == "bomb":
        data = _png_bomb()
        assert len(data) < 200_000
    elif name == "zip-polyglot":
        data = _zip_polyglot()
    assert data is not None
    with pytest.raises(photos.PhotoError) as refused:
        photos.clean(data)
    assert message in refused.value.message


def test_heic_png_webp_are_accepted() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    for fmt in ("PNG", "WEBP", "HEIF"):
        out = io.BytesIO()
        Image.new("RGBA", (500, 300), (0, 128, 0, 128)).save(out, fmt)
        clean = photos.clean(out.getvalue())
        assert (clean.width, clean.height) == (500, 300)
        with Image.open(io.BytesIO(clean.jpeg)) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
