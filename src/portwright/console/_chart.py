"""A server-rendered SVG chart: observed slots and releases beside predicted windows.

One key, one time axis: the last `back_s` of observations (open slots as grey bars,
releases as orange marks sized by the new slots) and the next `ahead_s` of predicted
windows (blue bands, darker for a higher chance, labelled with it). The spans a watcher
explores on days with no predicted window (`explore`) are a distinct band: dashed amber,
in the lower half, labelled "explore" — a hypothesis under test, not a prediction. A
dashed line marks the forecast's start. Pure function of its inputs; text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from html import escape

from markupsafe import Markup

from portwright.intelligence import Window
from portwright.store import SlotRunRecord

__all__ = ["release_chart"]

W, H = 760.0, 230.0
LEFT, RIGHT, TOP, BOTTOM = 34.0, 10.0, 30.0, 34.0


def release_chart(
    runs: Sequence[SlotRunRecord],
    windows: Sequence[Window],
    now: float,
    *,
    explore: Sequence[Window] = (),
    back_s: float = 2 * 86_400,
    ahead_s: float = 2 * 86_400,
    zone: tzinfo = UTC,
    title: str = "",
) -> Markup:
    start, end = now - back_s, now + ahead_s
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    shown = [r for r in runs if r.last_at >= start and r.first_at <= now]
    top = max([r.open for r in shown] + [r.new for r in shown] + [1])

    def x(t: float) -> float:
        return LEFT + (min(max(t, start), end) - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    out = [
        f'<svg class="release-chart" viewBox="0 0 {W:.0f} {H:.0f}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    # time axis: a tick each 6 hours (12 past three days), the date at midnight (UTC steps)
    every = 21_600 if end - start <= 3 * 86_400 else 43_200
    first_tick = math.ceil(start / every) * every
    for i in range(int((end - first_tick) // every) + 1):
        t = first_tick + i * every
        local = datetime.fromtimestamp(t, zone)
        label = local.strftime("%a %d") if local.hour == 0 else local.strftime("%H:%M")
        strong = " day" if local.hour == 0 else ""
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'class="grid{strong}"/><text x="{x(t):.1f}" y="{H - 18:.0f}" '
            f'class="tick" text-anchor="middle">{escape(label)}</text>'
        )
    # value axis
    out.extend(
        f'<text x="{LEFT - 6:.0f}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v}</text>'
        for v in sorted({0, top // 2, top})
    )
    for w in windows:
        if w.end <= now or w.start >= end:
            continue
        x0, x1 = x(w.start), x(w.end)
        opacity = 0.2 + 0.6 * w.chance
        out.append(
            f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 3):.1f}" height="{plot_h}" '
            f'class="window" fill-opacity="{opacity:.2f}"><title>predicted window '
            f"{datetime.fromtimestamp(w.start, zone):%a %H:%M} to "
            f"{datetime.fromtimestamp(w.end, zone):%H:%M}: chance {w.chance:.0%}, "
            f"confidence {w.confidence:.0%}</title></rect>"
            f'<text x="{(x0 + x1) / 2:.1f}" y="{TOP - 6:.0f}" class="tick window-label" '
            f'text-anchor="middle">{w.chance:.0%}</text>'
        )
    for w in explore:
        if w.end <= now or w.start >= end:
            continue
        x0, x1 = x(w.start), x(w.end)
        mid = TOP + plot_h / 2
        out.append(
            f'<rect x="{x0:.1f}" y="{mid:.1f}" width="{max(x1 - x0, 3):.1f}" '
            f'height="{plot_h / 2:.1f}" class="explore"><title>explored, not predicted: '
            f"{datetime.fromtimestamp(w.start, zone):%a %H:%M} to "
            f"{datetime.fromtimestamp(w.end, zone):%H:%M} is polled densely to test it "
            f"(no window predicted that day; confidence {w.confidence:.0%})</title></rect>"
            f'<text x="{(x0 + x1) / 2:.1f}" y="{mid - 4:.1f}" class="tick explore-label" '
            f'text-anchor="middle">explore</text>'
        )
    for r in shown:
        if r.open > 0:
            x0, x1 = x(r.first_at), x(r.last_at)
            out.append(
                f'<rect x="{x0:.1f}" y="{y(r.open):.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                f'height="{TOP + plot_h - y(r.open):.1f}" class="open"/>'
            )
    for r in shown:
        if r.new > 0 and r.first_at >= start:
            cx = x(r.first_at)
            out.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{TOP + plot_h}" y2="{y(r.new):.1f}" '
                f'class="release"/><circle cx="{cx:.1f}" cy="{y(r.new):.1f}" r="3.5" '
                f'class="release"><title>{r.new} new slot{"" if r.new == 1 else "s"} at '
                f"{datetime.fromtimestamp(r.first_at, zone):%a %H:%M:%S}</title></circle>"
            )
    out.append(
        f'<line x1="{x(now):.1f}" x2="{x(now):.1f}" y1="{TOP - 2}" y2="{TOP + plot_h}" '
        f'class="now"/><text x="{x(now) + 4:.1f}" y="{TOP + 12:.0f}" class="tick">now</text>'
    )
    legend = (
        ("open", "slots open"),
        ("release", "release (new slots)"),
        ("window", "predicted window (chance)"),
        ("explore", "explored (no forecast)"),
    )
    lx = LEFT
    for cls, label in legend if explore else legend[:3]:
        out.append(
            f'<rect x="{lx:.0f}" y="{H - 12:.0f}" width="10" height="8" class="key {cls}"/>'
            f'<text x="{lx + 14:.0f}" y="{H - 4:.0f}" class="tick">{label}</text>'
        )
        lx += 16 + 7.2 * len(label) + 20
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text is escaped above
