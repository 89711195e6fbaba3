/* Source-set page: the set's UMAP (hover tip, explanation search, show/hide layers). */
(function () {
  "use strict";
  const dotOf = (t) => t.closest && t.closest("#set-umap-svg circle");
  document.addEventListener("mouseover", (event) => {
    const dot = dotOf(event.target);
    const tip = document.getElementById("set-umap-tip");
    if (!dot || !tip) return;
    tip.textContent = "";
    const head = document.createElement("strong");
    head.textContent = dot.dataset.s + " #" + dot.dataset.i + " ";
    tip.appendChild(head);
    tip.appendChild(document.createTextNode(dot.dataset.e || "(no explanation)"));
    const box = dot.closest(".umap-wrap").getBoundingClientRect();
    const r = dot.getBoundingClientRect();
    tip.style.left = (r.left - box.left + 10) + "px";
    tip.style.top = (r.top - box.top + 10) + "px";
    tip.hidden = false;
    dot.classList.add("hover");
  });
  document.addEventListener("mouseout", (event) => {
    const dot = dotOf(event.target);
    if (!dot) return;
    dot.classList.remove("hover");
    const tip = document.getElementById("set-umap-tip");
    if (tip) tip.hidden = true;
  });
  function refresh() {
    const svg = document.getElementById("set-umap-svg");
    if (!svg) return;
    const search = document.getElementById("set-umap-search");
    const q = search ? search.value.trim().toLowerCase() : "";
    const off = new Set(Array.from(document.querySelectorAll("#set-umap-legend input:not(:checked)"))
      .map((box) => box.dataset.source));
    let shown = 0, hits = 0;
    svg.querySelectorAll("circle").forEach((dot) => {
      const hidden = off.has(dot.dataset.s);
      dot.parentNode.style.display = hidden ? "none" : "";
      if (hidden) return;
      shown += 1;
      const hit = q.length > 0 && (dot.dataset.e || "").toLowerCase().includes(q);
      dot.classList.toggle("hit", hit);
      if (hit) hits += 1;
    });
    svg.classList.toggle("searching", q.length > 0);
    const count = document.getElementById("set-umap-count");
    if (count) count.textContent = q ? hits + " match" + (hits === 1 ? "" : "es") : shown + " features";
  }
  document.addEventListener("input", (event) => { if (event.target.id === "set-umap-search") refresh(); });
  document.addEventListener("change", (event) => {
    if (event.target.closest && event.target.closest("#set-umap-legend")) refresh();
  });
})();
