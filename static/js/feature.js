/* Feature dashboard: context-window presets, line breaks, "test custom text" (via /api/activation/new). */
(function () {
  "use strict";

  function applyPreset(root, radius) {
    root.querySelectorAll(".activation").forEach((row) => {
      const center = Number(row.dataset.maxIndex || 0);
      row.querySelectorAll(".tok").forEach((tok, i) => {
        tok.classList.toggle("out", Math.abs(i - center) > radius);
      });
    });
  }

  function init() {
    const groups = document.querySelector(".act-groups");
    if (groups) {
      const active = document.querySelector(".preset.active");
      if (active) applyPreset(groups, Number(active.dataset.radius));
      document.querySelectorAll(".preset").forEach((button) => button.addEventListener("click", () => {
        document.querySelectorAll(".preset").forEach((b) => b.classList.toggle("active", b === button));
        groups.dataset.preset = button.dataset.preset;
        applyPreset(groups, Number(button.dataset.radius));
      }));
      const breaks = document.getElementById("show-breaks");
      if (breaks) breaks.addEventListener("change", () => groups.classList.toggle("no-breaks", !breaks.checked));
    }
  }

  function extract(data) {
    // Neuronpedia's /api/activation/new shape, or the worker's {tokens, activation: {...}}.
    const act = data.activation || data;
    return {tokens: data.tokens || act.tokens || [], values: act.values || [],
            max: act.maxValue, maxIndex: act.maxValueTokenIndex !== undefined ? act.maxValueTokenIndex : act.maxValueIndex};
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("#test-text-form");
    if (!form) return;
    event.preventDefault();
    const out = document.getElementById("test-text-out");
    const text = form.elements.text.value;
    if (!text.trim()) return;
    NP.loading(out, "Running the model over your text…");
    const res = await NP.postJSON("/api/activation/new", {
      feature: {modelId: form.dataset.model, source: form.dataset.source, index: String(form.dataset.index)},
      customText: text,
    });
    out.textContent = "";
    if (!res.ok) { out.appendChild(NP.el("p", {class: "notice no-worker"}, NP.errorMessage(res))); return; }
    const r = extract(res.data);
    const row = NP.el("div", {class: "activation tested"});
    NP.renderTokens(row, r.tokens, r.values, null);  // scaled to this text's own max, like every example
    out.appendChild(NP.el("p", {class: "muted small", id: "test-max"},
      "max " + (r.max !== undefined ? Number(r.max).toFixed(3) : "?") + (r.maxIndex !== undefined && r.tokens[r.maxIndex] !== undefined ? " at " + JSON.stringify(r.tokens[r.maxIndex]) : "")));
    out.appendChild(row);
  });

  /** Similar features: a few tokens of each neighbour's top activation, fetched after the page loads. */
  async function similarSnippets() {
    const list = document.getElementById("similar-list");
    if (!list) return;
    const slots = [...list.querySelectorAll("[data-snippet]")];
    if (!slots.length) return;
    let labels = {};
    try {
      const r = await fetch("/ui/feature-labels?snippets=1&model=" + encodeURIComponent(list.dataset.model) +
                            "&keys=" + encodeURIComponent(slots.map((s) => s.dataset.snippet).join(",")));
      labels = r.ok ? await r.json() : {};
    } catch (e) { return; }
    slots.forEach((slot) => {
      const label = labels[slot.dataset.snippet];
      if (label && label.snippet && label.snippet.tokens.length) {
        NP.renderTokens(slot, label.snippet.tokens, label.snippet.values, null);
        slot.title = "top activation";
      }
    });
    list.dataset.snippets = "loaded";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", similarSnippets); else similarSnippets();
})();
