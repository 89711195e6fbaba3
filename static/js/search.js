/* Search pages: pickers for semantic search; search-all and top-k-by-token through the JSON API. */
(function () {
  "use strict";
  const initial = window.NP_INITIAL || {};

  async function labels(model, keys) {
    if (!keys.length) return {};
    try {
      const r = await fetch("/ui/feature-labels?model=" + encodeURIComponent(model) + "&keys=" + encodeURIComponent(keys.join(",")));
      return r.ok ? await r.json() : {};
    } catch (e) { return {}; }
  }
  function featureLink(model, source, index, label) {
    const a = NP.el("a", {href: label && label.url ? label.url : "/" + model + "/" + source + "/" + index}, source + ":" + index);
    return a;
  }

  // --- semantic search: model/source pickers ------------------------------------------------------
  const esModel = document.getElementById("es-model");
  if (esModel) NP.bindModelPicker(esModel, document.getElementById("es-source"), "source", initial, {allowAll: true});

  // --- search by inference --------------------------------------------------------------------------
  const saForm = document.getElementById("search-all-form");
  let last = null;
  if (saForm) {
    NP.bindModelPicker(document.getElementById("sa-model"), document.getElementById("sa-set"), "set", initial);
    saForm.addEventListener("submit", (event) => { event.preventDefault(); runSearchAll([]); });
  }
  function parseSearchAll(data) {
    let tokens = data.tokens || [];
    if (tokens.length && Array.isArray(tokens[0])) tokens = tokens[0];
    const rows = (data.result || data.activations || data.results || []).map((r) => ({
      source: r.source || r.layer, index: Number(r.index), values: r.values || [],
      max: Number(r.maxValue !== undefined ? r.maxValue : Math.max(...(r.values || [0]))),
      maxIndex: r.maxValueIndex !== undefined ? r.maxValueIndex : r.maxValueTokenIndex,
    }));
    return {tokens, rows};
  }
  async function runSearchAll(sortIndexes) {
    const out = document.getElementById("search-all-out");
    const f = saForm.elements;
    out.textContent = "Running the source set over your text…";
    const model = f.model.value;
    const res = await NP.postJSON("/api/search-all", {
      modelId: model, sourceSet: f.sourceSet.value, text: f.text.value, selectedLayers: [],
      sortIndexes: sortIndexes, ignoreBos: f.ignoreBos.checked, densityThreshold: -1,
      numResults: Number(f.numResults.value || 30)});
    out.textContent = "";
    if (!res.ok) { out.appendChild(NP.el("p", {class: "notice no-worker", id: "search-error"}, NP.errorMessage(res))); return; }
    last = Object.assign(parseSearchAll(res.data), {model});
    const names = await labels(model, last.rows.map((r) => r.source + ":" + r.index));
    const tokensRow = NP.el("div", {class: "activation token-picker", id: "sa-tokens"});
    last.tokens.forEach((tok, i) => {
      const t = NP.el("button", {type: "button", class: "tok pick" + (sortIndexes.includes(i) ? " picked" : ""), "data-i": i}, tok.replace(/\n/g, "↵"));
      t.addEventListener("click", () => runSearchAll([i]));
      tokensRow.appendChild(t);
    });
    out.appendChild(NP.el("p", {class: "muted small"}, sortIndexes.length ? "Ranked by activation at token " + sortIndexes[0] + " (click another token, or search again for the whole text)" : "Ranked over the whole text. Click a token to rank by that position."));
    out.appendChild(tokensRow);
    const detail = NP.el("div", {class: "activation", id: "sa-detail"});
    const table = NP.el("table", {class: "grid", id: "sa-results"});
    table.appendChild(NP.el("thead")).appendChild(NP.el("tr")).append(
      NP.el("th", {}, "Feature"), NP.el("th", {}, "Explanation"), NP.el("th", {}, "Max"), NP.el("th", {}, ""));
    const body = table.appendChild(NP.el("tbody"));
    last.rows.forEach((r) => {
      const label = names[r.source + ":" + r.index];
      const tr = body.appendChild(NP.el("tr", {"data-key": r.source + ":" + r.index}));
      tr.appendChild(NP.el("td")).appendChild(featureLink(model, r.source, r.index, label));
      tr.appendChild(NP.el("td", {class: "muted"}, label ? label.explanation : ""));
      tr.appendChild(NP.el("td", {class: "num"}, r.max.toFixed(3)));
      const btn = tr.appendChild(NP.el("td")).appendChild(NP.el("button", {type: "button", class: "btn small show-tokens"}, "tokens"));
      btn.addEventListener("click", () => {
        detail.textContent = "";
        detail.appendChild(NP.el("strong", {}, r.source + ":" + r.index + "  "));
        const span = NP.el("span");
        NP.renderTokens(span, last.tokens, r.values, r.max);
        detail.appendChild(span);
      });
    });
    if (!last.rows.length) body.appendChild(NP.el("tr")).appendChild(NP.el("td", {colspan: 4, class: "empty"}, "No feature fired."));
    out.appendChild(detail);
    out.appendChild(table);
  }

  // --- top-k by token ---------------------------------------------------------------------------------
  const tkForm = document.getElementById("topk-form");
  if (tkForm) {
    NP.bindModelPicker(document.getElementById("tk-model"), document.getElementById("tk-source"), "source", initial);
    tkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = tkForm.elements;
      const out = document.getElementById("topk-out");
      out.textContent = "Running…";
      const model = f.model.value;
      const source = f.source.value;
      const res = await NP.postJSON("/api/search-topk-by-token", {
        modelId: model, source: source, text: f.text.value, numResults: Number(f.numResults.value || 5),
        ignoreBos: f.ignoreBos.checked, densityThreshold: -1});
      out.textContent = "";
      if (!res.ok) { out.appendChild(NP.el("p", {class: "notice no-worker", id: "search-error"}, NP.errorMessage(res))); return; }
      const results = res.data.results || [];
      const keys = [];
      results.forEach((r) => (r.topFeatures || []).forEach((t) => keys.push(source + ":" + (t.featureIndex !== undefined ? t.featureIndex : t.index))));
      const names = await labels(model, [...new Set(keys)].slice(0, 200));
      const grid = NP.el("div", {class: "topk-grid", id: "topk-grid"});
      results.forEach((r) => {
        const col = grid.appendChild(NP.el("div", {class: "topk-col"}));
        col.appendChild(NP.el("div", {class: "topk-token"}, JSON.stringify(r.token)));
        (r.topFeatures || []).forEach((t) => {
          const idx = t.featureIndex !== undefined ? t.featureIndex : t.index;
          const label = names[source + ":" + idx];
          const item = col.appendChild(NP.el("div", {class: "topk-item"}));
          item.appendChild(featureLink(model, source, idx, label));
          item.appendChild(NP.el("span", {class: "num"}, " " + Number(t.activationValue !== undefined ? t.activationValue : t.value).toFixed(2)));
          if (label && label.explanation) item.appendChild(NP.el("div", {class: "muted small"}, label.explanation));
        });
      });
      out.appendChild(grid);
    });
  }
})();
