// Attribution-graph viewer: draws a Neuronpedia-format graph (metadata, nodes, links) on two canvases
// (the pruned graph, and an overlay redrawn on hover/click), with a side panel for the clicked node and
// its feature dashboard, pruning sliders, pinned subgraph with supernodes and labels ("clerps") kept in
// the URL with Neuronpedia's query parameters, and interventions through /api/graph/intervene.
// Plain ES module, no dependencies.

const COLORS = {
  feature: "#5b73e8", error: "#98a2b3", embedding: "#12b76a", logit: "#f79009",
  pos: "37, 99, 235", neg: "220, 38, 38", pin: "#111827", grid: "#f2f4f7", text: "#475467",
};
const SUPERNODE_COLORS = ["#e11d48", "#7c3aed", "#0891b2", "#ca8a04", "#16a34a", "#db2777", "#2563eb", "#ea580c"];
const MARGIN = { left: 44, right: 12, top: 24, bottom: 46 };

const app = document.getElementById("graph-app");
const meta = JSON.parse(app.dataset.meta);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(d));

const state = {
  graph: null, nodes: [], byId: new Map(), links: [], sortedLinks: [], cumulative: [],
  visibleNodes: [], visibleLinks: [], nodeThreshold: 0.8, edgeThreshold: 1,
  pinned: [], supernodes: [], clerps: new Map(), clickedId: null, hoveredId: null,
  checked: new Set(), rows: 0, nTokens: 0, width: 0, height: 0, dpr: window.devicePixelRatio || 1,
};

// ---- data -------------------------------------------------------------------------------------------

function kindOf(node) {
  const t = node.feature_type;
  if (t === "embedding") return "embedding";
  if (t === "logit") return "logit";
  if (t.includes("error")) return "error";
  return "feature";
}

function prepare(graph) {
  const tokens = graph.metadata.prompt_tokens;
  state.nTokens = tokens.length;
  let maxLayer = 0;
  for (const n of graph.nodes) {
    if (n.feature_type !== "logit" && n.layer !== "E" && Number.isFinite(+n.layer)) maxLayer = Math.max(maxLayer, +n.layer);
  }
  state.rows = maxLayer + 3; // embeddings, layers 0..maxLayer, logits
  state.nodes = graph.nodes.map((n, i) => {
    const kind = kindOf(n);
    const row = kind === "embedding" ? 0 : kind === "logit" ? maxLayer + 2 : +n.layer + 1;
    const parts = String(n.node_id).split("_");
    const tok = tokens[n.ctx_idx] ?? "";
    let label = n.clerp || "";
    if (kind === "embedding") label = `Emb: "${tok}"`;
    else if (kind === "error") label = `Err: mlp "${tok}"`;
    else if (kind === "feature" && !label) label = `L${n.layer} #${parts[1]}`;
    return {
      i, id: n.node_id, raw: n, kind, row, ctx: n.ctx_idx, layer: n.layer, label,
      featureIndex: kind === "feature" && parts.length === 3 ? +parts[1] : null,
      featureKey: `${n.layer}_${n.feature}_${n.ctx_idx}`,
      influence: n.influence ?? null, activation: n.activation ?? null, prob: n.token_prob ?? 0,
      inLinks: [], outLinks: [], x: 0, y: 0, visible: true,
    };
  });
  state.byId = new Map(state.nodes.map((n) => [n.id, n]));
  state.links = [];
  for (const l of graph.links) {
    const s = state.byId.get(l.source), t = state.byId.get(l.target);
    if (!s || !t) continue;
    const link = { s, t, w: l.weight, a: Math.abs(l.weight) };
    state.links.push(link);
    s.outLinks.push(link);
    t.inLinks.push(link);
  }
  for (const n of state.nodes) {
    n.inLinks.sort((a, b) => b.a - a.a);
    n.outLinks.sort((a, b) => b.a - a.a);
  }
  state.sortedLinks = [...state.links].sort((a, b) => b.a - a.a);
  const total = state.sortedLinks.reduce((acc, l) => acc + l.a, 0) || 1;
  let run = 0;
  state.cumulative = state.sortedLinks.map((l) => (run += l.a) / total);
  state.maxAbs = state.sortedLinks.length ? state.sortedLinks[0].a : 1;
}

// ---- URL state (Neuronpedia's pinnedIds / supernodes / clerps / clickedId / pruningThreshold) --------

