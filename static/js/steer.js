/* Steering page: pick features (by id or explanation search), POST /api/steer (or /api/steer-chat) with
   stream: true and render the DEFAULT and STEERED texts side by side as SSE frames arrive. */
(function () {
  "use strict";
  const form = document.getElementById("steer-form");
  if (!form) return;
  const initial = window.NP_INITIAL || {};
  const modelSelect = document.getElementById("steer-model");
  NP.bindModelPicker(modelSelect, document.getElementById("add-source"), "source", initial);
  NP.bindLiveNotice(modelSelect, document.getElementById("steer-no-worker"));
  const tbody = document.querySelector("#steer-features tbody");
  const status = document.getElementById("steer-status");

  function refreshEmpty() { document.getElementById("no-features").hidden = tbody.children.length > 0; }
  function addRow(source, index, strength, explanation) {
    const existing = tbody.querySelector('tr[data-source="' + CSS.escape(source) + '"][data-index="' + index + '"]');
    if (existing) { existing.querySelector(".strength").value = strength; return; }
    const tr = NP.el("tr", {"data-source": source, "data-index": index});
    tr.appendChild(NP.el("td")).appendChild(NP.el("code", {}, source + ":" + index));
    tr.appendChild(NP.el("td", {class: "muted"}, (explanation || "").slice(0, 60)));
    tr.appendChild(NP.el("td")).appendChild(NP.el("input", {type: "number", step: "any", class: "strength", value: strength, "aria-label": "strength"}));
    tr.appendChild(NP.el("td")).appendChild(NP.el("button", {type: "button", class: "btn small remove-feature"}, "×"));
    tbody.appendChild(tr);
    refreshEmpty();
  }
  document.addEventListener("click", (event) => {
    const remove = event.target.closest(".remove-feature");
    if (remove) { remove.closest("tr").remove(); refreshEmpty(); }
    const add = event.target.closest(".add-steer-feature");
    if (add) {
      const hit = add.closest(".hit");
      if (hit.dataset.model !== modelSelect.value) {
        modelSelect.value = hit.dataset.model;
        modelSelect.dispatchEvent(new Event("change"));
      }
      addRow(hit.dataset.source, Number(hit.dataset.index), Number(hit.dataset.maxAct) || 40, hit.dataset.explanation);
      add.textContent = "Added";
    }
  });
  document.getElementById("add-feature-btn").addEventListener("click", async () => {
    const source = document.getElementById("add-source").value.trim();
    const index = document.getElementById("add-index").value;
    if (!source || index === "") return;
    let strength = document.getElementById("add-strength").value;
    let explanation = "";
    try {
      const r = await fetch("/ui/feature-labels?model=" + encodeURIComponent(modelSelect.value) + "&keys=" + encodeURIComponent(source + ":" + index));
      const info = (await r.json())[source + ":" + index];
      if (info) { explanation = info.explanation; if (strength === "") strength = info.maxAct || 40; }
    } catch (e) { /* labels are optional */ }
    addRow(source, Number(index), Number(strength === "" ? 40 : strength), explanation);
  });
  document.getElementById("feature-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.preventDefault();  // search, do not submit the steering form
  });
  const mode = document.getElementById("steer-mode");
  function modeLabel() { document.getElementById("prompt-label").textContent = mode.value === "chat" ? "Your message" : "Prompt"; }
  mode.addEventListener("change", modeLabel);
  modeLabel();

  function textOf(o) {
    if (o === null || o === undefined) return undefined;
    if (typeof o === "string") return o;
    const chat = o.chatTemplate || o.outputChatMessages || o.chat;
    if (Array.isArray(chat) && chat.length) return chat[chat.length - 1].content;
    if (o.raw !== undefined) return o.raw;
    if (o.outputText !== undefined) return o.outputText;
    if (o.output !== undefined) return o.output;
    if (o.text !== undefined) return o.text;
    return undefined;
  }
  /** Texts per type and the share id from one frame, whatever its exact shape. */
  function readFrame(frame) {
    const texts = {};
    const outputs = frame.outputs || (frame.result && frame.result.outputs);
    if (Array.isArray(outputs)) outputs.forEach((o) => { texts[o.type] = textOf(o); });
    ["DEFAULT", "STEERED"].forEach((t) => {
      if (frame[t] !== undefined) texts[t] = textOf(frame[t]);
      if (frame[t.toLowerCase()] !== undefined) texts[t] = textOf(frame[t.toLowerCase()]);
    });
    if (frame.type && (frame.text !== undefined || frame.output !== undefined)) texts[frame.type] = textOf(frame);
    Object.keys(texts).forEach((k) => { if (texts[k] === undefined || texts[k] === null) delete texts[k]; });
    const id = frame.shareId || frame.share_id || frame.id || (frame.STEERED && frame.STEERED.id) || null;
    const failed = frame.error || (frame.done && frame.status && frame.message) || null;
    return {texts, id, url: frame.shareUrl || frame.share_url || null, error: failed};
  }
  function show(frame) {
    const r = readFrame(frame);
    Object.entries(r.texts).forEach(([type, text]) => {
      const node = document.getElementById("out-" + type);
      if (node && text !== undefined) node.textContent = text;
    });
    if (r.error) status.textContent = r.error;
    if (r.id || r.url) {
      const link = document.getElementById("share-link");
      const href = r.id ? "/steer/" + r.id : r.url;
      link.href = href;
      link.textContent = new URL(href, window.location.href).href;
      document.getElementById("share").hidden = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const features = [...tbody.querySelectorAll("tr")].map((tr) => ({
      modelId: modelSelect.value, layer: tr.dataset.source, index: Number(tr.dataset.index),
      strength: Number(tr.querySelector(".strength").value)}));
    if (!features.length) { status.textContent = "Add at least one feature to steer with."; return; }
    const common = {modelId: modelSelect.value, features, temperature: Number(f.temperature.value),
      n_tokens: Number(f.n_tokens.value), seed: Number(f.seed.value), freq_penalty: Number(f.freq_penalty.value),
      strength_multiplier: Number(f.strength_multiplier.value), steer_method: f.steer_method.value, stream: true};
    let url = form.dataset.api;
    let body;
    if (mode.value === "chat") {
      const messages = [{role: "user", content: f.prompt.value}];
      url = form.dataset.apiChat;
      body = Object.assign({defaultChatMessages: messages, steeredChatMessages: messages, steer_special_tokens: true}, common);
    } else {
      body = Object.assign({prompt: f.prompt.value}, common);
    }
    document.getElementById("out-DEFAULT").textContent = "";
    document.getElementById("out-STEERED").textContent = "";
    document.getElementById("share").hidden = true;
    NP.loading(status, "Generating…");
    document.getElementById("steer-run").disabled = true;
    try {
      await stream(url, body);
    } finally {
      document.getElementById("steer-run").disabled = false;
    }
  });

  async function stream(url, body) {
    let response;
    try {
      response = await fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": NP.csrf(), "Accept": "application/json, text/event-stream"},
        body: JSON.stringify(body)});
    } catch (err) { status.textContent = "Network error: " + err; return; }
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.includes("event-stream")) {
      let data = null;
      try { data = await response.json(); } catch (e) { data = {}; }
      if (!response.ok) { status.textContent = NP.errorMessage({ok: false, status: response.status, data}); return; }
      show(data);
      status.textContent = "Done.";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let frames = 0;
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data || data === "[DONE]") continue;
        try { show(JSON.parse(data)); frames += 1; status.textContent = "Streaming… (" + frames + ")"; }
        catch (e) { /* ignore keep-alives and partial frames */ }
      }
    }
    status.textContent = status.textContent.startsWith("Streaming") ? "Done." : status.textContent;
    document.body.dataset.steerFrames = String(frames);
  }
})();
