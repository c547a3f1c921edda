"""The release chart's SVG: predicted windows and explored spans are distinct, labelled bands."""

from __future__ import annotations

import re

from portwright.console._chart import release_chart
from portwright.intelligence import Window

NOW = 1_893_456_000.0  # 2030-01-01 00:00 UTC


def test_explored_spans_are_a_labelled_band_apart_from_predicted_windows() -> None:
    """A window and an explored span ahead: one rect of each class, the explored one titled
    as exploration (not a prediction) and keyed in the legend; without explored spans the
    legend does not mention them; spans in the past are not drawn."""
    window = Window(NOW + 9 * 3600, NOW + 9.5 * 3600, confidence=0.95, chance=0.6)
    explored = Window(NOW + 33 * 3600, NOW + 33.5 * 3600, confidence=0.4, chance=0.2)
    gone = Window(NOW - 3600, NOW - 1800, confidence=0.4, chance=0.2)
    svg = str(release_chart([], [window], NOW, explore=[explored, gone]))
    assert svg.count('class="window"') == 1
    assert svg.count('class="explore"') == 1
    [title] = re.findall(r'class="explore"><title>([^<]*)</title>', svg)
    assert title.startswith("explored, not predicted: Wed 09:00 to 09:30")
    assert "confidence 40%" in title
    assert "explored (no forecast)" in svg
    assert 'class="key explore"' in svg
    plain = str(release_chart([], [window], NOW))
    assert "explore" not in plain
