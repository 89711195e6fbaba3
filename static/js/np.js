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

  /** A readable message for a failed API call, including the "no worker" and "not deployed" cases. */
  NP.errorMessage = function (res) {
    const d = res.data || {};
    const msg = d.error || d.message || d.detail || (typeof d === "string" ? d : "");
    if (res.status === 404 && !msg) return "This API endpoint is not available on this server yet.";
    if (res.status === 503) return "No inference worker is serving this model right now" + (msg ? ": " + msg : ".");
    if (res.status === 429) return "Rate limited: " + (msg || "try again later.");
    return (msg || "request failed") + (res.status ? " (HTTP " + res.status + ")" : "");
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

  /** Coloured token spans (the same markup as the server's tokens filter). */
  NP.renderTokens = function (container, tokens, values, scale) {
    const top = scale && scale > 0 ? scale : Math.max(1e-9, ...values.filter((v) => v > 0), 0) || 1;
    container.textContent = "";
    tokens.forEach((tok, i) => {
      const v = Number(values[i] || 0);
      const span = NP.el("span", {class: "tok" + (v > 0 ? " hot" : ""), "data-i": i, "data-v": v.toFixed(3),
                                  title: v.toFixed(3)}, String(tok).replace(/\n/g, "↵"));
      const a = Math.max(0, Math.min(1, v / top));
      if (a > 0) span.style.setProperty("--a", a.toFixed(3));
      container.appendChild(span);
    });
  };

  // Token tooltip: the token and its activation, wherever a .tok is hovered.
  function tip() { return document.getElementById("tok-tip"); }
  document.addEventListener("mouseover", (event) => {
    const tok = event.target.closest && event.target.closest(".tok");
    const box = tip();
    if (!tok || !box) return;
    box.textContent = "";
    box.appendChild(NP.el("code", {}, JSON.stringify(tok.textContent)));
    box.appendChild(NP.el("strong", {}, " " + (tok.dataset.v || tok.title || "0.000")));
    const r = tok.getBoundingClientRect();
    box.style.left = (window.scrollX + r.left) + "px";
    box.style.top = (window.scrollY + r.bottom + 4) + "px";
    box.hidden = false;
  });
  document.addEventListener("mouseout", (event) => {
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
  NP.bindModelPicker = function (modelSelect, childSelect, childKind, initial, opts) {
    const catalog = NP.catalog();
    const options = opts || {};
    if (options.allowAll) modelSelect.innerHTML = '<option value="">all models</option>';
    catalog.forEach((m) => modelSelect.appendChild(NP.el("option", {value: m.id}, m.name)));
    if (initial.model) modelSelect.value = initial.model;
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
      if (want) childSelect.value = want;
    }
    modelSelect.addEventListener("change", fill);
    fill();
    return catalog;
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
