"""Load benchmark: mixed traffic at rising concurrency against a real server, the old sync setup
(baseline) and the ASGI setup, in one run.

    .venv/bin/python bench/load_bench.py [--levels 4,16,32] [--seconds 40] [--steer-tokens 24]

What runs (all real processes, on this machine):
- a database of its own (`np_loadbench` on the project's PostgreSQL; migrated and seeded once: the demo
  source of SmolLM2-135M-Instruct with 500 feature rows, 5 activation examples and an explanation each)
  and Redis database 8;
- the demo model's REAL inference worker (`manage.py inference_worker`, SmolLM2-135M-Instruct + the
  15-res-demo TopK SAE; OMP_NUM_THREADS=1 so one core is left to the web server);
- the web server, twice:
  * baseline: `gunicorn neuronpedia.wsgi --workers 2 --threads 8` with an unbounded inference queue
    (INFERENCE_QUEUE_LIMIT=0): the setup before issue 15, where a request waiting on inference holds
    one of the 16 threads;
  * asgi: `gunicorn neuronpedia.asgi:application -k uvicorn_worker.UvicornWorker --workers 2` with the
    bounded queue (INFERENCE_QUEUE_LIMIT=8): what `bin/np up` serves now;
- locust (as a library, FastHttpUser) with N users: half readers (feature page 2 : explanation search
  page 1, no inference), half API callers (activation/new 1 : steer 1, random seed so never cached),
  each looping with 50-200 ms pauses. A 503 that carries Retry-After (a full inference queue) is
  counted as "shed", not as an error; errors are every other non-2xx answer and transport
  failures/timeouts (60 s). Requests still running when a level ends are not counted.

Then, per server, the question issue 15 asks directly -- does saturated inference delay a page that does not
need it? -- answered by a probe: one user fetching a feature page every 200 ms (a steady 5 pages/s, no
flood of readers competing for the web CPU), first with the inference worker idle, then while `--callers`
API users keep the inference queue saturated (each caller honours `Retry-After` on a 503, as a real client
does). Reported: the probe's p50/p95/max in both phases, the deepest queue seen and the callers' outcomes.

Reported per server and level: throughput, p50/p95 per route (ms), errors, shed, the deepest inference
queue seen (sampled every 0.5 s) and the 1-minute load average before/after (the machine is shared).
Rate limits are off (NP_RATE_LIMIT_ENABLED=false): this measures serving, not the limiter.
"""

from __future__ import annotations

if __name__ == "__main__":  # locust runs on gevent: patch before anything imports ssl or sockets
    from gevent import monkey

    monkey.patch_all()

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = "np_loadbench"
REDIS_DB = 8  # 9-15 are the test runs' databases
MODEL = "smollm2-135m-instruct"
SOURCE = "15-res-demo"
N_FEATURES = 500
PORT = 3990
QUEUE_LIMIT = 8  # the ASGI server's bound on waiting inference requests (INFERENCE_QUEUE_LIMIT)
WORDS = ["music", "water", "church", "money", "night", "king", "war", "love", "number", "city"]
TEXTS = ["The bells rang across the quiet village.", "She counted the coins twice before paying.",
         "A storm rolled over the hills at night.", "They sang an old song by the fire."]


def database_url() -> str:
    from neuronpedia import devservices

    base = os.environ.get("DATABASE_URL") or devservices.database_url()
    return base.rsplit("/", 1)[0] + "/" + DB_NAME


def redis_url() -> str:
    from neuronpedia import devservices

    return devservices.redis_url().rsplit("/", 1)[0] + f"/{REDIS_DB}"


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "neuronpedia.settings.local",
            "DATABASE_URL": database_url(), "REDIS_URL": redis_url(), "DJANGO_DEBUG": "false", "NP_DEV": "0",
            "NP_RATE_LIMIT_ENABLED": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


# --- setup (no locust/gevent in this process yet) ------------------------------------------------

def create_database() -> None:
    import psycopg

    admin = database_url().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env=child_env(), check=True)


SEED = f"""
from inference import demo
from features.models import Activation, Explanation, Feature
source = demo.register_demo_source()
if Feature.objects.filter(source=source).count() < {N_FEATURES}:
    Feature.objects.filter(source=source).delete()
    features = Feature.objects.bulk_create([
        Feature(source=source, index=i, max_act_approx=1.0 + i % 7, frac_nonzero=0.001 * (i % 10))
        for i in range({N_FEATURES})])
    words = {WORDS!r}
    Activation.objects.bulk_create([
        Activation(feature=f, tokens=["The", " bells", " rang", " across", " the", " village"],
                   values=[0.0, 1.0 + k, 0.5, 0.0, 0.2, 2.0], max_value=2.0 + k, max_value_token_index=5)
        for f in features for k in range(5)])
    Explanation.objects.bulk_create([
        Explanation(feature=f, description=f"mentions of {{words[f.index % 10]}}") for f in features])
print("seeded", Feature.objects.filter(source=source).count())
"""


