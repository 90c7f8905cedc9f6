"""The evaluation report beside the adapter: ADAPTER.report.md and ADAPTER.report.png.

The markdown has the headline figures (perplexity, FIM, style, guard set), then the style
relative to the author feature by feature (the gap closed, the classifier's per-feature push)
and the cross-author control; the chart shows the same.
"""

from __future__ import annotations

from pathlib import Path

from training.evaluate import GUARD_MAX_LOSS_POINTS, Report
from training.style import MIN_GAP_POINTS, Discrimination


def write_report(report: Report, adapter_gguf: Path, facts: dict[str, str]) -> Path:
    """ADAPTER.report.md and ADAPTER.report.png beside the adapter."""
    markdown = adapter_gguf.with_suffix(".report.md")
    chart = adapter_gguf.with_suffix(".report.png")
    _chart(report, chart)
    lines = [
        f"# Personal adapter report: {adapter_gguf.name}", "",
        *[f"- {key}: {value}" for key, value in facts.items()], "",
        *_headline(report), "", *_relative_style(report), *_cross_author(report),
        "## Style features of new functions (share, 0-1)", "",
        "Each function of the files not trained on, begun as `def name(` in an empty file; "
        "n/a where the code showed a habit too seldom to compare.", "",
        "| feature | your code | base | with adapter |", "|---|---|---|---|",
        *[f"| {name} | {value:.2f} | {_share(report.style_features_base, name)} "
          f"| {_share(report.style_features_adapted, name)} |"
          for name, value in sorted(report.style_features_corpus.items())],
        "", f"![chart]({chart.name})", "",
    ]
    markdown.write_text("\n".join(lines))
    return markdown


def _headline(report: Report) -> list[str]:
    base, adapted = report.base, report.adapted
    guard = report.guard_passed
    verdict = ("not measured (guard data missing)" if guard is None else
               "passed" if guard else
               f"FAILED: lost more than {GUARD_MAX_LOSS_POINTS:g} points; the server will not "
               f"enable this adapter")

    def row(name: str, before: float | None, after: float | None, unit: str = "") -> str:
        if before is None or after is None:
            return f"| {name} | n/a | n/a | |"
        return f"| {name} | {before:.2f}{unit} | {after:.2f}{unit} | {after - before:+.2f} |"

    closed = None if report.style_gap is None else report.style_gap.mean_closed
    shares = report.discrimination
    return [
        "| measure | base | with adapter | change |", "|---|---|---|---|",
        row("held-out perplexity (middles)", base.perplexity, adapted.perplexity),
        row("held-out FIM exact match", base.fim_exact_match, adapted.fim_exact_match, " %"),
        row("style agreement with your code (new functions)", base.style_agreement,
            adapted.style_agreement),
        row("style agreement inside your files (completions)", base.style_in_context,
            adapted.style_in_context),
        row("new functions classified as yours", None if shares is None else shares.base_share,
            None if shares is None else shares.adapter_share, " %"),
        row("guard set exact match (HumanEval)", base.guard_exact_match,
            adapted.guard_exact_match, " %"),
        "", f"Style gap closed: {_percent(closed)} (the mean over the habits where the base was "
            f"at least {MIN_GAP_POINTS:g} points from you).", "",
        f"Guard set: {verdict}.",
    ]


def _relative_style(report: Report) -> list[str]:
    if report.style_gap is None:
        return []
    pushes = report.discrimination
    lines = ["## Your style, habit by habit", "",
             "Rates on the functions of your files not trained on (you) and on the functions "
             "each arm wrote from their first line (base, adapter). Gap: you - base, in points. "
             "Closed: (adapter - base) / gap, and past you 1 - (distance from you) / gap; "
             "averaged, each within ±100%, only where the gap is at least "
             f"{MIN_GAP_POINTS:g} points. Push: how much the habit moves the classifier "
             "toward \"yours\" (log-odds), adapter minus base.", "",
             "| habit | you | base | adapter | gap | closed | averaged | push |",
             "|---|---|---|---|---|---|---|---|"]
    for feature in report.style_gap.features:
        push = "" if pushes is None else f"{_push(pushes, feature.name):+.2f}"
        gap = feature.gap_points
        lines.append(
            f"| {feature.name} | {_rate(feature.author)} | {_rate(feature.base)} "
            f"| {_rate(feature.adapter)} | {'n/a' if gap is None else f'{gap:+.0f}'} "
            f"| {_percent(feature.closed)} | {'yes' if feature.counted else 'no'} | {push} |")
    lines.append("")
    if pushes is not None:
        lines += [f"Classifier (logistic regression over these habits, your code against other "
                  f"authors'): {_percent(pushes.held_out_accuracy, 100)} right on code it did not "
                  f"learn from; new functions classified as yours: base "
                  f"{_percent(pushes.base_share, 100)}, adapter "
                  f"{_percent(pushes.adapter_share, 100)}.", ""]
    return lines


