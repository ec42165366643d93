"""The HTML pages in a real browser (issue 34): report.html and compare.html render in headless
Chromium at 1,400 px wide without a horizontal scroll bar (the per-op table scrolls inside
its own box), every plot image decodes, and the screenshot is not blank. Skipped where
Chromium is not installed (``apt-get install chromium``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.report import compare, evaluate, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")
WIDTH = 1400


def _measure(html: Path) -> dict[str, int]:
    """The page's scroll width and height, and how many of its images decoded, read back
    from the rendered DOM."""
    probe = html.with_name("_probe.html")
    probe.write_text(html.read_text().replace("</body>", """<script>window.onload = () => {
      const imgs = [...document.images];
      document.title = 'W' + document.documentElement.scrollWidth + 'H' + document.documentElement.scrollHeight
        + 'I' + imgs.length + 'D' + imgs.filter(i => i.complete && i.naturalWidth > 0).length; };</script></body>"""))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},1000",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"<title>W(\d+)H(\d+)I(\d+)D(\d+)</title>", dom)
    assert m, dom[:300]
    return dict(zip(("width", "height", "images", "decoded"), map(int, m.groups())))


def _screenshot_varies(html: Path, out: Path) -> bool:
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WIDTH},1400", f"--screenshot={out}", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image
    img = Image.open(out).convert("L")
    lo, hi = img.getextrema()
    return img.size[0] == WIDTH and hi - lo > 100


def test_report_and_compare_pages_render_at_1400_px(tmp_path):
    from workloads import resolve
    wl = resolve("mlp1")
    ev = evaluate(wl, "tpu-v1")
    page = write_report(ev, tmp_path / "r") / "report.html"
    compare([ev, evaluate(wl, "a100")], tmp_path / "c", ["tpu-v1", "a100"])
    for html, images in ((page, 4), (tmp_path / "c" / "compare.html", 2)):
        got = _measure(html)
        assert got["width"] <= WIDTH, (html.name, got)            # no horizontal scroll bar
        assert got["images"] == images and got["decoded"] == images, (html.name, got)
        assert got["height"] > 800
        assert _screenshot_varies(html, tmp_path / f"{html.stem}.png")