function parseJSONParam(value) {
  if (!value) return [];
  try {
    const parsed = JSON.parse(value);
    return Array.isArray(parsed) && parsed.every((g) => Array.isArray(g) && g.every((x) => typeof x === "string")) ? parsed : [];
  } catch { return []; }
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  const known = (id) => state.byId.has(id);
  state.pinned = (q.get("pinnedIds") || "").split(",").filter(known);
  state.supernodes = parseJSONParam(q.get("supernodes"))
    .map((g) => [g[0], ...g.slice(1).filter(known)]).filter((g) => g.length > 1);
  state.clerps = new Map(parseJSONParam(q.get("clerps")).filter((p) => p.length === 2));
  const clicked = q.get("clickedId");
  state.clickedId = clicked && known(clicked) ? clicked : null;
  const nt = parseFloat(q.get("pruningThreshold"));
  state.nodeThreshold = Number.isFinite(nt) ? nt : (state.graph.metadata.node_threshold ?? 0.8);
  const et = parseFloat(q.get("edgeThreshold"));
  state.edgeThreshold = Number.isFinite(et) ? et : 1;
}

function writeUrl() {
  const q = new URLSearchParams(location.search);
  const set = (k, v) => (v ? q.set(k, v) : q.delete(k));
  set("pinnedIds", state.pinned.join(","));
  set("supernodes", state.supernodes.length ? JSON.stringify(state.supernodes) : "");
  set("clerps", state.clerps.size ? JSON.stringify([...state.clerps]) : "");
  set("clickedId", state.clickedId || "");
  set("pruningThreshold", String(state.nodeThreshold));
  set("edgeThreshold", state.edgeThreshold < 1 ? String(state.edgeThreshold) : "");
  history.replaceState(null, "", `${location.pathname}?${q.toString()}`);
}

function labelOf(n) {
  return state.clerps.get(n.featureKey) || n.label;
}

// ---- pruning and layout ---------------------------------------------------------------------------------

function prune() {
  const pinned = new Set(state.pinned);
  for (const n of state.nodes) {
    n.visible = n.kind === "embedding" || n.kind === "logit" || pinned.has(n.id) || n.id === state.clickedId
      || n.influence === null || n.influence <= state.nodeThreshold + 1e-9;
  }
  let keep = state.sortedLinks.length;
  if (state.edgeThreshold < 1) {
    keep = 0;
    while (keep < state.cumulative.length && state.cumulative[keep] < state.edgeThreshold) keep++;
    keep = Math.min(state.sortedLinks.length, keep + 1);
  }
  state.visibleLinks = state.sortedLinks.slice(0, keep).filter((l) => l.s.visible && l.t.visible);
  // a feature or error node left without any visible edge is noise: hide it (unless pinned)
  const touched = new Set();
  for (const l of state.visibleLinks) { touched.add(l.s); touched.add(l.t); }
  for (const n of state.nodes) {
    if (n.visible && (n.kind === "feature" || n.kind === "error") && !touched.has(n) && !pinned.has(n.id) && n.id !== state.clickedId) n.visible = false;
  }
  state.visibleNodes = state.nodes.filter((n) => n.visible);
}

