"""`celery -A neuronpedia autointerp ...`: start autointerp batch jobs from the Celery command line.

Registered on Celery's click group by the delimited block in neuronpedia/celery.py. Commands parse
arguments, call a service and print; bad arguments exit 2 with click's usage message.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

EXPLAINER_CHOICES = ("np_max-act-logits", "eleuther_acts_top20")
SCORE_CHOICES = ("eleuther_recall", "eleuther_fuzz", "eleuther_embedding")


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuronpedia.settings.local")
    import django  # noqa: PLC0415

    django.setup()


def _resolve_source(ref: str) -> Any:
    from features.models import Source  # noqa: PLC0415

    model_id, _, name = ref.partition("/")
    if not name:
        raise click.BadParameter(
            f"expected MODEL/SOURCE such as gpt2-small/6-res-jb, got {ref!r}", param_hint="--source"
        )
    source = Source.objects.filter(model_id=model_id, name=name).first()
    if source is None:
        raise click.BadParameter(f"source {ref} does not exist", param_hint="--source")
    return source


def _resolve_features(refs: tuple[str, ...]) -> tuple[int, ...]:
    from features.models import Feature  # noqa: PLC0415

    ids = []
    for ref in refs:
        parts = ref.split("/")
        if len(parts) != 3 or not parts[2].isdigit():
            raise click.BadParameter(f"expected MODEL/SOURCE/INDEX, got {ref!r}", param_hint="--feature")
        pk = (
            Feature.objects.filter(source__model_id=parts[0], source__name=parts[1], index=int(parts[2]))
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            raise click.BadParameter(f"feature {ref} does not exist", param_hint="--feature")
        ids.append(pk)
    return tuple(ids)


def _start(action: str, source: str | None, features: tuple[str, ...], sync: bool, **options: Any) -> None:
    if bool(source) == bool(features):
        raise click.UsageError(
            "give either --source MODEL/SOURCE or one or more --feature MODEL/SOURCE/INDEX"
        )
    _setup_django()
    from autointerp.batch import BatchParams, start_autointerp_batch  # noqa: PLC0415

    source_obj = _resolve_source(source) if source else None
    try:
        params = BatchParams(
            action=action,
            source_id=source_obj.pk if source_obj else None,  # type: ignore[arg-type]
            feature_ids=_resolve_features(features) if features else (),
            **options,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        job = start_autointerp_batch(params=params, run_now=sync)
    except ValueError as exc:  # e.g. no LLM provider configured: refused before a job exists
        raise click.UsageError(str(exc)) from None
    click.echo(f"job {job.pk} {job.status}: {job.title}")
    click.echo(f"progress: /jobs/{job.pk}/")
    if sync and job.status != "DONE":
        click.echo(f"error: {job.error}", err=True)
        sys.exit(1)


_common = [
    click.option("--source", help="MODEL/SOURCE, e.g. gpt2-small/6-res-jb"),
    click.option("--feature", "features", multiple=True, help="MODEL/SOURCE/INDEX (repeatable)"),
    click.option(
        "--explainer",
        "explainer_type",
        type=click.Choice(EXPLAINER_CHOICES),
        default="np_max-act-logits",
        show_default=True,
    ),
    click.option(
        "--model",
        default="smollm2-135m-instruct",
        show_default=True,
        help="explainer LLM: smollm2-135m-instruct runs locally; anything else goes to the "
        "configured OpenAI-compatible endpoint",
    ),
    click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True),
    click.option("--rpm", type=click.IntRange(0), default=0, help="requests per minute (0: no limit)"),
    click.option("--max-retries", type=click.IntRange(0, 20), default=4, show_default=True),
    click.option("--limit", type=click.IntRange(1), default=None, help="only the first N features"),
    click.option("--sync", is_flag=True, help="run here instead of enqueueing on the default queue"),
]


def _with_common(fn: Any) -> Any:
    for option in reversed(_common):
        fn = option(fn)
    return fn


@click.group(name="autointerp")
def autointerp() -> None:
    """Explain and score features in bulk (jobs appear on /jobs/)."""


@autointerp.command()
@_with_common
@click.option("--no-embed", is_flag=True, help="do not embed the new explanations")
def explain(
    source: str | None, features: tuple[str, ...], sync: bool, no_embed: bool, **options: Any
) -> None:
    """Write explanations for a source or for given features (skips ones already explained)."""
    _start("explain", source, features, sync, embed=not no_embed, **options)


@autointerp.command(name="score")
@_with_common
@click.option("--scorer", "score_types", multiple=True, type=click.Choice(SCORE_CHOICES), required=True)
@click.option("--scorer-model", default=None, help="LLM for detection/fuzzing (default: NP_SCORER_MODEL)")
def score_cmd(source: str | None, features: tuple[str, ...], sync: bool, **options: Any) -> None:
    """Score the explanations of (explainer, model) for a source or features (skips DONE scores)."""
    _start("score", source, features, sync, **options)


@autointerp.command(name="explainers")
def list_explainers() -> None:
    """List explainers, scorers and embedders."""
    from features.embedders_registry import EMBEDDERS  # noqa: PLC0415

    click.echo("explainers: " + ", ".join(EXPLAINER_CHOICES))
    click.echo("scorers:    " + ", ".join(SCORE_CHOICES))
    click.echo("embedders:  " + ", ".join(f"{s.name} ({s.dimensions}-d)" for s in EMBEDDERS.values()))


def register(cli_group: Any = None) -> None:
    """Add the `autointerp` sub-command to Celery's command line (idempotent)."""
    if cli_group is None:
        from celery.bin.celery import celery as cli_group  # noqa: PLC0415
    if "autointerp" not in cli_group.commands:
        cli_group.add_command(autointerp)
