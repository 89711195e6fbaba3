# ruff: noqa: E501  (table rows)
"""The attribution-graph page with a 1,000-node / 20,000-edge graph in headless Chromium (issue 17).

    .venv/bin/python bench/graph_page_bench.py                 # 1,000 nodes, 20,000 links, 200 hovers
    .venv/bin/python bench/graph_page_bench.py --features 400 --links 5000 --hovers 50

Runs in its own database (`np_graph_page_bench_<pid>`: created, migrated, dropped at exit), stores a
synthetic graph in Neuronpedia's format (tests/graphs/fixtures.make_graph: circuit-tracer's node ids and
fields), serves the site from a live-server thread (static files included) and loads
`/{model}/graph?slug=...` in Debian's Chromium through Playwright, `--loads` times (fresh page each).

Reported per load: first contentful paint (the server-rendered shell), the graph drawn on the canvas
(navigation start -> the viewer's ready mark after fetching the JSON, pruning, layout and drawing all
links and nodes) and the first frame after it. Then, on one loaded page, `--hovers` hovers on random
visible nodes: a mousemove dispatched on the overlay canvas, timing the handler (hit test + overlay
redraw of the node's edges) and the event -> next animation frame time; and the pruning slider's full
redraw (prune + layout + redraw of the base canvas).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._scratch_db import scratch_database  # noqa: E402

DB_NAME = f"np_graph_page_bench_{os.getpid()}"


def make_graph_row(args: argparse.Namespace) -> Any:
    from features.models import Model, SourceSet
    from graphs import services
    from tests.graphs.fixtures import make_graph

    model = Model.objects.create(id="bench-model", layers=30, dimension=576)
    SourceSet.objects.create(model=model, name="plt-demo", type="transcoder")
    tokens = [f" tok{i}" for i in range(args.tokens)]
    data = make_graph(slug="bench", n_features=args.features, n_links=args.links, tokens=tokens, seed=1)
    return services.import_graph(model=model, data=data, user=None, slug="bench")


HOVER_JS = """async (n) => {
  const g = window.npGraph, overlay = document.getElementById('graph-overlay');
  const box = overlay.getBoundingClientRect();
  const nodes = g.state.visibleNodes;
  const handler = [], frame = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < n; i++) {
    const node = nodes[Math.floor(rnd() * nodes.length)];
    const t0 = performance.now();
    overlay.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + node.x, clientY: box.top + node.y, bubbles: true}));
    const t1 = performance.now();
    await new Promise((r) => requestAnimationFrame(() => r()));
    const t2 = performance.now();
    if (g.state.hoveredId !== node.id && Math.hypot(0, 0) === 0) {
      // another node within 8 px may win the hit test; it is still a hover redraw
    }
    handler.push(t1 - t0); frame.push(t2 - t0);
  }
  const slider = document.getElementById('node-threshold');
  const redraw = [];
  for (const v of [0.5, 0.8, 0.6, 0.8, 0.7, 0.8]) {
    const t0 = performance.now();
    slider.value = v; slider.dispatchEvent(new Event('input'));
    redraw.push(performance.now() - t0);
  }
  return {handler, frame, redraw, nodes: nodes.length, links: g.state.visibleLinks.length};
}"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=940, help="feature nodes before pruning of unconnected ones")
    parser.add_argument("--links", type=int, default=20_000)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--hovers", type=int, default=200)
    args = parser.parse_args()
    chromium = os.environ.get("NP_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    if not Path(chromium).exists():
        sys.exit("chromium is not installed (apt-get install chromium)")
    scratch_database(DB_NAME, allow_async_unsafe=True)
    graph = make_graph_row(args)
    import threading

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}{graph.get_absolute_url()}"
    payload = len(graph.links_z)
    from playwright.sync_api import sync_playwright

    loads: list[dict[str, float]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync"])
        for i in range(args.loads + 1):  # the first load warms the server and caches
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator("#graph-stage[data-ready='1']").wait_for(timeout=60_000)
            page.wait_for_function("window.npGraph.timings.firstFrameAt !== undefined")
            m = page.evaluate("""() => {
              const fcp = performance.getEntriesByName('first-contentful-paint')[0], t = window.npGraph.timings;
              return {fcp: fcp ? fcp.startTime : NaN, ready: t.readyAt, fetch: t.fetchMs, draw: t.drawMs,
                      frame: t.firstFrameAt};
            }""")
            if i:
                loads.append(m)
            if i < args.loads:
                page.close()
        hover = page.evaluate(HOVER_JS, args.hovers)
        browser.close()
    server.shutdown()

    def row(name: str, values: list[float]) -> str:
        return f"| {name:<58} | {statistics.median(values):>9.1f} | {pct(values, 0.95):>9.1f} | {max(values):>9.1f} |"

    print(f"\nGraph: {graph.n_nodes} nodes, {graph.n_links} links, {args.tokens} tokens "
          f"({payload / 1e6:.2f} MB of links stored zlib'd); drawn after pruning: {hover['nodes']} nodes, "
          f"{hover['links']} links. {args.loads} page loads, {args.hovers} hovers.\n")
    print(f"| {'measure (ms)':<58} | {'median':>9} | {'p95':>9} | {'max':>9} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
    print(row("first contentful paint (page shell)", [m["fcp"] for m in loads]))
    print(row("graph JSON fetched (from script start)", [m["fetch"] for m in loads]))
    print(row("prepare + prune + layout + draw (JS)", [m["draw"] for m in loads]))
    print(row("graph drawn (navigation start -> ready)", [m["ready"] for m in loads]))
    print(row("first frame with the graph (navigation start)", [m["frame"] for m in loads]))
    print(row("hover: handler (hit test + overlay redraw)", hover["handler"]))
    print(row("hover: event -> next animation frame", hover["frame"]))
    print(row("pruning slider: full redraw", hover["redraw"]))


if __name__ == "__main__":
    main()
