/* Search pages: pickers for semantic search; search-all and top-k-by-token through the JSON API, with
   explanations, a top-activation snippet and the density of every feature they list. */
(function () {
  "use strict";
  const initial = window.NP_INITIAL || {};

  async function labels(model, keys) {
    if (!keys.length) return {};
    try {
      const r = await fetch("/ui/feature-labels?snippets=1&model=" + encodeURIComponent(model) + "&keys=" + encodeURIComponent(keys.join(",")));
      return r.ok ? await r.json() : {};
    } catch (e) { return {}; }
  }
  function featureLink(model, source, index, label) {
    return NP.el("a", {href: label && label.url ? label.url : "/" + model + "/" + source + "/" + index}, source + ":" + index);
  }
  /** Explanation (or "no explanation yet"), density and a small snippet of the feature's top example. */
  function describe(label) {
    const box = NP.el("div", {class: "feature-info"});
    box.appendChild(NP.el("div", {class: label && label.explanation ? "expl" : "expl muted"},
      label && label.explanation ? label.explanation : "no explanation yet"));
    if (label && label.density !== null && label.density !== undefined) {
      box.appendChild(NP.el("span", {class: "muted small density"}, "density " + Number((100 * label.density).toPrecision(3)) + "%"));
    }
    if (label && label.snippet && label.snippet.tokens.length) {
      const snip = NP.el("div", {class: "snippet-toks activation", title: "top activation"});
      NP.renderTokens(snip, label.snippet.tokens, label.snippet.values, null);
      box.appendChild(snip);
    }
    return box;
  }
  function densityThreshold(form) {
    const pct = Number(form.elements.densityPct ? form.elements.densityPct.value : "");
    return pct > 0 && pct < 100 ? pct / 100 : -1;
  }
  function bindModel(modelId, childId, kind, bosId, noticeId) {
    const model = document.getElementById(modelId);
    NP.bindModelPicker(model, document.getElementById(childId), kind, initial);
    NP.bindBos(model, document.getElementById(bosId), document.getElementById(bosId + "-note"));
    NP.bindLiveNotice(model, document.getElementById(noticeId));
  }

  // --- semantic search: model/source pickers ------------------------------------------------------
  const esModel = document.getElementById("es-model");
  if (esModel) NP.bindModelPicker(esModel, document.getElementById("es-source"), "source", initial, {allowAll: true});

  // --- search by inference --------------------------------------------------------------------------
  const saForm = document.getElementById("search-all-form");
  let last = null;
  if (saForm) {
    bindModel("sa-model", "sa-set", "set", "sa-bos", "sa-no-worker");
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
    NP.loading(out, "Running every feature of the source set over your text…");
    out.setAttribute("aria-busy", "true");
    const model = f.model.value;
    const res = await NP.postJSON("/api/search-all", {
      modelId: model, sourceSet: f.sourceSet.value, text: f.text.value, selectedLayers: [],
      sortIndexes: sortIndexes, ignoreBos: f.ignoreBos.checked, densityThreshold: densityThreshold(saForm),
      numResults: Number(f.numResults.value || 30)});
    if (!res.ok) {
      out.textContent = "";
      out.removeAttribute("aria-busy");
      out.appendChild(NP.el("p", {class: "notice no-worker", id: "search-error"}, NP.errorMessage(res)));
      return;
    }
    last = Object.assign(parseSearchAll(res.data), {model});
    const names = await labels(model, last.rows.map((r) => r.source + ":" + r.index));
    out.textContent = "";
    out.removeAttribute("aria-busy");
    const tokensRow = NP.el("div", {class: "activation token-picker", id: "sa-tokens"});
    last.tokens.forEach((tok, i) => {
      const blank = /^[ \t]+$/.test(String(tok));
      const t = NP.el("button", {type: "button", class: "tok pick" + (blank ? " ws" : "") + (sortIndexes.includes(i) ? " picked" : ""),
                                 "data-i": i, "aria-pressed": sortIndexes.includes(i) ? "true" : "false"}, NP.visibleToken(tok));
      t.addEventListener("click", () => runSearchAll([i]));
      tokensRow.appendChild(t);
    });
    out.appendChild(NP.el("p", {class: "muted small"}, sortIndexes.length ? "Ranked by activation at token " + sortIndexes[0] + " (click another token, or search again for the whole text)" : "Ranked over the whole text. Click a token to rank by that position."));
    out.appendChild(tokensRow);
    const detail = NP.el("div", {class: "activation", id: "sa-detail"});
    const table = NP.el("table", {class: "grid", id: "sa-results"});
    table.appendChild(NP.el("thead")).appendChild(NP.el("tr")).append(
      NP.el("th", {}, "Feature"), NP.el("th", {}, "Explanation · top activation"), NP.el("th", {class: "num"}, "Max"), NP.el("th", {}, ""));
    const body = table.appendChild(NP.el("tbody"));
    last.rows.forEach((r) => {
      const label = names[r.source + ":" + r.index];
      const tr = body.appendChild(NP.el("tr", {"data-key": r.source + ":" + r.index}));
      tr.appendChild(NP.el("td")).appendChild(featureLink(model, r.source, r.index, label));
      tr.appendChild(NP.el("td")).appendChild(describe(label));
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
    if (!last.rows.length) body.appendChild(NP.el("tr")).appendChild(NP.el("td", {colspan: 4, class: "empty"}, "No feature fired (or every one that did is above the density limit)."));
    out.appendChild(detail);
    out.appendChild(table);
  }

  // --- top-k by token ---------------------------------------------------------------------------------
  const tkForm = document.getElementById("topk-form");
  if (tkForm) {
    bindModel("tk-model", "tk-source", "source", "tk-bos", "tk-no-worker");
    tkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = tkForm.elements;
      const out = document.getElementById("topk-out");
      NP.loading(out, "Running the source over your text…");
      out.setAttribute("aria-busy", "true");
      const model = f.model.value;
      const source = f.source.value;
      const res = await NP.postJSON("/api/search-topk-by-token", {
        modelId: model, source: source, text: f.text.value, numResults: Number(f.numResults.value || 5),
        ignoreBos: f.ignoreBos.checked, densityThreshold: densityThreshold(tkForm)});
      if (!res.ok) {
        out.textContent = "";
        out.removeAttribute("aria-busy");
        out.appendChild(NP.el("p", {class: "notice no-worker", id: "search-error"}, NP.errorMessage(res)));
        return;
      }
      const results = res.data.results || [];
      const keys = [];
      results.forEach((r) => (r.topFeatures || []).forEach((t) => keys.push(source + ":" + (t.featureIndex !== undefined ? t.featureIndex : t.index))));
      const names = await labels(model, [...new Set(keys)].slice(0, 200));
      out.textContent = "";
      out.removeAttribute("aria-busy");
      const grid = NP.el("div", {class: "topk-grid", id: "topk-grid"});
      results.forEach((r) => {
        const col = grid.appendChild(NP.el("div", {class: "topk-col"}));
        const blank = /^[ \t]+$/.test(String(r.token));
        col.appendChild(NP.el("div", {class: "topk-token" + (blank ? " ws" : ""), title: JSON.stringify(r.token)}, NP.visibleToken(r.token)));
        (r.topFeatures || []).forEach((t) => {
          const idx = t.featureIndex !== undefined ? t.featureIndex : t.index;
          const label = names[source + ":" + idx];
          const item = col.appendChild(NP.el("div", {class: "topk-item"}));
          item.appendChild(featureLink(model, source, idx, label));
          item.appendChild(NP.el("span", {class: "num"}, " " + Number(t.activationValue !== undefined ? t.activationValue : t.value).toFixed(2)));
          item.appendChild(describe(label));
        });
        if (!(r.topFeatures || []).length) col.appendChild(NP.el("div", {class: "empty small"}, "none"));
      });
      out.appendChild(grid);
    });
  }
})();
