from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clusters import roles
from clusters.services import users
from clusters.services.errors import Refused


class Command(BaseCommand):
    help = (
        "Issue an API token for USERNAME and print it once. A missing user is created (with no "
        "password: an API-only account) and given --role, viewer unless told otherwise; an "
        "existing user keeps their role unless --role is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=roles.ROLES)
        parser.add_argument("--name", default="", help="What the token is for, e.g. prometheus.")

    def handle(self, *args, username, role, name, **options):
        User = get_user_model()
        # The user is the system (None): whoever runs this holds the database already. The rules
        # (a superuser stays an admin, an inactive user gets no token) are the services'.
        try:
            with transaction.atomic():
                user = User.objects.filter(username=username).first()
                if user is None:
                    user = users.create_user(None, username, None, role or roles.VIEWER)
                    self.stdout.write(f"Created user '{username}'.")
                elif role:
                    users.set_role(None, user, role)
                token, key = users.issue_api_token(None, user, name=name)
        except ValidationError as e:
            raise CommandError("; ".join(e.messages)) from None
        except Refused as e:
            raise CommandError(e.text) from None
        current = roles.role_of(user) or "none (the token will be refused: give a --role)"
        self.stdout.write(f"Role of '{username}': {current}.")
        # Only the hash is stored: this is the one time the key can be seen.
        self.stdout.write(self.style.SUCCESS(key))
        self.stdout.write(
            f"Shown only this once (token {token.prefix}...). Send it as 'Authorization: Token "
            "<key>'."
        )
