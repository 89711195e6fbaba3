"""`redact_paths`: a job's error or result text for non-staff, with filesystem paths and URLs hidden."""

from __future__ import annotations

import re

from django import template

register = template.Library()

# absolute POSIX/Windows paths, ~/ paths, file:// and s3:// URLs
_PATH_RE = re.compile(r"(?:file|s3)://\S+|(?<![\w.])(?:~|[A-Za-z]:)?(?:[/\\][\w.@%+=:-]+){2,}[/\\]?")


@register.filter
def redact_paths(text: object) -> str:
    return _PATH_RE.sub("…", str(text))
