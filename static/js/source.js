/* Source page UMAP: zoom (wheel, buttons) and pan (drag); hover emphasises a point and shows its
   explanation; click opens the feature; the legend and the search highlight points; a region
   (Shift+drag, or "select a region") lists its features and can be saved as a list. */
(function () {
  "use strict";
  const state = {view: null, drag: null, moved: false};

  function svg() { return document.getElementById("umap-svg"); }
  function view(s) {
    if (!state.view || state.view.svg !== s) {
      const size = Number(s.dataset.size || 600);
      state.view = {svg: s, size, x: 0, y: 0, w: size};
    }
    return state.view;
  }
  function apply(v) {
    v.svg.setAttribute("viewBox", [v.x, v.y, v.w, v.w].map((n) => n.toFixed(2)).join(" "));
    const r = (3.2 * v.w / v.size).toFixed(3);
    v.svg.querySelectorAll("circle").forEach((c) => c.setAttribute("r", r));
    v.svg.dataset.zoom = (v.size / v.w).toFixed(3);
  }
  function zoom(s, factor, cx, cy) {
    const v = view(s);
    const w = Math.min(v.size, Math.max(v.size / 40, v.w / factor));
    const px = cx === undefined ? v.x + v.w / 2 : cx;
    const py = cy === undefined ? v.y + v.w / 2 : cy;
    v.x = px - (px - v.x) * (w / v.w);
    v.y = py - (py - v.y) * (w / v.w);
    v.w = w;
    apply(v);
  }
  function toSvg(s, event) {
    const pt = s.createSVGPoint();
    pt.x = event.clientX; pt.y = event.clientY;
    return pt.matrixTransform(s.getScreenCTM().inverse());
  }

  document.addEventListener("wheel", (event) => {
    const s = event.target.closest && event.target.closest("#umap-svg");
    if (!s) return;
    event.preventDefault();
    const p = toSvg(s, event);
    zoom(s, event.deltaY < 0 ? 1.25 : 0.8, p.x, p.y);
  }, {passive: false});

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-umap]");
    if (button && svg()) {
      const s = svg();
      if (button.dataset.umap === "reset") { const v = view(s); v.x = 0; v.y = 0; v.w = v.size; apply(v); }
      else zoom(s, button.dataset.umap === "in" ? 1.5 : 1 / 1.5);
    }
    const legend = event.target.closest(".legend-item");
    if (legend) toggleCluster(legend);
    if (event.target.closest("#umap-clear")) showSelection([]);
    // a drag or a region selection must not also open the feature under the pointer
    if (state.moved && event.target.closest && event.target.closest("#umap-svg")) {
      event.preventDefault();
      state.moved = false;
    }
  }, true);

  document.addEventListener("mousedown", (event) => {
    const s = event.target.closest && event.target.closest("#umap-svg");
    if (!s || event.button !== 0) return;
    const selecting = event.shiftKey || (document.getElementById("umap-select-mode") || {}).checked;
    state.drag = {svg: s, start: toSvg(s, event), client: [event.clientX, event.clientY], selecting,
                  view: Object.assign({}, view(s))};
    state.moved = false;
    event.preventDefault();
  });
  document.addEventListener("mousemove", (event) => {
    const d = state.drag;
    if (!d) return;
    if (Math.abs(event.clientX - d.client[0]) + Math.abs(event.clientY - d.client[1]) > 3) state.moved = true;
    if (!state.moved) return;
    const brush = document.getElementById("umap-brush");
    if (d.selecting) {
      const p = toSvg(d.svg, event);
      brush.setAttribute("x", Math.min(p.x, d.start.x)); brush.setAttribute("y", Math.min(p.y, d.start.y));
      brush.setAttribute("width", Math.abs(p.x - d.start.x)); brush.setAttribute("height", Math.abs(p.y - d.start.y));
      brush.setAttribute("visibility", "visible");
    } else {
      const v = view(d.svg);
      const scale = v.w / d.svg.getBoundingClientRect().width;
      v.x = d.view.x - (event.clientX - d.client[0]) * scale;
      v.y = d.view.y - (event.clientY - d.client[1]) * scale;
      apply(v);
    }
  });
  document.addEventListener("mouseup", () => {
    const d = state.drag;
    state.drag = null;
    if (!d || !d.selecting || !state.moved) return;
    const brush = document.getElementById("umap-brush");
    const x = Number(brush.getAttribute("x")), y = Number(brush.getAttribute("y"));
    const w = Number(brush.getAttribute("width")), h = Number(brush.getAttribute("height"));
    brush.setAttribute("visibility", "hidden");
    const inside = [...d.svg.querySelectorAll("circle")].filter((c) => {
      const cx = Number(c.getAttribute("cx")), cy = Number(c.getAttribute("cy"));
      return cx >= x && cx <= x + w && cy >= y && cy <= y + h;
    });
    showSelection(inside);
  });

  function showSelection(circles) {
    const box = document.getElementById("umap-selection");
    if (!box) return;
    const s = svg();
    s.querySelectorAll("circle.selected").forEach((c) => c.classList.remove("selected"));
    circles.forEach((c) => c.classList.add("selected"));
    s.classList.toggle("selecting", circles.length > 0);
    box.hidden = circles.length === 0;
    document.getElementById("umap-selection-count").textContent =
      circles.length + " feature" + (circles.length === 1 ? "" : "s") + " in the region";
    const list = document.getElementById("umap-selection-list");
    list.textContent = "";
    circles.slice(0, 500).forEach((c) => {
      const li = list.appendChild(NP.el("li"));
      li.appendChild(NP.el("a", {href: c.parentNode.getAttribute("href")}, "#" + c.dataset.i));
      li.appendChild(NP.el("span", {class: "muted"}, " " + (c.dataset.e || "(no explanation)")));
    });
    document.querySelector("#umap-make-list input[name=indices]").value =
      circles.slice(0, 500).map((c) => c.dataset.i).join(",");
  }

  function toggleCluster(button) {
    const s = svg();
    const on = button.getAttribute("aria-pressed") !== "true";
    document.querySelectorAll(".legend-item").forEach((b) => b.setAttribute("aria-pressed", "false"));
    document.getElementById("umap-search").value = "";
    let hits = 0;
    s.querySelectorAll("circle").forEach((dot) => {
      const hit = on && dot.dataset.c === button.dataset.cluster;
      dot.classList.toggle("hit", hit);
      if (hit) hits += 1;
    });
    s.classList.toggle("searching", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    const count = document.getElementById("umap-count");
    if (count) count.textContent = on ? hits + " in the cluster" : s.querySelectorAll("circle").length + " features";
  }

  document.addEventListener("mouseover", (event) => {
    const dot = event.target.closest && event.target.closest("#umap-svg circle");
    const tip = document.getElementById("umap-tip");
    if (!dot || !tip) return;
    const s = svg();
    s.classList.add("hovering");
    dot.classList.add("hover");
    tip.textContent = "";
    tip.appendChild(NP.el("strong", {}, "#" + dot.dataset.i + " "));
    tip.appendChild(document.createTextNode(dot.dataset.e || "(no explanation)"));
    const box = dot.closest(".umap-wrap").getBoundingClientRect();
    const r = dot.getBoundingClientRect();
    tip.style.left = (r.left - box.left + 10) + "px";
    tip.style.top = (r.top - box.top + 10) + "px";
    tip.hidden = false;
  });
  document.addEventListener("mouseout", (event) => {
    const dot = event.target.closest && event.target.closest("#umap-svg circle");
    if (!dot) return;
    dot.classList.remove("hover");
    svg().classList.remove("hovering");
    const tip = document.getElementById("umap-tip");
    if (tip) tip.hidden = true;
  });
  document.addEventListener("input", (event) => {
    if (event.target.id !== "umap-search") return;
    const q = event.target.value.trim().toLowerCase();
    const s = svg();
    document.querySelectorAll(".legend-item").forEach((b) => b.setAttribute("aria-pressed", "false"));
    let hits = 0;
    s.querySelectorAll("circle").forEach((dot) => {
      const hit = q.length > 0 && (dot.dataset.e || "").toLowerCase().includes(q);
      dot.classList.toggle("hit", hit);
      if (hit) hits += 1;
    });
    s.classList.toggle("searching", q.length > 0);
    const count = document.getElementById("umap-count");
    if (count) count.textContent = q ? hits + " match" + (hits === 1 ? "" : "es") : s.querySelectorAll("circle").length + " features";
  });
})();