def seed() -> None:
    subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, env=child_env(), check=True)


def start_worker() -> subprocess.Popen:
    from inference import demo

    return subprocess.Popen([sys.executable, "manage.py", "inference_worker", "--config",
                             str(demo.DEMO_CONFIG), "--name", "loadbench-worker", "--loglevel", "WARNING"],
                            cwd=ROOT,
                            env=child_env(OMP_NUM_THREADS="1", INFERENCE_HEARTBEAT_SECONDS="5"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


SERVERS = {
    "baseline (WSGI, 2x8 threads, unbounded queue)": (
        ["neuronpedia.wsgi", "--workers", "2", "--threads", "8"], {"INFERENCE_QUEUE_LIMIT": "0"}),
    f"asgi (uvicorn workers, queue limit {QUEUE_LIMIT})": (
        ["neuronpedia.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "--workers", "2"],
        {"INFERENCE_QUEUE_LIMIT": str(QUEUE_LIMIT)}),
}


def start_server(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{PORT}",
                                 "--timeout", "300"], cwd=ROOT, env=child_env(**env),
                                stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- load (locust) -------------------------------------------------------------------------------

ROUTES = ["page: feature", "page: search-explanations", "api: activation/new", "api: steer"]


def make_users(steer_tokens: int, shed: dict[str, int]) -> list[Any]:
    """Two kinds of users in equal numbers: readers (pages that need no inference) and callers of the
    live-inference API (activation tests and steers), so page latency is measured while inference
    requests are waiting, not only after them."""
    from locust import between, task
    from locust.contrib.fasthttp import FastHttpUser

    class Reader(FastHttpUser):
        wait_time = between(0.05, 0.2)
        network_timeout = 60.0
        connection_timeout = 10.0
        host = f"http://127.0.0.1:{PORT}"

        @task(2)
        def feature_page(self) -> None:
            self.client.get(f"/{MODEL}/{SOURCE}/{random.randrange(N_FEATURES)}", name=ROUTES[0])

        @task(1)
        def search(self) -> None:
            self.client.get(f"/search-explanations?q={random.choice(WORDS)}", name=ROUTES[1])

    class Caller(FastHttpUser):
        wait_time = between(0.05, 0.2)
        network_timeout = 60.0
        connection_timeout = 10.0
        host = f"http://127.0.0.1:{PORT}"

        def _post(self, path: str, name: str, body: dict[str, Any]) -> None:
            with self.client.post(path, json=body, name=name, catch_response=True) as response:
                if response.status_code == 503 and response.headers.get("Retry-After"):
                    shed[name] = shed.get(name, 0) + 1
                    response.success()
                elif response.status_code != 200:
                    response.failure(f"{response.status_code}")

        @task(1)
        def activation(self) -> None:
            self._post("/api/activation/new", ROUTES[2], {
                "feature": {"modelId": MODEL, "source": SOURCE, "index": random.randrange(N_FEATURES)},
                "customText": random.choice(TEXTS)})

        @task(1)
        def steer(self) -> None:
            self._post("/api/steer", ROUTES[3], {
                "modelId": MODEL, "prompt": "The weather today is", "temperature": 0.5,
                "n_tokens": steer_tokens, "freq_penalty": 1, "seed": random.randrange(10**7),
                "strength_multiplier": 1,
                "features": [{"modelId": MODEL, "layer": SOURCE, "index": random.randrange(N_FEATURES),
                              "strength": 20.0}]})

    return [Reader, Caller]


PROBE = "probe: feature page"


def probe_users(steer_tokens: int, shed: dict[str, int], outcomes: dict[str, int]) -> list[Any]:
    """One probe fetching a cheap page at a steady rate, and API callers that honour Retry-After."""
    import gevent
    from locust import constant, task
    from locust.contrib.fasthttp import FastHttpUser

    _, caller = make_users(steer_tokens, shed)

    class Probe(FastHttpUser):
        fixed_count = 1
        wait_time = constant(0.2)
        network_timeout = 60.0
        connection_timeout = 10.0
        host = f"http://127.0.0.1:{PORT}"

        @task
        def feature_page(self) -> None:
            self.client.get(f"/{MODEL}/{SOURCE}/{random.randrange(N_FEATURES)}", name=PROBE)

    class PoliteCaller(caller):  # type: ignore[misc, valid-type]
        def _post(self, path: str, name: str, body: dict[str, Any]) -> None:
            with self.client.post(path, json=body, name=name, catch_response=True) as response:
                retry_after = response.headers.get("Retry-After")
                if response.status_code == 503 and retry_after:
                    shed[name] = shed.get(name, 0) + 1
                    outcomes["shed"] = outcomes.get("shed", 0) + 1
                    response.success()
                    gevent.sleep(max(1.0, float(retry_after)))
                elif response.status_code == 200:
                    outcomes["served"] = outcomes.get("served", 0) + 1
                else:
                    outcomes[str(response.status_code)] = outcomes.get(str(response.status_code), 0) + 1
                    response.failure(f"{response.status_code}")

    return [Probe, PoliteCaller]


def run_probe(callers: int, seconds: float, steer_tokens: int) -> dict[str, Any]:
    """The probe alone (callers=0) or beside `callers` API users that keep inference saturated."""
    import gevent
    import redis
    from locust.env import Environment

    shed: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    users = probe_users(steer_tokens, shed, outcomes)
    env = Environment(user_classes=users if callers else users[:1])
    runner = env.create_local_runner()
    client = redis.Redis.from_url(redis_url())
    depths: list[int] = []
    load_before = os.getloadavg()[0]
    runner.start(1 + callers, spawn_rate=1 + callers)
    gevent.sleep(min(5.0, seconds / 4))  # let the queue fill before the probe's requests count
    env.stats.reset_all()
    outcomes.clear()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        client.zremrangebyscore(f"np:inflight:{MODEL}", "-inf", time.time())
        depths.append(int(client.zcard(f"np:inflight:{MODEL}")))
        gevent.sleep(0.5)
    runner.quit()
    entry = env.stats.get(PROBE, "GET")
    return {"callers": callers, "n": entry.num_requests, "errors": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
            "p95": entry.get_response_time_percentile(0.95) if entry.num_requests else None,
            "max": entry.max_response_time if entry.num_requests else None,
            "deepest_queue": max(depths, default=0),
            "saturated_share": sum(d >= QUEUE_LIMIT for d in depths) / max(1, len(depths)),
            "outcomes": dict(outcomes), "load": (load_before, os.getloadavg()[0])}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def probe_table(name: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"**{name}: probe (one feature page every 200 ms)**", "",
             "| inference | probe pages | p50 ms | p95 ms | max ms | errors | deepest queue | "
             f"queue >= {QUEUE_LIMIT} | callers' answers | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        what = "idle" if not r["callers"] else f"saturated by {r['callers']} API callers"
        answers = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items())) or "–"
        lines.append(f"| {what} | {r['n']} | {_ms(r['p50'])} | {_ms(r['p95'])} | {_ms(r['max'])} | "
                     f"{r['errors']} | {r['deepest_queue']} | {r['saturated_share']:.0%} | {answers} | "
                     f"{r['load'][0]:.1f} → {r['load'][1]:.1f} |")
    return "\n".join(lines)


def run_level(users: int, seconds: float, steer_tokens: int) -> dict[str, Any]:
    import gevent
    import redis
    from locust.env import Environment

    shed: dict[str, int] = {}
    env = Environment(user_classes=make_users(steer_tokens, shed))
    runner = env.create_local_runner()
    client = redis.Redis.from_url(redis_url())
    deepest = 0
    load_before = os.getloadavg()[0]
    runner.start(users, spawn_rate=users)
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        client.zremrangebyscore(f"np:inflight:{MODEL}", "-inf", time.time())
        deepest = max(deepest, int(client.zcard(f"np:inflight:{MODEL}")))
        gevent.sleep(0.5)
    runner.quit()
    load_after = os.getloadavg()[0]
    rows = {}
    total = 0
    for route in ROUTES:
        entry = env.stats.get(route, "GET" if route.startswith("page") else "POST")
        total += entry.num_requests
        rows[route] = {"n": entry.num_requests, "errors": entry.num_failures, "shed": shed.get(route, 0),
                       "p50": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
                       "p95": entry.get_response_time_percentile(0.95) if entry.num_requests else None}
    errors: dict[str, int] = {}
    for entry in env.stats.errors.values():
        key = f"{entry.name}: {str(entry.error)[:80]}"
        errors[key] = errors.get(key, 0) + entry.occurrences
    return {"users": users, "rps": total / seconds, "routes": rows, "deepest_queue": deepest,
            "load": (load_before, load_after), "errors": errors}


def wait_http(url: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def purge_inference_queue() -> None:
    """Between servers: drop the previous server's queued messages and admission slots (its callers
    are gone) and let the worker finish what it is running."""
    import redis

    client = redis.Redis.from_url(redis_url())
    client.delete(f"inference.{MODEL}", f"np:inflight:{MODEL}")
    time.sleep(10)


def warm_up(base: str) -> None:
    """Each server process loads the explanation embedder on its first search: do that before timing."""
    import gevent
    import urllib3

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=240))
    jobs = [gevent.spawn(http.request, "GET", f"{base}/search-explanations?q={w}") for w in WORDS[:6]]
    jobs += [gevent.spawn(http.request, "GET", f"{base}/{MODEL}/{SOURCE}/{i}") for i in range(6)]
    gevent.joinall(jobs, timeout=300)


def wait_worker(timeout: float) -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.exists("np:alive:loadbench-worker"):
            return
        time.sleep(0.5)
    raise SystemExit("the inference worker did not come up")


def table(name: str, results: list[dict[str, Any]]) -> str:
    lines = [f"**{name}**", "",
             "| users | req/s | route | requests | p50 ms | p95 ms | errors | shed (503+Retry-After) |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for i, (route, row) in enumerate(r["routes"].items()):
            lead = f"| {r['users']} | {r['rps']:.1f} " if i == 0 else "| | "
            p50 = "–" if row["p50"] is None else f"{row['p50']:.0f}"
            p95 = "–" if row["p95"] is None else f"{row['p95']:.0f}"
            lines.append(f"{lead}| {route} | {row['n']} | {p50} | {p95} | {row['errors']} | {row['shed']} |")
        lines.append(f"| | | *deepest inference queue {r['deepest_queue']}, load average "
                     f"{r['load'][0]:.1f} → {r['load'][1]:.1f}* | | | | | |")
        for error, count in r["errors"].items():
            lines.append(f"| | | *error ×{count}: {error}* | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="4,16,32")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--steer-tokens", type=int, default=16)
    parser.add_argument("--only", choices=["baseline", "asgi"], default=None)
    parser.add_argument("--callers", type=int, default=16, help="API users saturating inference in the probe")
    parser.add_argument("--probe-seconds", type=float, default=40.0)
    parser.add_argument("--no-levels", action="store_true", help="only the probe")
    parser.add_argument("--json", default="", help="also write the raw results here")
    parser.add_argument("--server-log", default="/tmp/np-load-bench-server.log")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
    import django

    django.setup()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; setting up {DB_NAME}...",
          flush=True)
    create_database()
    seed()
    worker = start_worker()
    all_results: dict[str, list[dict[str, Any]]] = {}
    probes: dict[str, list[dict[str, Any]]] = {}
    try:
        wait_worker(300)
        for name, (server_args, server_env) in SERVERS.items():
            if args.only and not name.startswith(args.only):
                continue
            server = start_server(server_args, server_env, Path(args.server_log))
            try:
                wait_http(f"http://127.0.0.1:{PORT}/{MODEL}/{SOURCE}/1", 60)
                warm_up(f"http://127.0.0.1:{PORT}")
                run_level(2, 8, args.steer_tokens)  # warm-up of the inference path
                purge_inference_queue()
                probes[name] = []
                for callers in (0, args.callers):
                    print(f"{name}: probe, {callers} API callers for {args.probe_seconds:.0f} s...",
                          flush=True)
                    probes[name].append(run_probe(callers, args.probe_seconds, args.steer_tokens))
                    print(json.dumps(probes[name][-1]), flush=True)
                    purge_inference_queue()
                results = []
                for users in [] if args.no_levels else [int(u) for u in args.levels.split(",")]:
                    print(f"{name}: {users} users for {args.seconds:.0f} s...", flush=True)
                    results.append(run_level(users, args.seconds, args.steer_tokens))
                    print(json.dumps(results[-1]), flush=True)
                all_results[name] = results
            finally:
                stop(server)
                purge_inference_queue()
    finally:
        stop(worker)
    print()
    for name, rows in probes.items():
        print(probe_table(name, rows))
        print()
    for name, results in all_results.items():
        if results:
            print(table(name, results))
            print()
    if args.json:
        Path(args.json).write_text(json.dumps({"levels": all_results, "probes": probes}, indent=1))


if __name__ == "__main__":
    main()
