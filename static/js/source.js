/* Source page UMAP: hover shows the explanation, click opens the feature (an <a> in the SVG), search highlights. */
(function () {
  "use strict";
  document.addEventListener("mouseover", (event) => {
    const dot = event.target.closest && event.target.closest("#umap-svg circle");
    const tip = document.getElementById("umap-tip");
    if (!dot || !tip) return;
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
    if (event.target.closest && event.target.closest("#umap-svg circle")) {
      const tip = document.getElementById("umap-tip");
      if (tip) tip.hidden = true;
    }
  });
  document.addEventListener("input", (event) => {
    if (event.target.id !== "umap-search") return;
    const q = event.target.value.trim().toLowerCase();
    const svg = document.getElementById("umap-svg");
    let hits = 0;
    svg.querySelectorAll("circle").forEach((dot) => {
      const hit = q.length > 0 && (dot.dataset.e || "").toLowerCase().includes(q);
      dot.classList.toggle("hit", hit);
      if (hit) hits += 1;
    });
    svg.classList.toggle("searching", q.length > 0);
    const count = document.getElementById("umap-count");
    if (count) count.textContent = q ? hits + " match" + (hits === 1 ? "" : "es") : svg.querySelectorAll("circle").length + " features";
  });
})();
