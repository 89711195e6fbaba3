/* Comparison page: sort and filter the evals table, and draw two plots as inline SVG (no library):
   L0 (log axis) against explained variance, and a chosen metric by layer with one line per source set. */
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const data = JSON.parse(document.getElementById("compare-data").textContent);
  const labels = JSON.parse(document.getElementById("compare-metrics").textContent);
  const table = document.getElementById("compare-table");
  const body = table.tBodies[0];
  const rowsByKey = new Map();
  Array.from(body.rows).forEach((tr) => {
    if (tr.dataset.source) rowsByKey.set(tr.dataset.model + "/" + tr.dataset.source, tr);
  });
  let sortKey = null;
  let sortDir = 1;

  function val(d, key) {
    const v = d[key];
    return v === null || v === undefined ? null : v;
  }

  function filters() {
    const get = (id) => (document.getElementById(id) || {}).value || "";
    return {
      model: get("f-model"), set: get("f-set"), release: get("f-release"),
      q: get("f-q").trim().toLowerCase(),
      measured: (document.getElementById("f-measured") || {}).checked,
    };
  }

  function visible() {
    const f = filters();
    return data.filter((d) => (!f.model || d.model === f.model) && (!f.set || d.set === f.set)
      && (!f.release || d.release === f.release) && (!f.q || d.source.toLowerCase().includes(f.q))
      && (!f.measured || d.l0 !== null || d.explained_variance !== null));
  }

  function compare(a, b, key, numeric) {
    const x = val(a, key);
    const y = val(b, key);
    if (x === null && y === null) return 0;
    if (x === null) return 1; // unmeasured last, whatever the direction
    if (y === null) return -1;
    if (numeric) return (x - y) * sortDir;
    return String(x).localeCompare(String(y)) * sortDir;
  }

  function render() {
    let shown = visible();
    if (sortKey) {
      const th = table.querySelector('th[data-key="' + sortKey + '"]');
      const numeric = th && th.dataset.type === "num";
      shown = shown.slice().sort((a, b) => compare(a, b, sortKey, numeric) || a.layer - b.layer);
    }
    const keep = new Set(shown.map((d) => d.model + "/" + d.source));
    rowsByKey.forEach((tr, key) => { tr.hidden = !keep.has(key); });
    shown.forEach((d) => { const tr = rowsByKey.get(d.model + "/" + d.source); if (tr) body.appendChild(tr); });
    const count = document.getElementById("compare-count");
    if (count) count.textContent = shown.length + " of " + data.length + " sources";
    scatter(shown);
    byLayer(shown);
  }

  table.querySelectorAll("th[data-key]").forEach((th) => {
    th.tabIndex = 0;
    th.setAttribute("role", "button");
    const activate = () => {
      if (sortKey === th.dataset.key) sortDir = -sortDir;
      else { sortKey = th.dataset.key; sortDir = th.dataset.type === "num" ? -1 : 1; }
      table.querySelectorAll("th[data-key]").forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      render();
    };
    th.addEventListener("click", activate);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); } });
  });
  const form = document.getElementById("compare-filters");
  form.addEventListener("input", render);
  form.addEventListener("change", render);
  form.addEventListener("submit", (e) => e.preventDefault());

  // --- plots ---------------------------------------------------------------------------------
  const W = 520, H = 320, M = { l: 56, r: 16, t: 14, b: 44 };

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function extent(values, pad) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (lo === hi) { lo -= pad || 0.5; hi += pad || 0.5; }
    const margin = (hi - lo) * 0.08; // keep points off the axes and clear of the legend
    return [lo - margin, hi + margin * 2.5];
  }

  function ticks(lo, hi, n) {
    const step = (hi - lo) / n;
    return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + "k";
    if (a >= 10) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    return v.toFixed(2);
  }

  function axes(svg, xs, ys, xLabel, yLabel, xFmt) {
    const g = el("g", { class: "axes" });
    g.appendChild(el("line", { x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b }));
    g.appendChild(el("line", { x1: M.l, y1: M.t, x2: M.l, y2: H - M.b }));
    xs.forEach(([pos, text]) => {
      g.appendChild(el("line", { x1: pos, y1: H - M.b, x2: pos, y2: H - M.b + 4 }));
      g.appendChild(el("text", { x: pos, y: H - M.b + 16, "text-anchor": "middle" }, xFmt ? xFmt(text) : fmt(text)));
    });
    ys.forEach(([pos, text]) => {
      g.appendChild(el("line", { x1: M.l - 4, y1: pos, x2: M.l, y2: pos }));
      g.appendChild(el("text", { x: M.l - 6, y: pos + 4, "text-anchor": "end" }, fmt(text)));
    });
    g.appendChild(el("text", { x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, xLabel));
    g.appendChild(el("text", { x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle", class: "axis-label",
      transform: "rotate(-90 12 " + (M.t + H - M.b) / 2 + ")" }, yLabel));
    svg.appendChild(g);
  }

  const palette = (i, n) => "hsl(" + Math.round((i * 360) / Math.max(n, 1) + 200) % 360 + " 65% 45%)";

  function emptyPlot(host, message) {
    host.textContent = "";
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = message;
    host.appendChild(p);
  }

  function scatter(rows) {
    const host = document.getElementById("plot-scatter");
    const pts = rows.filter((d) => d.l0 !== null && d.l0 > 0 && d.explained_variance !== null);
    if (!pts.length) { emptyPlot(host, "No shown source has both L0 and explained variance."); return; }
    const logs = pts.map((d) => Math.log10(d.l0));
    const [x0, x1] = extent(logs, 0.5);
    const [y0, y1] = extent(pts.map((d) => d.explained_variance), 0.05);
    const sx = (v) => M.l + ((v - x0) / (x1 - x0)) * (W - M.l - M.r);
    const sy = (v) => H - M.b - ((v - y0) / (y1 - y0)) * (H - M.t - M.b);
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "chart", id: "scatter-svg" });
    const xt = ticks(x0, x1, 4).map((v) => [sx(v), v]);
    const yt = ticks(y0, y1, 4).map((v) => [sy(v), v]);
    axes(svg, xt, yt, "L0 (log scale)", "explained variance", (v) => fmt(Math.pow(10, v)));
    const sets = Array.from(new Set(pts.map((d) => d.model + "/" + d.set)));
    pts.forEach((d) => {
      const c = el("circle", { cx: sx(Math.log10(d.l0)), cy: sy(d.explained_variance), r: 5,
        fill: palette(sets.indexOf(d.model + "/" + d.set), sets.length), class: "pt", tabindex: 0,
        "data-source": d.source });
      c.appendChild(el("title", {}, d.model + " " + d.source + "\nL0 " + d.l0.toFixed(1)
        + " · explained variance " + d.explained_variance.toFixed(3)));
      c.addEventListener("click", () => { window.location.href = d.url; });
      svg.appendChild(c);
    });
    legend(svg, sets);
    host.textContent = "";
    host.appendChild(svg);
  }

  function legend(svg, names) {
    names.slice(0, 8).forEach((name, i) => {
      const y = M.t + 4 + i * 14;
      svg.appendChild(el("rect", { x: W - M.r - 130, y: y - 8, width: 9, height: 9,
        fill: palette(i, names.length) }));
      svg.appendChild(el("text", { x: W - M.r - 117, y: y, class: "legend" },
        name.length > 22 ? name.slice(0, 21) + "…" : name));
    });
  }

  function byLayer(rows) {
    const host = document.getElementById("plot-layer");
    const key = document.getElementById("layer-metric").value;
    const pts = rows.filter((d) => val(d, key) !== null);
    if (!pts.length) { emptyPlot(host, "No shown source has " + (labels[key] || key) + "."); return; }
    const [x0, x1] = extent(pts.map((d) => d.layer), 1);
    const [y0, y1] = extent(pts.map((d) => d[key]), key === "l0" ? 5 : 0.05);
    const sx = (v) => M.l + ((v - x0) / (x1 - x0)) * (W - M.l - M.r);
    const sy = (v) => H - M.b - ((v - y0) / (y1 - y0)) * (H - M.t - M.b);
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "chart", id: "layer-svg" });
    const layers = Array.from(new Set(pts.map((d) => d.layer))).sort((a, b) => a - b);
    const xt = (layers.length <= 12 ? layers : ticks(x0, x1, 6).map(Math.round)).map((v) => [sx(v), v]);
    axes(svg, xt, ticks(y0, y1, 4).map((v) => [sy(v), v]), "layer", labels[key] || key, (v) => String(v));
    const sets = Array.from(new Set(pts.map((d) => d.model + "/" + d.set)));
    sets.forEach((name, i) => {
      const line = pts.filter((d) => d.model + "/" + d.set === name).sort((a, b) => a.layer - b.layer);
      const colour = palette(i, sets.length);
      if (line.length > 1) {
        svg.appendChild(el("polyline", { points: line.map((d) => sx(d.layer) + "," + sy(d[key])).join(" "),
          fill: "none", stroke: colour, "stroke-width": 2 }));
      }
      line.forEach((d) => {
        const c = el("circle", { cx: sx(d.layer), cy: sy(d[key]), r: 4, fill: colour, class: "pt" });
        c.appendChild(el("title", {}, d.source + ": " + (labels[key] || key) + " " + Number(d[key]).toPrecision(4)));
        c.addEventListener("click", () => { window.location.href = d.url; });
        svg.appendChild(c);
      });
    });
    legend(svg, sets);
    host.textContent = "";
    host.appendChild(svg);
  }

  document.getElementById("layer-metric").addEventListener("change", render);
  render();
})();
