"""The preview HTML rendered by a real browser (headless Chromium) is not blank.

Chromium comes from the Debian package ``chromium`` (``.ci/run`` installs it). Without
it the test skips, saying why, except under CI where it must be present.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from test_render_fixtures import LINKS, fixed_digest

from newsletter.models import Section
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


def _in_frame(html_file: Path, width: int, height: int, script: str = "") -> Path:
    """A page that shows ``html_file`` in a frame exactly ``width`` CSS px wide.

    Headless Chromium lays a page out at least 500 px wide, whatever --window-size says
    (a narrower screenshot is only cropped), so a phone's 375 px never reaches the
    email's media queries; inside a frame of that width it does. ``srcdoc`` keeps the
    frame same-origin, so ``script`` can measure it."""
    host = html_file.with_name(f"{html_file.stem}-{width}.host.html")
    frame = html.escape(html_file.read_text(encoding="utf-8"), quote=True)
    host.write_text(
        "<!doctype html><html><head><style>html,body{margin:0;padding:0}"
        "iframe{display:block;border:0}</style></head><body>"
        f'<iframe id="email" style="width:{width}px;height:{height}px" srcdoc="{frame}" '
        f'onload="{html.escape(script, quote=True)}"></iframe><pre id="out"></pre></body></html>',
        encoding="utf-8",
    )
    return host


def _chromium_args(tmp: Path, name: str, *, dark: bool = False) -> list[str]:
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",  # as on a phone: the frame's scrollbar takes no width
        f"--user-data-dir={tmp / f'profile-{name}-{dark}'}",
    ]
    if dark:
        args.append("--force-dark-mode")
    return args


def _screenshot(html_file: Path, png: Path, width: int, tmp: Path, *, dark: bool = False) -> bytes:
    args = _chromium_args(tmp, str(width), dark=dark)
    args += [f"--screenshot={png}", f"--window-size={width},1200"]
    args.append(_in_frame(html_file, width, 1200).as_uri())
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


_MEASURE = """
var d = this.contentDocument, w = this.contentWindow, vw = d.documentElement.clientWidth;
var wide = [];
d.querySelectorAll('body *').forEach(function (e) {
  var r = e.getBoundingClientRect();
  if (r.width > 0 && r.right > vw + 0.5) wide.push(e.tagName + '.' + e.className);
});
document.getElementById('out').textContent = JSON.stringify({
  viewport: vw, scroll: d.documentElement.scrollWidth, wide: wide,
  phone: w.matchMedia('(max-width: 480px)').matches,
  headings: d.querySelectorAll('h1, h2, h3').length
});
"""


def _layout(html_file: Path, width: int, tmp: Path) -> dict[str, object]:
    """What the email's frame measures at ``width`` px (see ``_MEASURE``)."""
    args = _chromium_args(tmp, f"layout-{width}")
    args += ["--window-size=800,900", "--virtual-time-budget=5000", "--dump-dom"]
    args.append(_in_frame(html_file, width, 900, _MEASURE).as_uri())
    done = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), f"no measurement (exit {done.returncode}): {done.stderr}"
    return json.loads(html.unescape(found.group(1)))


def test_phone_layout_never_scrolls_sideways(tmp_path: Path) -> None:
    """On a 375 px phone (the phone media query applies) nothing is wider than the
    screen: not a formula with no spaces in a title, a long URL or LaTeX run in an
    abstract, many authors, long category chips or a long interest name."""
    formula = (
        r"$\textrm{Ba}_{1-x}\textrm{Ca}_{x}\textrm{Ni}_{2}\textrm{As}_{2}\rightarrow\pi^{+}\pi^{-}$"
    )
    base = fixed_digest(2)
    long = replace(
        base.sections[0].picks[0].paper,
        title=f"Competing orders in {formula} under chemical pressure",
        abstract="See https://github.com/"
        + "very-long-repository-name-" * 6
        + " and "
        + r"E_n[\phi;\lambda]:=\mathbb{E}_n\bigg(\prod_{\ell=1}^n"
        + r"\big(1-\phi(\lambda_{\ell}(M))\big)\bigg)"
        + ". "
        + "Thispaperaimstoresearchandimplementarealtimevideotargettracking" * 2,
        authors=tuple(f"Author{i} Łukasiewicz-Ångström" for i in range(200)),
        categories=(
            "physics.atom-ph",
            "cond-mat.supr-con",
            "cond-mat.str-el",
            "hep-ph",
            "astro-ph.HE",
            "physics.comp-ph",
        ),
    )
    pick = replace(base.sections[0].picks[0], paper=long)
    name = "Superconductivity-and-strongly-correlated-electron-systems-in-iron-pnictides"
    digest = replace(base, sections=(Section(name, (pick, *base.sections[0].picks[1:])),))
    email = Renderer().render(digest, links=LINKS)
    page = write_preview(email.html, tmp_path / "long.html")
    found = _layout(page, 375, tmp_path)
    assert found["viewport"] == 375 and found["phone"], found
    assert found["scroll"] == 375 and not found["wide"], found
    assert found["headings"] == 1 + 1 + 2, found  # h1, an h2 per interest, an h3 per paper
