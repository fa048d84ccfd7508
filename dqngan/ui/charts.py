"""Plotly figures as plain dicts, serialised once and handed to gr.Plot as-is.

Why not plotly.graph_objects: building and validating a go.Figure costs tens of milliseconds and its JSON embeds an
~8 KB template; the poll handler must stay well under 30 ms and 150 KB. Plotly.js renders these dicts the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_POINTS = 200  # per series sent to the browser; the history itself keeps up to history_len points
HEAT_COLS = 120  # columns of the Q heatmap
# Okabe-Ito, a palette that stays distinct under the common colour-vision deficiencies, and a dash style per series
# too, so the lines a class compares (D(G(z)) vs D(G(z_T))) never differ by hue alone.
OKABE_ITO = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "purple": "#CC79A7",
             "orange": "#E69F00", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000"}
COLORS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky", "black")]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "solid"]
GREEDY = OKABE_ITO["orange"]
HEIGHT = 290


# ------------------------------------------------------------------------------------------------ data shaping
def downsample(steps: Sequence[float], values: Sequence[Any], max_points: int = MAX_POINTS) -> tuple[list, list]:
    """Evenly spaced points, always keeping the first and the newest one (so the chart ends at 'now')."""
    n = len(steps)
    if n <= max_points:
        return list(steps), list(values)
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return [steps[i] for i in idx], [values[i] for i in idx]


def ema_smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: a debiased exponential moving average; non-finite points pass through unsmoothed."""
    if weight <= 0 or not values:
        return list(values)
    weight = min(weight, 0.999)
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight ** n))
    return out


def _r(x: Any) -> Any:
    """Four significant digits: halves the JSON size of a chart without a visible difference."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None  # JSON has no NaN; Plotly draws a gap
    return float(f"{x:.4g}")


def _rl(xs: Sequence[Any]) -> list:
    return [_r(x) for x in xs]


# ------------------------------------------------------------------------------------------------ figures
def _layout(ytitle: str = "", xtitle: str = "step", **extra: Any) -> dict:
    # The legend sits under the plot (x titles are left off where "step" is obvious), so wrapping legend lines never
    # cover data; gr.Plot's own label already names the chart, so there is no layout title either.
    lay = {"height": HEIGHT, "margin": {"l": 50, "r": 10, "t": 10, "b": 75},
           "xaxis": {"title": {"text": xtitle if xtitle != "step" else ""}}, "yaxis": {"title": {"text": ytitle}},
           "legend": {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"},
           "hovermode": "x unified", "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(127,127,127,0.06)"}
    lay.update(extra)
    return lay


def window(steps: Sequence[float], values: Sequence[Any], last: int | None) -> tuple[list, list]:
    """The points of the last `last` steps (None: all), so a change shows even on a 30 000-step history."""
    if not last or not steps:
        return list(steps), list(values)
    lo = steps[-1] - last
    i = next((j for j, s in enumerate(steps) if s >= lo), len(steps))
    return list(steps[i:]), list(values[i:])


def line_figure(history: dict, series: Sequence[tuple], smoothing: float = 0.0, ytitle: str = "",
                empty_text: str = "waiting for the first steps...", last: int | None = None,
                y2title: str = "") -> dict:
    """One trace per (history key, legend name); with smoothing, the raw series stays as a faint line underneath.
    `last`: only the most recent `last` steps."""
    data = []
    right = False
    for i, spec in enumerate(series):
        key, name = spec[0], spec[1]
        axis = spec[2] if len(spec) > 2 else "y"  # "y2": a right-hand axis for a series on another scale
        s = history.get(key)
        if not s or not s["step"]:
            continue
        x, y = downsample(*window(s["step"], s["value"], last))
        if not x:
            continue
        right |= axis == "y2"
        color, dash = COLORS[i % len(COLORS)], DASHES[i % len(DASHES)]
        if smoothing > 0:
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": _rl(y), "name": name, "showlegend": False,
                         "hoverinfo": "skip", "line": {"color": color, "width": 1}, "opacity": 0.25, "yaxis": axis})
            y = ema_smooth(y, smoothing)
        data.append({"type": "scatter", "mode": "lines+markers" if len(x) < 3 else "lines", "x": x, "y": _rl(y),
                     "name": name, "line": {"color": color, "width": 2.5, "dash": dash}, "yaxis": axis})
    lay = _layout(ytitle)
    if right:
        # one zero line only (the left axis'): two at different heights read as two baselines
        lay["yaxis2"] = {"overlaying": "y", "side": "right", "showgrid": False, "zeroline": False,
                         "title": {"text": y2title}}
        lay["margin"]["r"] = 55
    if not data:
        lay["annotations"] = [_note(empty_text)]
    return {"data": data, "layout": lay}


def _note(text: str) -> dict:
    return {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "font": {"color": "#888"}}


def q_bar_figure(labels: Sequence[str], q: Sequence[float] | None, chosen: int | None = None,
                 title: str = "mean Q at the probe states") -> dict:
    """A bar per action; the chosen (argmax) action is drawn in a contrasting colour."""
    if q is None or len(q) == 0:
        note = _note("no Q-values yet (agent not started)")
        return {"data": [], "layout": _layout("Q", "action", annotations=[note])}
    q = list(q)
    best = int(np.argmax(q)) if chosen is None else chosen
    colors = [GREEDY if i == best else ("#8c8c8c" if lab == "stop" else OKABE_ITO["blue"])
              for i, lab in enumerate(labels)]
    widths = [3 if i == best else 0 for i in range(len(q))]
    data = [{"type": "bar", "x": list(labels), "y": _rl(q), "name": title,
             "marker": {"color": colors, "line": {"color": "#000000", "width": widths}},
             "hovertemplate": "%{x}: Q=%{y}<extra></extra>"}]
    lay = _layout("Q", "action", hovermode="closest", showlegend=False)
    lay["margin"].update(t=40, b=50)
    # An arrow, not only the bar's colour: the greedy bar has zero height whenever its Q is ~0 (often 'stop').
    lay["annotations"] = [{"x": list(labels)[best], "y": _r(q[best]), "text": f"greedy: {labels[best]}",
                           "showarrow": True, "arrowhead": 2, "ax": 0, "ay": -28, "font": {"size": 13},
                           "bgcolor": "rgba(255,255,255,0.85)"}]
    return {"data": data, "layout": lay}


def q_heatmap_figure(q_hist: dict | None, labels: Sequence[str], smoothing: float = 0.0) -> dict:
    """Q per action (rows) over training steps (columns); shows when and which moves the agent learns to prefer.
    `smoothing`: the line charts' EMA along time, per row (single snapshots are noisy)."""
    if not q_hist or not q_hist["step"]:
        return {"data": [], "layout": _layout("action", annotations=[_note("no Q-values yet")])}
    values = q_hist["value"]
    if smoothing > 0:
        cols = np.asarray(values, dtype=np.float64).T  # (actions, snapshots)
        values = np.asarray([ema_smooth(list(r), smoothing) for r in cols]).T.tolist()
    x, rows = downsample(q_hist["step"], values, HEAT_COLS)
    z = np.asarray(rows, dtype=np.float64).T  # (actions, steps)
    z = [[_r(v) for v in row] for row in z]
    ys = list(labels)[: len(z)]
    # RdBu: red = good, blue = bad (a diverging map that stays readable with red-green deficiency)
    data = [{"type": "heatmap", "x": x, "y": ys, "z": z, "colorscale": "RdBu", "zmid": 0,
             "colorbar": {"title": {"text": "Q"}, "thickness": 10},
             "hovertemplate": "step %{x}<br>%{y}: Q=%{z}<extra></extra>"}]
    # every row labelled (Plotly skips every other category label when rows are short)
    yaxis = {"autorange": "reversed", "tickmode": "array", "tickvals": ys, "ticktext": ys, "tickfont": {"size": 10}}
    return {"data": data, "layout": _layout("", hovermode="closest", yaxis=yaxis)}