function layout() {
  const stage = $("graph-stage");
  state.width = stage.clientWidth;
  state.height = Math.max(420, Math.min(760, state.rows * 24 + MARGIN.top + MARGIN.bottom));
  const cells = new Map();
  for (const n of state.visibleNodes) {
    const key = `${n.row}:${n.ctx}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(n);
  }
  const colWidth = new Array(state.nTokens).fill(1);
  for (const [key, list] of cells) {
    const ctx = +key.split(":")[1];
    colWidth[ctx] = Math.max(colWidth[ctx], list.length);
  }
  const weights = colWidth.map((w) => Math.sqrt(w) + 1.2);
  const total = weights.reduce((a, b) => a + b, 0);
  const innerW = state.width - MARGIN.left - MARGIN.right;
  state.colX = [];
  let x = MARGIN.left;
  for (const w of weights) {
    const width = (w / total) * innerW;
    state.colX.push([x, width]);
    x += width;
  }
  const innerH = state.height - MARGIN.top - MARGIN.bottom;
  state.rowH = innerH / state.rows;
  for (const [key, list] of cells) {
    const [row, ctx] = key.split(":").map(Number);
    list.sort((a, b) => (a.kind === "logit" ? b.prob - a.prob : (a.influence ?? 1) - (b.influence ?? 1)));
    const [cx, cw] = state.colX[ctx];
    const step = cw / (list.length + 1);
    list.forEach((n, j) => {
      n.x = cx + step * (j + 1);
      n.y = MARGIN.top + innerH - (row + 0.5) * state.rowH;
    });
  }
}

// ---- drawing ------------------------------------------------------------------------------------------

function sizeCanvas(canvas, w, h) {
  canvas.width = Math.round(w * state.dpr);
  canvas.height = Math.round(h * state.dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
  return ctx;
}

function supernodeOf(id) {
  return state.supernodes.findIndex((g) => g.slice(1).includes(id));
}

function nodePath(ctx, n, r) {
  if (n.kind === "feature") { ctx.moveTo(n.x + r, n.y); ctx.arc(n.x, n.y, r, 0, Math.PI * 2); }
  else if (n.kind === "logit") { ctx.moveTo(n.x, n.y - r - 1); ctx.lineTo(n.x + r + 1, n.y + r); ctx.lineTo(n.x - r - 1, n.y + r); ctx.closePath(); }
  else ctx.rect(n.x - r, n.y - r, 2 * r, 2 * r);
}

function drawBase() {
  const canvas = $("graph-base");
  const ctx = sizeCanvas(canvas, state.width, state.height);
  sizeCanvas($("graph-overlay"), state.width, state.height);
  ctx.clearRect(0, 0, state.width, state.height);
  // rows and columns
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const innerH = state.height - MARGIN.top - MARGIN.bottom;
  for (let r = 0; r < state.rows; r++) {
    const y = MARGIN.top + innerH - (r + 1) * state.rowH;
    if (r % 2 === 0) { ctx.fillStyle = COLORS.grid; ctx.fillRect(MARGIN.left, y, state.width - MARGIN.left - MARGIN.right, state.rowH); }
    const label = r === 0 ? "Emb" : r === state.rows - 1 ? "Logit" : `L${r - 1}`;
    if (r === 0 || r === state.rows - 1 || (r - 1) % 2 === 0) { ctx.fillStyle = COLORS.text; ctx.fillText(label, MARGIN.left - 6, y + state.rowH / 2); }
  }
  ctx.strokeStyle = "#e4e7ec";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const tokens = state.graph.metadata.prompt_tokens;
  state.colX.forEach(([x, w], i) => {
    ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, state.height - MARGIN.bottom); ctx.stroke();
    ctx.fillStyle = COLORS.text;
    const tok = tokens[i].replace(/\n/g, "⏎");
    const maxChars = Math.max(2, Math.floor(w / 6));
    ctx.fillText(tok.length > maxChars ? `${tok.slice(0, maxChars - 1)}…` : tok, x + w / 2, state.height - MARGIN.bottom + 6);
    ctx.fillStyle = "#98a2b3";
    ctx.fillText(String(i), x + w / 2, state.height - MARGIN.bottom + 22);
  });
  // edges, batched into a few alpha buckets per sign (one path each)
  const buckets = [[], [], [], [], [], [], [], []];
  for (const l of state.visibleLinks) {
    const level = Math.min(3, Math.floor(Math.sqrt(l.a / state.maxAbs) * 4));
    buckets[(l.w >= 0 ? 0 : 4) + level].push(l);
  }
  ctx.lineWidth = 0.6;
  buckets.forEach((list, b) => {
    if (!list.length) return;
    ctx.strokeStyle = `rgba(${b < 4 ? COLORS.pos : COLORS.neg}, ${0.05 + 0.1 * (b % 4)})`;
    ctx.beginPath();
    for (const l of list) { ctx.moveTo(l.s.x, l.s.y); ctx.lineTo(l.t.x, l.t.y); }
    ctx.stroke();
  });
  // nodes, one path per kind
  for (const kind of ["error", "embedding", "feature", "logit"]) {
    ctx.fillStyle = COLORS[kind];
    ctx.beginPath();
    for (const n of state.visibleNodes) if (n.kind === kind) nodePath(ctx, n, 3.5);
    ctx.fill();
  }
  const pinned = new Set(state.pinned);
  ctx.lineWidth = 2;
  for (const n of state.visibleNodes) {
    const g = supernodeOf(n.id);
    if (!pinned.has(n.id) && g < 0) continue;
    ctx.strokeStyle = g >= 0 ? SUPERNODE_COLORS[g % SUPERNODE_COLORS.length] : COLORS.pin;
    ctx.beginPath(); nodePath(ctx, n, 5.5); ctx.stroke();
  }
  // logit labels above the top row
  ctx.fillStyle = "#b54708";
  ctx.textBaseline = "bottom";
  ctx.font = "10px system-ui, sans-serif";
  let k = 0;
  for (const n of state.visibleNodes) {
    if (n.kind === "logit") {
      const m = /Output "(.*)" \(p=([\d.]+)\)/s.exec(n.raw.clerp || "");
      if (m && n.prob >= 0.02) ctx.fillText(`${m[1].replace(/\n/g, "⏎")} ${(+m[2]).toFixed(2)}`, n.x, n.y - 6 - 10 * (k++ % 2));
    }
  }
  $("graph-counts").textContent = `${state.visibleNodes.length} / ${state.nodes.length} nodes · ${state.visibleLinks.length} / ${state.links.length} links`;
}

function drawOverlay() {
  const canvas = $("graph-overlay");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, state.width, state.height);
  const focusIds = [state.hoveredId, state.clickedId].filter(Boolean);
  const seen = new Set();
  for (const id of focusIds) {
    if (seen.has(id)) continue;
    seen.add(id);
    const n = state.byId.get(id);
    if (!n || !n.visible) continue;
    const links = [...n.inLinks, ...n.outLinks].filter((l) => l.s.visible && l.t.visible);
    for (const l of links) {
      ctx.strokeStyle = `rgba(${l.w >= 0 ? COLORS.pos : COLORS.neg}, 0.85)`;
      ctx.lineWidth = 0.6 + 3 * Math.sqrt(l.a / state.maxAbs);
      ctx.beginPath(); ctx.moveTo(l.s.x, l.s.y); ctx.lineTo(l.t.x, l.t.y); ctx.stroke();
    }
    for (const l of links) {
      const other = l.s === n ? l.t : l.s;
      ctx.fillStyle = COLORS[other.kind];
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1;
      ctx.beginPath(); nodePath(ctx, other, 4.5); ctx.fill(); ctx.stroke();
    }
    ctx.fillStyle = COLORS[n.kind];
    ctx.strokeStyle = id === state.clickedId ? "#111827" : "#f79009";
    ctx.lineWidth = 2.5;
    ctx.beginPath(); nodePath(ctx, n, 7); ctx.fill(); ctx.stroke();
  }
}

function redraw() {
  prune();
  layout();
  drawBase();
  drawOverlay();
  renderSubgraph();
}

// ---- interaction --------------------------------------------------------------------------------------

function nodeAt(x, y) {
  let best = null, bestD = 64; // within 8 px
  for (const n of state.visibleNodes) {
    const d = (n.x - x) ** 2 + (n.y - y) ** 2;
    if (d < bestD) { bestD = d; best = n; }
  }
  return best;
}

function onMove(ev) {
  const rect = $("graph-overlay").getBoundingClientRect();
  const n = nodeAt(ev.clientX - rect.left, ev.clientY - rect.top);
  const id = n ? n.id : null;
  const tip = $("graph-tip");
  if (n) {
    tip.hidden = false;
    tip.innerHTML = `<strong>${esc(labelOf(n))}</strong><br><span>${esc(n.kind)} · L${esc(n.layer)} · pos ${n.ctx}${n.activation !== null ? ` · act ${fmt(n.activation, 2)}` : ""}${n.influence !== null ? ` · infl ${fmt(n.influence, 2)}` : ""}</span>`;
    tip.style.left = `${Math.min(n.x + 12, state.width - 260)}px`;
    tip.style.top = `${n.y + 10}px`;
  } else tip.hidden = true;
  if (id === state.hoveredId) return;
  state.hoveredId = id;
  $("graph-overlay").style.cursor = n ? "pointer" : "default";
  drawOverlay();
}

function onClick(ev) {
  const rect = $("graph-overlay").getBoundingClientRect();
  const n = nodeAt(ev.clientX - rect.left, ev.clientY - rect.top);
  if (!n) return;
  if (ev.ctrlKey || ev.metaKey) { togglePin(n.id); return; }
  select(n.id);
}

function select(id) {
  state.clickedId = id;
  writeUrl();
  drawOverlay();
  renderPanel();
}

function togglePin(id) {
  const i = state.pinned.indexOf(id);
  if (i >= 0) {
    state.pinned.splice(i, 1);
    state.supernodes = state.supernodes.map((g) => g.filter((x, j) => j === 0 || x !== id)).filter((g) => g.length > 1);
    state.checked.delete(id);
  } else state.pinned.push(id);
  writeUrl();
  redraw();
  renderPanel();
}

// ---- side panel: the clicked node, its edges and its feature dashboard ------------------------------------

function linkList(title, links, other) {
  if (!links.length) return `<h3>${title}</h3><p class="empty small">none</p>`;
  const items = links.slice(0, 12).map((l) => {
    const n = other(l);
    return `<li><a href="#" data-node="${esc(n.id)}" class="node-link"><i class="dot ${n.kind}"></i>${esc(labelOf(n))}</a><span class="num ${l.w >= 0 ? "pos" : "neg"}">${l.w >= 0 ? "+" : ""}${fmt(l.w, 3)}</span></li>`;
  }).join("");
  return `<h3>${title} <span class="muted small">(${links.length})</span></h3><ul class="edge-list">${items}</ul>`;
}

function renderPanel() {
  const panel = $("node-panel");
  const n = state.byId.get(state.clickedId);
  if (!n) { panel.innerHTML = '<p class="empty">Click a node to see its connections and its feature dashboard.</p>'; return; }
  const pinned = state.pinned.includes(n.id);
  const tok = state.graph.metadata.prompt_tokens[n.ctx] ?? "";
  panel.innerHTML = `
    <div class="panel-head" data-node-id="${esc(n.id)}">
      <h2 id="panel-title"><i class="dot ${n.kind}"></i>${esc(labelOf(n))}</h2>
      <button class="btn small ${pinned ? "" : "primary"}" id="pin-btn">${pinned ? "Unpin" : "Pin"}</button>
    </div>
    <dl class="facts small">
      <dt>Node</dt><dd><code>${esc(n.id)}</code> (${esc(n.raw.feature_type)})</dd>
      <dt>Layer · position</dt><dd>${esc(n.layer)} · ${n.ctx} <span class="tokpill">${esc(tok)}</span></dd>
      ${n.activation !== null ? `<dt>Activation</dt><dd>${fmt(n.activation, 3)}</dd>` : ""}
      ${n.influence !== null ? `<dt>Influence</dt><dd>${fmt(n.influence, 3)}</dd>` : ""}
      ${n.kind === "logit" ? `<dt>Probability</dt><dd>${fmt(n.prob, 3)}</dd>` : ""}
    </dl>
    ${n.kind === "feature" ? `<label class="small clerp-edit">Label <input id="clerp-input" value="${esc(state.clerps.get(n.featureKey) || "")}" placeholder="${esc(n.label)}"></label>` : ""}
    <div class="edge-cols">
      ${linkList("Inputs", n.inLinks.filter((l) => l.s.visible), (l) => l.s)}
      ${linkList("Outputs", n.outLinks.filter((l) => l.t.visible), (l) => l.t)}
    </div>
    <div id="dashboard" class="dashboard"></div>`;
  $("pin-btn").onclick = () => togglePin(n.id);
  const clerp = $("clerp-input");
  if (clerp) clerp.onchange = () => {
    if (clerp.value.trim()) state.clerps.set(n.featureKey, clerp.value.trim()); else state.clerps.delete(n.featureKey);
    writeUrl(); redraw(); renderPanel();
  };
  panel.querySelectorAll(".node-link").forEach((a) => a.addEventListener("click", (ev) => { ev.preventDefault(); select(a.dataset.node); }));
  if (n.kind === "feature") loadDashboard(n);
}

const dashboardCache = new Map();

async function loadDashboard(n) {
  const box = $("dashboard");
  if (!meta.scan || n.featureIndex === null) { box.innerHTML = '<p class="empty small">No dashboard: this graph\'s features are not on this instance.</p>'; return; }
  const source = `${n.layer}-${meta.scan}`;
  const pageUrl = `/${meta.modelId}/${source}/${n.featureIndex}`;
  box.innerHTML = `<h3>Feature dashboard</h3><p class="muted small">Loading ${esc(source)} #${n.featureIndex}…</p>`;
  let data = dashboardCache.get(pageUrl);
  if (!data) {
    const resp = await fetch(`/api/feature/${encodeURIComponent(meta.modelId)}/${encodeURIComponent(source)}/${n.featureIndex}`);
    if (!resp.ok) {
      if (state.clickedId === n.id) box.innerHTML = `<h3>Feature dashboard</h3><p class="empty small">No dashboard for ${esc(source)} #${n.featureIndex} (${resp.status}).</p>`;
      return;
    }
    data = await resp.json();
    dashboardCache.set(pageUrl, data);
  }
  if (state.clickedId !== n.id) return;
  const expl = (data.explanations || []).map((e) => `<p class="explanation-text">“${esc(e.description)}”</p>`).join("") || '<p class="empty small">No explanation yet.</p>';
  const acts = (data.activations || []).slice(0, 5).map((a) => {
    const max = a.maxValue || Math.max(...a.values, 1e-9);
    const toks = a.tokens.map((t, i) => {
      const v = a.values[i] || 0;
      const alpha = Math.max(0, Math.min(1, v / max));
      return `<span class="tok" title="${fmt(v, 3)}" style="background: rgba(247, 144, 9, ${alpha.toFixed(2)})">${esc(t.replace(/\n/g, "⏎"))}</span>`;
    }).join("");
    return `<div class="act"><span class="num small">${fmt(max, 2)}</span><span class="toks">${toks}</span></div>`;
  }).join("") || '<p class="empty small">No activations stored.</p>';
  box.innerHTML = `<h3>Feature dashboard <a class="small" href="${pageUrl}" target="_blank" id="dashboard-link">${esc(source)} #${n.featureIndex} ↗</a></h3>
    ${expl}<div class="acts">${acts}</div>`;
}

// ---- subgraph: pinned nodes, supernodes, labels, share -------------------------------------------------

function renderSubgraph() {
  $("pinned-count").textContent = state.pinned.length ? `${state.pinned.length} pinned · ${state.supernodes.length} supernodes` : "";
  const list = $("pinned-list");
  if (!state.pinned.length) {
    list.innerHTML = '<p class="empty">No pinned nodes: Ctrl/⌘+click nodes or use Pin in the side panel.</p>';
  } else {
    const groups = state.supernodes.map((g, gi) => `<div class="supernode" data-supernode="${esc(g[0])}" style="border-color:${SUPERNODE_COLORS[gi % SUPERNODE_COLORS.length]}">
        <strong>${esc(g[0])}</strong> <button class="btn small ungroup" data-group="${gi}">Ungroup</button>
        <span class="small">${g.slice(1).map((id) => esc(labelOf(state.byId.get(id)))).join(" · ")}</span></div>`).join("");
    const rows = state.pinned.map((id) => {
      const n = state.byId.get(id);
      const g = supernodeOf(id);
      return `<li data-pinned="${esc(id)}"><label><input type="checkbox" class="pin-check" value="${esc(id)}" ${state.checked.has(id) ? "checked" : ""}> <i class="dot ${n.kind}"></i>
        <a href="#" class="node-link" data-node="${esc(id)}">${esc(labelOf(n))}</a></label>
        <span class="muted small">L${esc(n.layer)} · pos ${n.ctx}${g >= 0 ? ` · in “${esc(state.supernodes[g][0])}”` : ""}</span>
        <button class="btn small unpin" data-node="${esc(id)}" title="Unpin">×</button></li>`;
    }).join("");
    list.innerHTML = `${groups}<ul class="pinned">${rows}</ul>`;
    list.querySelectorAll(".pin-check").forEach((c) => c.addEventListener("change", () => { c.checked ? state.checked.add(c.value) : state.checked.delete(c.value); }));
    list.querySelectorAll(".unpin").forEach((b) => b.addEventListener("click", () => togglePin(b.dataset.node)));
    list.querySelectorAll(".node-link").forEach((a) => a.addEventListener("click", (ev) => { ev.preventDefault(); select(a.dataset.node); }));
    list.querySelectorAll(".ungroup").forEach((b) => b.addEventListener("click", () => {
      state.supernodes.splice(+b.dataset.group, 1); writeUrl(); redraw();
    }));
  }
  drawSubgraph();
  renderIntervene();
}

function drawSubgraph() {
  const canvas = $("subgraph-canvas");
  const w = $("pinned-list").clientWidth - 2, h = 260;
  canvas.hidden = !state.pinned.length;
  if (!state.pinned.length) return;
  const ctx = sizeCanvas(canvas, w, h);
  ctx.clearRect(0, 0, w, h);
  // one box per supernode, one per ungrouped pinned node
  const boxes = [];
  const boxOf = new Map();
  state.supernodes.forEach((g, gi) => {
    const members = g.slice(1).map((id) => state.byId.get(id));
    const box = { label: g[0], members, color: SUPERNODE_COLORS[gi % SUPERNODE_COLORS.length] };
    boxes.push(box);
    members.forEach((m) => boxOf.set(m.id, box));
  });
  for (const id of state.pinned) {
    if (boxOf.has(id)) continue;
    const n = state.byId.get(id);
    const box = { label: labelOf(n), members: [n], color: COLORS[n.kind] };
    boxes.push(box);
    boxOf.set(id, box);
  }
  for (const b of boxes) {
    b.row = b.members.reduce((a, m) => a + m.row, 0) / b.members.length;
    b.ctx = b.members.reduce((a, m) => a + m.ctx, 0) / b.members.length;
  }
  const rows = [...new Set(boxes.map((b) => Math.round(b.row)))].sort((a, b) => a - b);
  const rowIndex = new Map(rows.map((r, i) => [r, i]));
  const byRow = new Map();
  for (const b of boxes) {
    const r = rowIndex.get(Math.round(b.row));
    if (!byRow.has(r)) byRow.set(r, []);
    byRow.get(r).push(b);
  }
  const rowH = (h - 20) / Math.max(1, rows.length);
  for (const [r, list] of byRow) {
    list.sort((a, b) => a.ctx - b.ctx);
    list.forEach((b, j) => { b.x = (w / (list.length + 1)) * (j + 1); b.y = h - 10 - rowH * (r + 0.5); });
  }
  // edges between boxes: summed weights of the links between their members
  const agg = new Map();
  for (const b of boxes) for (const m of b.members) for (const l of m.outLinks) {
    const tb = boxOf.get(l.t.id);
    if (!tb || tb === b) continue;
    const key = boxes.indexOf(b) + ":" + boxes.indexOf(tb);
    agg.set(key, (agg.get(key) || 0) + l.w);
  }
  const maxW = Math.max(1e-9, ...[...agg.values()].map(Math.abs));
  for (const [key, wsum] of agg) {
    const [a, b] = key.split(":").map((k) => boxes[+k]);
    ctx.strokeStyle = `rgba(${wsum >= 0 ? COLORS.pos : COLORS.neg}, 0.7)`;
    ctx.lineWidth = 0.8 + 5 * Math.abs(wsum) / maxW;
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (const b of boxes) {
    const text = b.members.length > 1 ? `${b.label} (${b.members.length})` : b.label;
    const tw = Math.min(170, ctx.measureText(text).width + 14);
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = b.color;
    ctx.lineWidth = b.members.length > 1 ? 2.5 : 1.5;
    ctx.beginPath(); ctx.roundRect(b.x - tw / 2, b.y - 11, tw, 22, 6); ctx.fill(); ctx.stroke();
    ctx.fillStyle = "#101828";
    ctx.fillText(text.length > 28 ? `${text.slice(0, 27)}…` : text, b.x, b.y, tw - 8);
  }
}

function groupChecked() {
  const name = $("supernode-name").value.trim() || `group ${state.supernodes.length + 1}`;
  const ids = state.pinned.filter((id) => state.checked.has(id));
  if (ids.length < 1) { alert("Check the pinned nodes to group first."); return; }
  state.supernodes = state.supernodes.map((g) => g.filter((x, j) => j === 0 || !ids.includes(x))).filter((g) => g.length > 1);
  state.supernodes.push([name, ...ids]);
  state.checked.clear();
  $("supernode-name").value = "";
  writeUrl();
  redraw();
}

// ---- interventions ----------------------------------------------------------------------------------

function renderIntervene() {
  const box = $("intervene-rows");
  const feats = state.pinned.map((id) => state.byId.get(id)).filter((n) => n.kind === "feature");
  const previous = new Map([...box.querySelectorAll("[data-intervene]")].map((r) => [r.dataset.intervene, [r.querySelector("select").value, r.querySelector("input").value]]));
  if (!meta.canIntervene) { box.innerHTML = '<p class="empty">This graph was uploaded from elsewhere: its features cannot be steered here.</p>'; $("intervene-btn").disabled = true; return; }
  if (!feats.length) { box.innerHTML = '<p class="empty">Pin feature nodes to intervene on them.</p>'; $("intervene-btn").disabled = true; return; }
  box.innerHTML = `<table class="grid intervene-table"><tr><th>Feature</th><th>Activation</th><th>Mode</th><th>Amount</th></tr>${feats.map((n) => {
    const [mode, amount] = previous.get(n.id) || ["scale", "0"];
    return `<tr data-intervene="${esc(n.id)}"><td><i class="dot feature"></i>${esc(labelOf(n))} <span class="muted small">L${esc(n.layer)} · pos ${n.ctx}</span></td><td class="num">${fmt(n.activation, 2)}</td>
      <td><select><option value="scale" ${mode === "scale" ? "selected" : ""}>scale × k</option><option value="value" ${mode === "value" ? "selected" : ""}>set to value</option></select></td>
      <td><input type="number" step="any" value="${esc(amount)}" size="6"></td></tr>`;
  }).join("")}</table>`;
  $("intervene-btn").disabled = false;
}

function csrfToken() {
  try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch { return ""; }
}

function logitTable(title, rows, other) {
  const otherTop = other && other.length ? other[0].token : null;
  return `<div><h3>${title}</h3><table class="grid logits">${rows.map((r, i) => `<tr class="${i === 0 && otherTop !== null && r.token !== otherTop ? "changed" : ""}"><td><span class="tokpill">${esc(r.token)}</span></td>
    <td class="num">${fmt(r.prob, 3)}</td><td><span class="bar" style="width:${Math.round(r.prob * 100)}px"></span></td></tr>`).join("")}</table></div>`;
}

async function runIntervention() {
  const rows = [...document.querySelectorAll("[data-intervene]")];
  const interventions = rows.map((r) => ({ node_id: r.dataset.intervene, mode: r.querySelector("select").value, amount: parseFloat(r.querySelector("input").value) }));
  const out = $("intervene-result");
  if (interventions.some((i) => !Number.isFinite(i.amount))) { out.innerHTML = '<p class="error">Every amount must be a number.</p>'; return; }
  $("intervene-btn").disabled = true;
  out.innerHTML = '<p class="muted">Running on the inference worker…</p>';
  try {
    const resp = await fetch(meta.interveneUrl, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ modelId: meta.modelId, slug: meta.slug, interventions, topK: +$("intervene-topk").value || 10, maxNewTokens: +$("intervene-tokens").value || 12 }),
    });
    const data = await resp.json();
    if (!resp.ok) { out.innerHTML = `<p class="error" id="intervene-error">${esc(data.message || resp.statusText)}</p>`; return; }
    const changed = data.before.length && data.after.length && data.before[0].token !== data.after[0].token;
    out.innerHTML = `<p id="intervene-verdict" class="${changed ? "warn" : "muted"}" data-changed="${changed}">${changed ? `Top prediction changed: <span class="tokpill">${esc(data.before[0].token)}</span> → <span class="tokpill">${esc(data.after[0].token)}</span>` : "Top prediction unchanged."}</p>
      <div class="logit-cols">${logitTable("Before", data.before, data.after)}${logitTable("After", data.after, data.before)}</div>
      <div class="texts"><div><h3>Default continuation</h3><pre id="default-text">${esc(data.default_text)}</pre></div>
      <div><h3>Steered continuation</h3><pre id="steered-text">${esc(data.steered_text)}</pre></div></div>`;
  } catch (err) {
    out.innerHTML = `<p class="error">${esc(err)}</p>`;
  } finally { $("intervene-btn").disabled = false; }
}

