"""curves.svg (bptrain.runs.figures): panels, lines that follow the values, gaps at non-finite values,
the best epoch marked where its values are, and tick steps of 1, 2, 2.5 or 5 times a power of ten."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import pytest

from bptrain.runs.figures import _label, _scale, curves_svg, history_svg

SVG = "{http://www.w3.org/2000/svg}"


def rows(train, val=None, accuracy=None):
    out = []
    for i, loss in enumerate(train):
        row = {"epoch": i + 1, "train_loss": loss}
        if val is not None:
            row["val_loss"] = val[i]
        if accuracy is not None:
            row["val_accuracy"] = accuracy[i]
        out.append(row)
    return out


def parse(text: str) -> ElementTree.Element:
    return ElementTree.fromstring(text)


def series(root, label: str) -> ElementTree.Element:
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("data-label") == label]
    return group


def points(group) -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()] for line in group.iter(f"{SVG}polyline")]


def test_two_panels_with_a_validation_metric_one_without():
    both = parse(curves_svg(rows([1.0, 0.5, 0.2], [1.1, 0.6, 0.4], [0.5, 0.7, 0.9]), 3, "accuracy"))
    assert (both.get("width"), both.get("height")) == ("1100", "400")
    assert [g.get("data-title") for g in both.iter(f"{SVG}g") if g.get("class") == "panel"] == ["Loss", "Validation accuracy"]
    alone = parse(curves_svg(rows([1.0, 0.5, 0.2]), 0, None))
    assert alone.get("width") == "550"
    assert [g.get("data-label") for g in alone.iter(f"{SVG}g") if g.get("class") == "series"] == ["train loss"]


def test_a_line_follows_its_values():
    values = [0.9, 0.3, 0.5, 0.1, 0.2]
    root = parse(curves_svg(rows(values), 0, None))
    (line,) = points(series(root, "train loss"))
    xs, ys = [x for x, _ in line], [y for _, y in line]
    steps = [b - a for a, b in zip(xs, xs[1:])]
    assert all(s > 0 for s in steps) and max(steps) - min(steps) < 0.2  # one epoch, one step to the right
    assert sorted(range(5), key=lambda i: ys[i]) == sorted(range(5), key=lambda i: -values[i])  # higher is up
    # the pixels are a linear map of the values
    slope = (ys[0] - ys[3]) / (values[0] - values[3])
    for y, v in zip(ys, values):
        assert y == pytest.approx(ys[3] + slope * (v - values[3]), abs=0.1)


def test_non_finite_values_leave_gaps_and_a_lone_value_is_a_dot():
    values = [1.0, 0.8, math.nan, 0.6, None, 0.5, 0.4, 0.3, math.inf]
    root = parse(curves_svg(rows(values), 0, None))
    group = series(root, "train loss")
    assert [len(line) for line in points(group)] == [2, 3]
    assert len(list(group.iter(f"{SVG}circle"))) == 1  # epoch 4, alone between two gaps


def test_a_run_with_no_finite_value_still_draws_its_axes():
    root = parse(curves_svg(rows([math.nan]), 0, None))
    assert points(series(root, "train loss")) == []
    assert {"Loss", "epoch", "loss"} <= {t.text for t in root.iter(f"{SVG}text")}


def test_the_best_epoch_is_marked_at_its_values_and_named_in_the_legend():
    root = parse(curves_svg(rows([1.0, 0.5, 0.2, 0.3], [1.1, 0.6, 0.4, 0.45], [0.5, 0.7, 0.9, 0.8]), 3, "accuracy"))
    marks = [line for line in root.iter(f"{SVG}line") if line.get("class") == "best"]
    (train,) = points(series(root, "train loss"))
    assert len(marks) == 2 and float(marks[0].get("x1")) == pytest.approx(train[2][0], abs=0.1)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count("best epoch (3)") == 2
    for label in ("train loss", "validation loss", "validation accuracy", "Loss", "Validation accuracy", "epoch"):
        assert label in texts


@pytest.mark.parametrize(
    "lo, hi, integer, ticks",
    [
        (0.013, 0.87, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.8333, 1.0, False, [0.80, 0.85, 0.90, 0.95, 1.0]),
        (2.1, 3.05, False, [2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.2]),
        (1, 75, True, [0, 20, 40, 60, 80]),
        (1, 3, True, [1, 2, 3]),
        (1, 1, True, [0, 1, 2]),
        (0.5, 0.5, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (12, 130, False, [0, 25, 50, 75, 100, 125, 150]),
    ],
)
def test_ticks_are_round_and_cover_the_values(lo, hi, integer, ticks):
    scale = _scale(lo, hi, 0, 100, integer=integer)
    assert scale.ticks == pytest.approx(ticks)
    assert scale.lo <= lo and scale.hi >= hi
    assert scale(scale.lo) == 0 and scale(scale.hi) == 100


@pytest.mark.parametrize(
    "value, step, text",
    [(0.0, 0.2, "0"), (0.4, 0.2, "0.4"), (0.85, 0.05, "0.85"), (2.5, 2.5, "2.5"), (75.0, 25.0, "75"), (1e-4, 1e-4, "0.0001"), (-0.0, 0.1, "0")],
)
def test_tick_labels_carry_the_decimals_of_the_step(value, step, text):
    assert _label(value, step) == text


def test_text_with_quotes_and_markup_stays_text_in_elements_and_attributes():
    metric = 'a "b" <c> & d'
    root = parse(history_svg([0, 1], [1.0, 0.5], [1.0, 0.5], metric))
    assert [g.get("data-label") for g in root.iter(f"{SVG}g") if g.get("class") == "series"] == [f"trial {metric}", "best so far"]
    assert metric in [t.text for t in root.iter(f"{SVG}text")]
