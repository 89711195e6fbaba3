"""A fake OpenAI-compatible HTTP server on 127.0.0.1 (real HTTP, scripted replies) and feature data."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tests import factories

Reply = tuple[int, dict[str, Any], dict[str, str]]


def chat_reply(text: str) -> Reply:
    return (
        200,
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
        },
        {},
    )


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, {"error": {"message": message, "type": "error", "code": status}}, headers or {}


_EXAMPLE_RE = re.compile(r"^Example \d+:(.*)$", re.MULTILINE)


def smart_reply(body: dict[str, Any]) -> Reply:
    """A competent fake LLM: explains 'cat' features, classifies examples by whether they mention cats."""
    if "input" in body:  # embeddings
        dims = int(body.get("dimensions") or 256)
        data = []
        for i, text in enumerate(body["input"]):
            seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
            vec = np.random.default_rng(seed).normal(size=dims)
            data.append(
                {"object": "embedding", "index": i, "embedding": (vec / np.linalg.norm(vec)).tolist()}
            )
        return 200, {"object": "list", "data": data, "model": body["model"]}, {}
    messages = body["messages"]
    system, last = messages[0]["content"], messages[-1]["content"]
    if "Python list" in system:
        examples = _EXAMPLE_RE.findall(last)
        if "Some examples might be mislabeled" in system:  # fuzzing: are the highlighted tokens cats?
            marks = ["".join(re.findall(r"<<(.*?)>>", ex)).lower() for ex in examples]
            return chat_reply(json.dumps([int("cat" in m) for m in marks]))
        return chat_reply(json.dumps([int("cat" in ex.lower()) for ex in examples]))
    if "[EXPLANATION]" in system:
        return chat_reply("The examples share felines.\n[EXPLANATION]: mentions of cats")
    return chat_reply("mentions of cats")


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: Callable[[dict[str, Any]], Reply] = smart_reply
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, payload, extra = fake.script(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply_sequence(self, *replies: Reply) -> None:
        """Answer with these replies in order, then keep answering with smart replies."""
        queue = list(replies)

        def script(body: dict[str, Any]) -> Reply:
            return queue.pop(0) if queue else smart_reply(body)

        self.script = script

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]


@pytest.fixture
def fake_llm(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.thread.start()
    provider = {"NP_OPENAI_BASE_URL": fake.base_url, "NP_OPENAI_API_KEY": "sk-test-secret-key-1234",
                "NP_EXPLAINER_MODEL": "fake-gpt"}
    for name, value in provider.items():
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)  # the worker processes a test starts read their settings from it
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


CAT_TEXTS = [
    "The cat sat on the mat",
    "My cat likes fish",
    "A small cat slept",
    "The cat purred loudly",
    "She fed the cat today",
    "That cat is black",
    "Our cat chased mice",
    "The old cat yawned",
    "His cat hid under beds",
    "A cat climbed the tree",
]
OTHER_TEXTS = [
    "Stocks fell sharply on Monday",
    "The bank raised interest rates",
    "Bond yields rose again",
    "Inflation data surprised markets",
    "The budget deficit widened",
    "Oil prices dropped today",
    "The central bank met",
    "Quarterly earnings beat estimates",
    "Tax revenue grew fast",
    "The currency weakened further",
]


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def add_examples(feature: Any, texts: list[str], word: str | None) -> None:
    for text in texts:
        tokens = _tokens(text)
        values = [5.0 if word and word in tok.lower() else 0.0 for tok in tokens]
        if not any(values):
            values[-1] = 0.0
        factories.make_activation(feature, tokens, values)


@pytest.fixture
def cat_feature(catalog: dict[str, Any]) -> Any:
    """A feature firing on ' cat'; a sibling feature in the same source supplies non-activating text."""
    feature = factories.make_feature(catalog["source"], 7, pos_str=[" purr", " meow"], pos_values=[1.0, 0.8])
    add_examples(feature, CAT_TEXTS, "cat")
    other = factories.make_feature(catalog["source"], 8)
    add_examples(other, OTHER_TEXTS, None)
    for i, row in enumerate(other.activations.all()):
        row.values = [0.0] * (len(row.tokens) - 1) + [1.0 + i]
        row.max_value, row.max_value_token_index = 1.0 + i, len(row.tokens) - 1
        row.save()
    return feature
