"""The preview HTML rendered by a real browser (headless Chromium) is not blank.

Chromium comes from the Debian package ``chromium`` (``.ci/run`` installs it). Without
it the test skips, saying why, except under CI where it must be present.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_render_fixtures import LINKS, fixed_digest

from newsletter.preview import write_preview
from newsletter.render import Renderer

pytestmark = pytest.mark.slow


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("CI is set but chromium is not installed (.ci/run installs the Debian package)")
    pytest.skip("chromium not installed (Debian: apt-get install chromium); CI installs it")


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit non-interlaced RGB/RGBA PNG (as Chromium writes): width, height, pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    i = 0
    for _ in range(height):
        kind = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, bpp))
        prev = line
    return width, height, pixels


def _screenshot(html_file: Path, png: Path, width: int, tmp: Path, *, dark: bool = False) -> bytes:
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp / f'profile-{width}-{dark}'}",
        f"--screenshot={png}",
        f"--window-size={width},1200",
    ]
    if dark:
        args.append("--force-dark-mode")
    args.append(html_file.as_uri())
    done = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
    assert png.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr}"
    return png.read_bytes()


@pytest.fixture(scope="module")
def preview_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    email = Renderer().render(fixed_digest(10), links=LINKS)
    return write_preview(email.html, tmp_path_factory.mktemp("preview") / "digest.html")


@pytest.mark.parametrize("width", [600, 375])
def test_screenshot_is_not_blank(preview_html: Path, tmp_path: Path, width: int) -> None:
    w, h, pixels = decode_png(_screenshot(preview_html, tmp_path / "shot.png", width, tmp_path))
    assert (w, h) == (width, 1200)
    colours = set(pixels)
    dark = sum(1 for p in pixels if sum(p) < 3 * 100)  # text
    accent = sum(1 for r, g, b in pixels if b > 120 and b > r + 40 and b > g + 40)  # links
    assert len(colours) > 50, f"only {len(colours)} colours: blank page?"
    assert dark > 0.01 * len(pixels), f"only {dark} dark pixels: no text rendered?"
    assert accent > 100, "no indigo pixels: inlined link/accent styles not applied?"
    # the card is white on a light grey page, at the top left and the card centre
    assert pixels[5 * w + 5] != (255, 255, 255)
    assert pixels[300 * w + w // 2] == (255, 255, 255)


def test_dark_mode_screenshot_is_dark(preview_html: Path, tmp_path: Path) -> None:
    png = _screenshot(preview_html, tmp_path / "dark.png", 600, tmp_path, dark=True)
    _, _, pixels = decode_png(png)
    darkish = sum(1 for p in pixels if sum(p) < 3 * 60)
    light = sum(1 for p in pixels if sum(p) > 3 * 200)  # light text on dark cards
    assert darkish > 0.7 * len(pixels), "prefers-color-scheme: dark did not darken the email"
    assert light > 0.005 * len(pixels), "no light text in dark mode"
