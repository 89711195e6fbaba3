/* Shared helpers: CSRF-aware JSON calls to /api, token tooltips, copy buttons, score dialogs. */
(function () {
  "use strict";
  const NP = (window.NP = window.NP || {});

  NP.csrf = function () {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  };

  /** POST JSON with the session cookie and CSRF header; resolves {ok, status, data}. */
  NP.postJSON = async function (url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": NP.csrf(), "Accept": "application/json"},
        body: JSON.stringify(body),
      });
    } catch (err) {
      return {ok: false, status: 0, data: {error: "network error: " + err}};
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
    return {ok: response.ok, status: response.status, data: data};
  };

  /** A readable message for a failed API call, written for the person using the page (not an operator). */
  NP.errorMessage = function (res) {
    const d = res.data || {};
    const msg = d.error || d.message || d.detail || (typeof d === "string" ? d : "");
    if (res.status === 404 && !msg) return "This feature is not available on this server yet.";
    if (res.status === 503) return "Live inference is offline for this model right now, so new text cannot be run. " +
      "Pick a model marked “live”, or browse this model's precomputed features.";
    if (res.status === 429) return "Too many requests: " + (msg || "try again in a minute.");
    return (msg || "request failed") + (res.status ? " (HTTP " + res.status + ")" : "");
  };

  /** A loading line with a spinner (role=status, so screen readers announce it). */
  NP.loading = function (container, text) {
    container.textContent = "";
    const p = NP.el("span", {class: "loading", role: "status"});
    p.appendChild(NP.el("span", {class: "spinner", "aria-hidden": "true"}));
    p.appendChild(document.createTextNode(" " + text));
    container.appendChild(p);
    return p;
  };

  /** A token as shown: line breaks as ↵, a blank (spaces/tabs only) token as · and →. */
  NP.visibleToken = function (tok) {
    const t = String(tok);
    if (t.length && /^[ \t]+$/.test(t)) return t.replace(/ /g, "·").replace(/\t/g, "→");
    return t.replace(/\n/g, "↵");
  };

  NP.el = function (tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v;
      else node.setAttribute(k, v);
    });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };

  /** Coloured token spans (the same markup as the server's tokens filter): scaled to `scale`, else to
      this example's own max; active tokens are focusable and underlined, the strongest one bold. */
  NP.renderTokens = function (container, tokens, values, scale) {
    const positive = values.map(Number).filter((v) => v > 0);
    const peak = positive.length ? Math.max(...positive) : 0;
    const top = scale && scale > 0 ? scale : peak || 1;
    container.textContent = "";
    tokens.forEach((tok, i) => {
      const v = Number(values[i] || 0);
      const blank = /^[ \t]+$/.test(String(tok));
      const cls = "tok" + (v > 0 ? " hot" : "") + (v > 0 && v === peak ? " max" : "") + (blank ? " ws" : "");
      const attrs = {class: cls, "data-i": i, "data-v": v.toFixed(3), title: v.toFixed(3)};
      if (v > 0) attrs.tabindex = "0";
      const span = NP.el("span", attrs, NP.visibleToken(tok));
      const a = Math.max(0, Math.min(1, v / top));
      if (a > 0) span.style.setProperty("--a", a.toFixed(3));
      container.appendChild(span);
    });
  };

  // Token tooltip: the token and its activation, wherever a .tok is hovered or focused (keyboard).
  function tip() { return document.getElementById("tok-tip"); }
  function showTip(tok) {
    const box = tip();
    if (!tok || !box) return;
    box.textContent = "";
    box.appendChild(NP.el("code", {}, JSON.stringify(tok.textContent)));
    box.appendChild(NP.el("strong", {}, " " + (tok.dataset.v || tok.title || "0.000")));
    const r = tok.getBoundingClientRect();
    box.style.left = (window.scrollX + r.left) + "px";
    box.style.top = (window.scrollY + r.bottom + 4) + "px";
    box.hidden = false;
  }
  document.addEventListener("mouseover", (event) => showTip(event.target.closest && event.target.closest(".tok")));
  document.addEventListener("focusin", (event) => showTip(event.target.closest && event.target.closest(".tok")));
  document.addEventListener("mouseout", (event) => {
    if (event.target.closest && event.target.closest(".tok") && tip()) tip().hidden = true;
  });
  document.addEventListener("focusout", (event) => {
    if (event.target.closest && event.target.closest(".tok") && tip()) tip().hidden = true;
  });

  document.addEventListener("click", (event) => {
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const src = document.querySelector(copy.dataset.copy);
      const text = src ? (src.value !== undefined ? src.value : src.textContent) : "";
      if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
      copy.textContent = "Copied";
    }
    const opener = event.target.closest("[data-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.dialog);
      if (dialog && dialog.showModal) dialog.showModal();
    }
  });

  /** Fill a model <select> and a dependent <select> (sources or source sets) from the catalog JSON. */
  NP.catalog = function () {
    const node = document.getElementById("np-catalog");
    if (!node) return [];
    try { return JSON.parse(JSON.parse(node.textContent)); } catch (e) { return []; }
  };
  /** Fill a model <select> (models without a live inference worker are marked, and the default is a
      live one) and a dependent <select> (sources or source sets). */
  NP.bindModelPicker = function (modelSelect, childSelect, childKind, initial, opts) {
    const catalog = NP.catalog();
    const options = opts || {};
    if (options.allowAll) modelSelect.innerHTML = '<option value="">all models</option>';
    catalog.forEach((m) => modelSelect.appendChild(NP.el("option", {value: m.id, "data-live": m.live ? "1" : "0"},
      m.name + (m.live || options.allowAll ? "" : " — offline (no live inference)"))));
    const firstLive = catalog.find((m) => m.live);
    if (initial.model && catalog.some((m) => m.id === initial.model)) modelSelect.value = initial.model;
    else if (!options.allowAll && firstLive) modelSelect.value = firstLive.id;
    function fill() {
      if (!childSelect) return;
      const model = catalog.find((m) => m.id === modelSelect.value);
      childSelect.textContent = "";
      if (options.allowAll) childSelect.appendChild(NP.el("option", {value: ""}, "all"));
      (model ? model.sets : []).forEach((set) => {
        if (childKind === "set") childSelect.appendChild(NP.el("option", {value: set.name}, set.name));
        else set.sources.forEach((s) => childSelect.appendChild(NP.el("option", {value: s}, s)));
      });
      const want = childKind === "set" ? initial.sourceSet : initial.source;
      if (want && [...childSelect.options].some((o) => o.value === want)) childSelect.value = want;
    }
    modelSelect.addEventListener("change", fill);
    fill();
    return catalog;
  };

  /** "ignore BOS" only where the model's prompts start with a BOS token (SmolLM2's do not). */
  NP.bindBos = function (modelSelect, checkbox, note) {
    const catalog = NP.catalog();
    function sync() {
      const model = catalog.find((m) => m.id === modelSelect.value);
      const noBos = model && model.bos === false;
      checkbox.disabled = !!noBos;
      if (noBos) checkbox.checked = false;
      if (note) note.textContent = noBos ? "(this model adds no BOS token: every token counts)" : "";
    }
    modelSelect.addEventListener("change", sync);
    sync();
  };

  /** Live-worker notice next to a model picker. */
  NP.bindLiveNotice = function (modelSelect, notice) {
    const catalog = NP.catalog();
    function sync() {
      const model = catalog.find((m) => m.id === modelSelect.value);
      notice.hidden = !model || !!model.live;
    }
    modelSelect.addEventListener("change", sync);
    sync();
  };
})();

/* Home jump box: only the chosen model's sources. */
document.addEventListener("DOMContentLoaded", () => {
  const model = document.getElementById("jump-model");
  const source = document.getElementById("jump-source");
  if (!model || !source) return;
  function filter() {
    let first = null;
    [...source.options].forEach((o) => {
      o.hidden = o.dataset.model !== model.value;
      if (!o.hidden && !first) first = o;
    });
    if (source.selectedOptions[0] && source.selectedOptions[0].hidden && first) source.value = first.value;
  }
  model.addEventListener("change", filter);
  filter();
});

/* A list's "Add a feature" form: model and source pickers (re-bound after the htmx swap of the items). */
function npBindListPickers() {
  const model = document.querySelector("select.list-add-model");
  if (!model || model.dataset.bound) return;
  model.dataset.bound = "1";
  const source = document.querySelector("select.list-add-source");
  NP.bindModelPicker(model, source, "source", {model: model.dataset.initial, source: source.dataset.initial});
}
document.addEventListener("DOMContentLoaded", npBindListPickers);
document.addEventListener("htmx:afterSettle", npBindListPickers);
