"""A bar chart of jobs per minute as inline SVG: drawn on the server, no script, no external
asset. Pure: numbers in, escaped markup out."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 720, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 22  # margins: the axis labels live there
COLOURS = {"succeeded": "#2e8540", "failed": "#c62828"}


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n that is >= value (at least 1): the top of the y axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def per_minute_svg(labels: list[str], succeeded: list[int], failed: list[int], title: str) -> str:
    """Stacked bars, one per minute: succeeded below, failed on top. ``labels`` name the minutes
    (HH:MM); every tenth is written under the axis. Each bar has a tooltip with its numbers."""
    count = len(labels)
    top = nice_ceiling(max((s + f for s, f in zip(succeeded, failed)), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(count, 1)
    bar = max(slot - 2, 1)

    def y(value):
        return TOP + plot_h - plot_h * value / top

    def n(value):  # format_html escapes its arguments first, so numbers are formatted here
        return f"{value:.1f}"

    bars = []
    for i, (label, ok, bad) in enumerate(zip(labels, succeeded, failed)):
        x = LEFT + i * slot + (slot - bar) / 2
        bars.append(
            format_html(
                "<g><title>{}: {} succeeded, {} failed</title>"
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="transparent"/></g>',
                label,
                ok,
                bad,
                n(x),
                n(y(ok)),
                n(bar),
                n(TOP + plot_h - y(ok)),
                COLOURS["succeeded"],
                n(x),
                n(y(ok + bad)),
                n(bar),
                n(y(ok) - y(ok + bad)),
                COLOURS["failed"],
                n(x),
                TOP,
                n(bar),
                plot_h,  # the whole column answers the tooltip, even an empty minute
            )
        )
    grid = format_html_join(
        "",
        (
            '<line x1="{}" x2="{}" y1="{}" y2="{}" class="djjobs-grid"/>'
            '<text x="{}" y="{}" text-anchor="end" class="djjobs-axis">{}</text>'
        ),
        ((LEFT, WIDTH - RIGHT, n(y(v)), n(y(v)), LEFT - 4, n(y(v) + 4), v) for v in sorted({0, top // 2, top})),
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" class="djjobs-axis">{}</text>',
        (
            (n(LEFT + i * slot + slot / 2), HEIGHT - 6, label)
            for i, label in enumerate(labels)
            if i % 10 == 0 or i == count - 1
        ),
    )
    return format_html(
        '<svg class="djjobs-chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        grid,
        mark_safe("".join(bars)),
        ticks,
    )
