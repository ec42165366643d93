"""analysis.plots.png renders a figure once and crops it as savefig(bbox_inches="tight") does:
what hangs outside the figure (rotated tick labels, a legend below the axes) is kept, the
picture matches savefig's to within a pixel's shift, and a figure reaching past the margin
(an artist drawn wholly outside it included) is left to savefig."""

from __future__ import annotations

import io

import numpy as np
import pytest

from analysis.plots import PNG_MARGIN, png


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _figure(tight_layout: bool, far: float | None = None):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    names = [f"a rather long op name {i}" for i in range(12)]
    ax.bar(range(12), np.arange(12.0), label="bars")
    ax.set_xticks(range(12), names, rotation=90, fontsize=7)        # below the figure without a layout
    ax.set_title("a title")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6))       # further below
    if far is not None:
        fig.text(0.5, far, "far away")
    if tight_layout:
        fig.tight_layout()
    return fig


def _pixels(data: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _tight(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _ink(px: np.ndarray) -> tuple[int, int]:
    m = (px != 255).any(axis=2)
    r, c = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return int(r[-1] - r[0]), int(c[-1] - c[0])


@pytest.mark.parametrize("tight_layout", [False, True])
def test_one_draw_crops_as_savefig_tight_does(tight_layout):
    plt = _plt()
    ref = _pixels(_tight(_figure(tight_layout)))
    fig = _figure(tight_layout)
    got = _pixels(png(fig))
    assert not plt.fignum_exists(fig.number)                          # closed
    if not tight_layout:
        assert ref.shape[0] > 300                                     # the labels and legend hang below 3 inches
    assert abs(got.shape[0] - ref.shape[0]) <= 3 and abs(got.shape[1] - ref.shape[1]) <= 3
    assert abs(_ink(got)[0] - _ink(ref)[0]) <= 1 and abs(_ink(got)[1] - _ink(ref)[1]) <= 1
    assert _ink(got)[0] < got.shape[0] - 10 and _ink(got)[1] < got.shape[1] - 10        # padded all round
    # the same picture but for antialiasing at a sub-pixel shift: the best of small shifts
    best = 1.0
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            a = ref[max(0, dy):, max(0, dx):]
            b = got[max(0, -dy):, max(0, -dx):]
            h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
            best = min(best, float((np.abs(a[:h, :w] - b[:h, :w]).max(axis=2) > 100).mean()))
    assert best < 0.02


def test_a_figure_past_the_margin_is_left_to_savefig():
    far = -PNG_MARGIN * 2 / 3       # figure fraction: text 2 margins below a 3-inch figure
    ref = _pixels(_tight(_figure(False, far)))
    got = _pixels(png(_figure(False, far)))
    assert ref.shape[0] > 100 * 3 * PNG_MARGIN and got.shape == ref.shape
    assert np.array_equal(got, ref)
