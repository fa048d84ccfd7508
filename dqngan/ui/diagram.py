"""The model-overview diagram of one joint iteration, as SVG with the latest values on it, and the narration of
its sub-steps (what the slow-motion step plays, one numbered caption at a time).

Pure functions of the run's newest history values: the Train tab's poll embeds the SVG, and the page's JS
(NARRATE_JS) highlights one sub-step's nodes after another.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

W, H = 980, 300
# node id -> (x, y, width, label); two rows: the GAN above, the agent below
NODES: dict[str, tuple[int, int, int, str]] = {
    "z": (10, 30, 70, "z ~ N(0, I)"), "g": (110, 30, 70, "G"), "fake": (210, 30, 90, "G(z)"),
    "real": (210, 100, 90, "real x"), "d": (330, 60, 70, "D"), "scores": (430, 60, 150, "D(x), D(G(z))"),
    "dloss": (610, 30, 120, "D loss"), "gloss": (610, 100, 120, "G loss"), "update": (760, 60, 200, "Adam: D, then G"),
    "s": (10, 200, 90, "state s = z, t"), "q": (130, 200, 90, "Q(s, ·)"), "a": (250, 200, 110, "action a"),
    "z2": (390, 200, 90, "z′ = z + move"), "r": (510, 200, 120, "reward ΔΦ"), "replay": (660, 200, 90, "replay"),
    "td": (780, 200, 90, "TD target"), "qup": (890, 200, 80, "Q update"),
}
EDGES = [("z", "g"), ("g", "fake"), ("fake", "d"), ("real", "d"), ("d", "scores"), ("scores", "dloss"),
         ("scores", "gloss"), ("dloss", "update"), ("gloss", "update"), ("s", "q"), ("q", "a"), ("a", "z2"),
         ("z2", "r"), ("r", "replay"), ("replay", "td"), ("td", "qup")]


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{nd}g}" if isinstance(v, float) else str(v)


def latest_values(history: dict, labels: list[str], step_stats: dict | None = None) -> dict[str, Any]:
    """The values the diagram shows: the last step's own (`step_stats`, e.g. after a slow-motion step), else the
    newest logged value of each series (None where the run has none yet)."""
    def last(key: str) -> Any:
        if step_stats and key in step_stats:
            return step_stats[key]
        s = history.get(key)
        return s["value"][-1] if s and s["value"] else None

    q = last("q_probe")
    greedy = labels[max(range(len(q)), key=q.__getitem__)] if q and labels else None
    return {"d_real": last("d_real"), "d_fake": last("d_fake"), "d_loss": last("d_loss"), "g_loss": last("g_loss"),
            "td_loss": last("td_loss"), "ret": last("episode_return"), "greedy": greedy,
            "q_best": max(q) if q else None}


def narration(v: dict[str, Any]) -> list[tuple[list[str], str]]:
    """The sub-steps of one joint iteration: (the nodes it lights up, its caption with this run's values)."""
    return [
        (["z", "g", "fake"], "G draws: a batch of noise z goes through G and comes out as fake digits G(z)."),
        (["real", "fake", "d", "scores"], f"D scores real and fake digits: D(x) = {_fmt(v['d_real'])}, "
                                          f"D(G(z)) = {_fmt(v['d_fake'])} (logits; > 0 means 'looks real')."),
        (["scores", "dloss", "update", "d"], f"D loss = {_fmt(v['d_loss'])}: D takes an Adam step to tell real "
                                              f"from fake better (n_critic times)."),
        (["scores", "gloss", "update", "g"], f"G loss = {_fmt(v['g_loss'])}: G takes an Adam step to make D "
                                              f"score its fakes as real."),
        (["s", "q", "a"], f"The agent: Q scores every move at its state; greedy now: {_fmt(v['greedy'])} "
                          f"(with probability ε it moves at random)."),
        (["a", "z2", "r"], "The move shifts z along one direction; the reward is the change of the potential "
                           f"ΔΦ = Φ(z′) − Φ(z) (episode return lately {_fmt(v['ret'])})."),
        (["r", "replay", "td"], "The transition goes into replay; a sampled batch is re-scored with today's slow "
                                "discriminator D̄ and gets TD targets r + γ·max Q̄(s′)."),
        (["td", "qup", "q"], f"TD loss = {_fmt(v['td_loss'])}: Q takes an Adam step; then the slow copies Q̄ and D̄ "
                             f"move a little towards Q and D (Polyak)."),
    ]


def narration_json(v: dict[str, Any]) -> str:
    """The narration of one step as JSON for NARRATE_JS: it plays these captions, not whatever the diagram shows by
    then (a chart refresh may re-render the diagram from an older snapshot while the narration plays)."""
    return json.dumps([{"nodes": " ".join(nodes), "text": text} for nodes, text in narration(v)])


def svg(v: dict[str, Any]) -> str:
    """The diagram with the newest values on its nodes, and its narration as a numbered list (hidden unless the
    slow-motion step plays it, or always shown with reduced motion)."""
    vals = {"scores": f"{_fmt(v['d_real'], 2)} / {_fmt(v['d_fake'], 2)}", "dloss": _fmt(v["d_loss"], 3),
            "gloss": _fmt(v["g_loss"], 3), "a": _fmt(v["greedy"]), "td": _fmt(v["td_loss"], 3),
            "r": f"return {_fmt(v['ret'], 3)}"}
    parts = [f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="diagram-title" '
             f'class="model-diagram"><title id="diagram-title">One joint iteration: the GAN (top) and the agent '
             f'(bottom), with the latest values</title>',
             '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
             '<text x="10" y="18" class="row-title">GAN: D and G compete</text>',
             '<text x="10" y="188" class="row-title">Agent: Double DQN in the latent space</text>']
    for a, b in EDGES:
        xa, ya, wa, _ = NODES[a]
        xb, yb, _, _ = NODES[b]
        parts.append(f'<line x1="{xa + wa}" y1="{ya + 20}" x2="{xb}" y2="{yb + 20}" stroke="#555" '
                     f'stroke-width="1.5" marker-end="url(#arr)"/>')
    for key, (x, y, w, label) in NODES.items():
        val = vals.get(key)
        parts.append(f'<g id="node-{key}" class="node"><rect x="{x}" y="{y}" width="{w}" height="40" rx="6"/>'
                     f'<text x="{x + w / 2}" y="{y + (17 if val else 25)}" text-anchor="middle">'
                     f'{html.escape(label)}</text>')
        if val:
            parts.append(f'<text x="{x + w / 2}" y="{y + 33}" text-anchor="middle" class="value">'
                         f'{html.escape(val)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    steps = "".join(f'<li data-nodes="{" ".join(nodes)}">{html.escape(text)}</li>'
                    for nodes, text in narration(v))
    return (f'<div class="diagram-box">{"".join(parts)}<p id="narration-caption" class="narration-caption" '
            f'aria-live="polite"></p><ol class="narration">{steps}</ol></div>')


# Plays the narration over the diagram: about a second per sub-step, numbered captions, the active nodes
# highlighted; the page's "pause narration" toggle and the N key pause / advance; with reduced motion (the
# system setting or the checkbox) the whole numbered list shows at once instead.
NARRATE_JS = """(reduced, script) => {
  const find = () => document.querySelector('#diagram .diagram-box');
  const box = find();
  if (!box) return;
  box.querySelectorAll('.node').forEach(n => n.classList.remove('active'));
  clearInterval(window.__narrTimer);
  if (reduced || window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
    box.classList.add('show-all'); window.__narr = null; return;
  }
  box.classList.remove('show-all');
  let items;
  try { items = JSON.parse(script || '[]'); } catch (e) { items = []; }
  if (!items.length) return;
  window.__narr = {i: 0, paused: false};
  // the diagram may be re-rendered meanwhile: look its nodes up again at every sub-step
  const show = () => {
    const st = window.__narr, b = find(); if (!st || !b) return;
    const caption = b.querySelector('#narration-caption');
    b.querySelectorAll('.node').forEach(n => n.classList.remove('active'));
    if (st.i >= items.length) { caption.textContent = ''; clearInterval(window.__narrTimer); return; }
    const li = items[st.i];
    for (const id of li.nodes.split(' ')) {
      const n = b.querySelector('#node-' + id); if (n) n.classList.add('active');
    }
    caption.textContent = (st.i + 1) + ' / ' + items.length + ' · ' + li.text;
    st.i += 1;
  };
  window.__narrShow = show;
  show();
  window.__narrTimer = setInterval(() => { if (window.__narr && !window.__narr.paused) show(); }, 1100);
}"""