// ---- start ------------------------------------------------------------------------------------------

function bindControls() {
  const nt = $("node-threshold"), et = $("edge-threshold");
  nt.value = state.nodeThreshold; et.value = state.edgeThreshold;
  $("node-threshold-out").textContent = fmt(state.nodeThreshold, 2);
  $("edge-threshold-out").textContent = fmt(state.edgeThreshold, 2);
  nt.addEventListener("input", () => { state.nodeThreshold = +nt.value; $("node-threshold-out").textContent = fmt(state.nodeThreshold, 2); redraw(); });
  et.addEventListener("input", () => { state.edgeThreshold = +et.value; $("edge-threshold-out").textContent = fmt(state.edgeThreshold, 2); redraw(); });
  nt.addEventListener("change", writeUrl);
  et.addEventListener("change", writeUrl);
  const overlay = $("graph-overlay");
  overlay.addEventListener("mousemove", onMove);
  overlay.addEventListener("mouseleave", () => { state.hoveredId = null; $("graph-tip").hidden = true; drawOverlay(); });
  overlay.addEventListener("click", onClick);
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, textarea, select")) return;
    if (ev.key === "p" && (state.hoveredId || state.clickedId)) togglePin(state.hoveredId || state.clickedId);
    if (ev.key === "Escape") select(null);
  });
  $("group-btn").onclick = groupChecked;
  $("clear-pins").onclick = () => { state.pinned = []; state.supernodes = []; state.checked.clear(); writeUrl(); redraw(); };
  $("share-btn").onclick = async () => {
    writeUrl();
    try { await navigator.clipboard.writeText(location.href); $("share-btn").textContent = "Link copied"; }
    catch { prompt("Share this link", location.href); }
    setTimeout(() => { $("share-btn").textContent = "Copy share link"; }, 1500);
  };
  $("intervene-btn").onclick = runIntervention;
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redraw, 100); });
}

