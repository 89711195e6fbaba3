"""A JSON parser for the API that refuses hostile nesting with a 400 instead of a RecursionError.

Python's json module recurses once per nesting level: `'[' * 5000 + ']' * 5000` raises RecursionError
(a 500), and a document a little under the interpreter's limit parses but then breaks whatever walks it
next (serializers, json.dumps into a JSONField). No endpoint takes more than a few levels, so anything
deeper than MAX_JSON_DEPTH is refused before a view sees it. Every DRF view uses this parser
(REST_FRAMEWORK's DEFAULT_PARSER_CLASSES and neuronpedia.api.schema.JSON_ONLY)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64


def check_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raises ValueError when lists/objects nest deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"JSON nested deeper than {limit} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, list | dict))


class SafeJSONParser(JSONParser):
    """JSONParser plus a depth limit: a body nested too deeply is a ParseError (400 JSON)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        if isinstance(data, list | dict):
            try:
                check_depth(data)
            except ValueError as exc:
                raise ParseError(f"JSON parse error - {exc}") from None
        return data
