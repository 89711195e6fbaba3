/* Feature page, embed options: rebuild the iframe snippet from the ticked options (Neuronpedia's parameters). */
(function () {
  "use strict";
  function update() {
    const area = document.getElementById("embed-options-snippet");
    if (!area) return;
    const params = new URLSearchParams({ embed: "true" });
    document.querySelectorAll("[data-embed-opt]").forEach((box) => {
      if (!box.checked) params.set(box.dataset.embedOpt, "false");
    });
    const url = area.dataset.base + "?" + params.toString();
    area.value = area.value.replace(/src="[^"]*"/, 'src="' + url + '"');
    const preview = document.getElementById("embed-options-preview");
    if (preview) preview.href = url;
  }
  if (!window.__npEmbedOptions) {
    window.__npEmbedOptions = true;
    document.addEventListener("change", (event) => {
      if (event.target.matches && event.target.matches("[data-embed-opt]")) update();
    });
  }
  update();
})();