def _cross_author(report: Report) -> list[str]:
    if not report.cross_author:
        return []
    lines = ["## Cross-author control", "",
             "The adapter must not make completions more like another author than the base "
             "does.", "",
             "| other author | gap closed toward them | classified as theirs: base | adapter "
             "| holds |", "|---|---|---|---|---|"]
    for control in report.cross_author:
        lines.append(f"| {control.name} | {_percent(control.gap.mean_closed)} "
                     f"| {_percent(control.base_share, 100)} "
                     f"| {_percent(control.adapter_share, 100)} "
                     f"| {'yes' if control.holds else 'NO'} |")
    return [*lines, ""]


def _push(discrimination: Discrimination, name: str) -> float:
    """How much more the adapter's functions than the base's look like the author's through
    habit `name`, in log-odds of the classifier."""
    return (discrimination.adapter_contributions[name]
            - discrimination.base_contributions[name])


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _percent(value: float | None, scale: float = 1.0) -> str:
    """A share (0-1, or 0-100 with `scale` 100) as a percentage; n/a for None."""
    return "n/a" if value is None else f"{100 * value / scale:.0f}%"


def _share(features: dict[str, float], name: str) -> str:
    return f"{features[name]:.2f}" if name in features else "n/a"


def _chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    relative = report.style_gap is not None
    figure = pyplot.figure(figsize=(12, 8 if relative else 3))
    grid = figure.add_gridspec(3 if relative else 1, 4, height_ratios=[1, 1.4, 1.4][
        :3 if relative else 1])
    names = ["perplexity", "FIM exact %", "style agreement", "guard exact %"]
    base = [report.base.perplexity, report.base.fim_exact_match, report.base.style_agreement,
            report.base.guard_exact_match or 0.0]
    adapted = [report.adapted.perplexity, report.adapted.fim_exact_match,
               report.adapted.style_agreement, report.adapted.guard_exact_match or 0.0]
    for column, (name, before, after) in enumerate(zip(names, base, adapted, strict=True)):
        axis = figure.add_subplot(grid[0, column])
        axis.bar(["base", "adapter"], [before, after], color=["#999999", "#3b7dd8"])
        axis.set_title(name)
    if relative:
        _chart_features(figure, grid, report)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def _chart_features(figure, grid, report: Report) -> None:
    """Per habit: the three rates, and the share closed beside the classifier's push."""
    import numpy as np

    features = report.style_gap.features
    x = np.arange(len(features))
    rates = figure.add_subplot(grid[1, :])
    for offset, (label, color, values) in enumerate((
            ("you", "#2a9d45", [f.author for f in features]),
            ("base", "#999999", [f.base for f in features]),
            ("adapter", "#3b7dd8", [f.adapter for f in features]))):
        rates.bar(x + (offset - 1) * 0.27, [100 * (v or 0.0) for v in values], 0.27,
                  label=label, color=color)
    rates.set_xticks(x, [f.name for f in features], rotation=30, ha="right", fontsize=7)
    rates.set_ylabel("rate %")
    rates.legend(fontsize=7)
    rates.set_title("habits: you, base, adapter")
    closed = figure.add_subplot(grid[2, :])
    closed.bar(x - 0.2, [100 * max(-1.0, min(1.5, f.closed or 0.0)) if f.counted else 0.0
                         for f in features], 0.4, label="gap closed % (habits with room)",
               color="#3b7dd8")
    if report.discrimination is not None:
        pushes = report.discrimination
        closed.bar(x + 0.2, [100 * _push(pushes, f.name) for f in features],
                   0.4, label="classifier push toward you (log-odds x100)", color="#e07b39")
    closed.axhline(0, color="black", linewidth=0.5)
    closed.set_xticks(x, [f.name for f in features], rotation=30, ha="right", fontsize=7)
    closed.legend(fontsize=7)
    closed.set_title("what the adapter changed, habit by habit")

