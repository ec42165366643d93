"""Render hwsim's HTML reports in a real browser and save screenshots to look at (a check,
not part of the tests: it needs Chromium, `apt-get install chromium` on Debian).

    python benchmarks/report_screenshots.py -o shots/ [--chromium /usr/bin/chromium]

It writes two reports (ResNet-50 on tpu-v1; a BERT-base training step on a100) and a
comparison (ResNet-50 on tpu-v1, a100 and eyeriss-like) under OUT/, renders each page with
headless Chromium at 1400 px wide, and saves
OUT/<name>.png (the whole page, cut into 2000 px tall parts: <name>-1.png, ...). It prints
each page's height and the images it found, so a page that failed to render (no images,
zero height) shows up without opening anything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPORTS = {     # name -> (the command, the page it writes)
    "resnet50_tpu": (["report", "resnet50", "--arch", "tpu-v1"], "report.html"),
    "bert_train_a100": (["report", "bert-base", "--arch", "a100", "--train", "--batch", "8", "--seq-len", "128"],
                        "report.html"),
    "resnet50_compare": (["compare", "resnet50", "--arch", "tpu-v1", "--arch", "a100", "--arch", "eyeriss-like"],
                         "compare.html"),
}
WIDTH, PART = 1400, 2000


def page_height(chromium: str, html: Path) -> int:
    """The rendered document's height in CSS px (Chromium's --dump-dom after a script that
    writes it into the title)."""
    probe = html.with_name("_height_probe.html")
    probe.write_text(html.read_text().replace(
        "</body>", "<script>document.title='H'+document.documentElement.scrollHeight</script></body>"))
    try:
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},1000",
                              "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()
    m = re.search(r"<title>H(\d+)</title>", dom)
    return int(m.group(1)) if m else 0


def shoot(chromium: str, html: Path, out: Path, height: int) -> list[Path]:
    full = out.with_suffix(".full.png")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WIDTH},{height}", f"--screenshot={full}", html.as_uri()],
                   capture_output=True, timeout=180, check=True)
    from PIL import Image      # matplotlib's dependency

    img = Image.open(full)
    parts = []
    for i, top in enumerate(range(0, img.height, PART), 1):
        p = out.with_name(f"{out.stem}-{i}.png")
        img.crop((0, top, img.width, min(top + PART, img.height))).save(p)
        parts.append(p)
    full.unlink()
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", required=True, help="Folder for the reports and screenshots.")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    a = ap.parse_args()
    if not shutil.which(a.chromium):
        sys.exit(f"no Chromium at {a.chromium!r}: apt-get install chromium (Debian), or pass --chromium PATH")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (args, page) in REPORTS.items():
        d = out / name
        subprocess.run([sys.executable, "-m", "analysis.cli", *args, "-o", str(d)], check=True,
                       capture_output=True)
        html = d / page
        text = html.read_text()
        h = page_height(a.chromium, html)
        parts = shoot(a.chromium, html, out / name, max(h, 800))
        print(f"{name}: {html} {len(text) // 1024} KiB, {text.count('<img')} images, page {h} px tall -> "
              + ", ".join(p.name for p in parts))


if __name__ == "__main__":
    main()
