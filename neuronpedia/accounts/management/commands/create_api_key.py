from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from neuronpedia.accounts.services import create_api_key


class Command(BaseCommand):
    help = "Create (or rotate) an API key for a user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="default", help="key name; an active key of the "
                            "same name is revoked (rotation)")
        parser.add_argument("--higher-limits", action="store_true",
                            help="allow-list the key for the higher rate-limit tier (NP_RATE_LIMITS_HIGHER)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        try:
            key, raw = create_api_key(user=user, name=options["name"])
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        if options["higher_limits"]:
            key.higher_limits = True
            key.save(update_fields=["higher_limits"])
        self.stdout.write(raw)
        tier = ", higher rate-limit tier" if key.higher_limits else ""
        self.stderr.write(f"created key {key.prefix}… for {user.username}{tier} (shown once)")