def trajectory_figure(values: Sequence[float], ytitle: str = "potential") -> dict:
    """Phi per agent step of a rollout."""
    x = list(range(len(values)))
    data = [{"type": "scatter", "mode": "lines+markers", "x": x, "y": _rl(values), "name": ytitle}]
    return {"data": data, "layout": _layout(ytitle, "agent step", hovermode="closest", showlegend=False)}


def latent_map_figure(u: Sequence[float], v: Sequence[float], phi: np.ndarray, labels: tuple[str, str],
                      path: Sequence[tuple[float, float]] = (), mosaic_uri: str | None = None,
                      extent: tuple[float, float, float, float] | None = None) -> dict:
    """Phi as a heatmap over a plane of two directions through z; the agent's path on top; optional thumbnails of
    G(z) at the grid points underneath (so hovering shows the digit there and its score)."""
    data: list[dict] = [{"type": "heatmap", "x": _rl(u), "y": _rl(v), "z": [_rl(r) for r in np.asarray(phi)],
                         "colorscale": "Viridis", "opacity": 0.55 if mosaic_uri else 1.0,
                         "colorbar": {"title": {"text": "Phi"}, "thickness": 10},
                         "hovertemplate": f"{labels[0]}=%{{x}}<br>{labels[1]}=%{{y}}<br>Phi=%{{z}}<extra></extra>"}]
    if path:
        px, py = zip(*path)
        data.append({"type": "scatter", "mode": "lines+markers", "x": _rl(px), "y": _rl(py), "name": "agent",
                     "line": {"color": OKABE_ITO["vermillion"], "width": 3}, "marker": {"size": 8}})
        # black on white, so the legend's marker shows too (a white one vanished on the white legend)
        data.append({"type": "scatter", "mode": "markers", "x": [_r(px[0])], "y": [_r(py[0])], "name": "start",
                     "marker": {"size": 13, "symbol": "circle", "color": "#ffffff",
                                "line": {"width": 3, "color": "#000000"}}})
    lay = _layout(labels[1], labels[0], hovermode="closest", height=460,
                  yaxis={"title": {"text": labels[1]}, "scaleanchor": "x"})
    lay["margin"]["t"] = 40  # room above the colour bar's title for Plotly's tool bar
    lay["xaxis"]["constrain"] = "domain"  # square cells: shrink the plot area rather than pad the x range
    if mosaic_uri:
        x0, x1, y0, y1 = extent or (float(u[0]), float(u[-1]), float(v[0]), float(v[-1]))
        lay["images"] = [{"source": mosaic_uri, "xref": "x", "yref": "y", "x": x0, "y": y1, "sizex": x1 - x0,
                          "sizey": y1 - y0, "sizing": "stretch", "layer": "below", "xanchor": "left",
                          "yanchor": "top"}]
    else:
        x0, x1, y0, y1 = float(u[0]), float(u[-1]), float(v[0]), float(v[-1])
    lay["xaxis"]["range"], lay["yaxis"]["range"] = [x0, x1], [y0, y1]
    return {"data": data, "layout": lay}


# ------------------------------------------------------------------------------------------------ to Gradio
def to_json(fig: dict) -> str:
    return json.dumps(fig, separators=(",", ":"), allow_nan=False)


def to_plot(fig: dict) -> Any:
    """A value gr.Plot passes through untouched (serialised once here, cacheable and shared by every viewer)."""
    from gradio.components.plot import PlotData  # internal class; gr.Plot.postprocess returns it unchanged

    return PlotData(type="plotly", plot=to_json(fig))