async function start() {
  const t0 = performance.now();
  const resp = await fetch(meta.dataUrl);
  if (!resp.ok) { $("graph-loading").textContent = `Could not load the graph (${resp.status}).`; return; }
  state.graph = await resp.json();
  const tFetched = performance.now();
  prepare(state.graph);
  readUrl();
  bindControls();
  redraw();
  renderPanel();
  $("graph-loading").remove();
  loadLabels();
  $("graph-stage").dataset.ready = "1";
  const timings = { fetchMs: tFetched - t0, drawMs: performance.now() - tFetched, readyAt: performance.now() };
  window.npGraph.timings = timings;
  requestAnimationFrame(() => { timings.firstFrameAt = performance.now(); });
}

// explanations of the feature nodes (from our dashboards) become their labels where the graph has none
async function loadLabels() {
  const resp = await fetch(meta.dataUrl.replace(/\/data$/, "/labels"));
  if (!resp.ok) return;
  const labels = await resp.json();
  let changed = false;
  for (const [id, text] of Object.entries(labels)) {
    const n = state.byId.get(id);
    if (n && !n.raw.clerp && text) { n.label = text; changed = true; }
  }
  if (changed) { renderSubgraph(); renderPanel(); }
  $("graph-stage").dataset.labels = "1";
}

// a small handle for tests and the benchmark
window.npGraph = {
  state,
  nodePos: (id) => { const n = state.byId.get(id); return n && n.visible ? { x: n.x, y: n.y } : null; },
  select, togglePin,
};
start();
