from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clusters import roles
from clusters.models import ApiToken


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
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username)
                user.set_unusable_password()
                try:
                    user.full_clean(exclude=["password"])
                except ValidationError as e:
                    raise CommandError("; ".join(e.messages)) from None
                user.save()
                roles.assign(user, role or roles.VIEWER)
                self.stdout.write(f"Created user '{username}'.")
            elif role:
                if user.is_superuser and role != roles.ADMIN:
                    raise CommandError(
                        f"'{username}' is a superuser and acts as admin whatever the role; "
                        "use another user for a narrower token."
                    )
                roles.assign(user, role)
            elif not user.is_active:
                raise CommandError(f"'{username}' is inactive: a token for them would not work.")
            token, key = ApiToken.issue(user, name=name)
        current = roles.role_of(user) or "none (the token will be refused: give a --role)"
        self.stdout.write(f"Role of '{username}': {current}.")
        # Only the hash is stored: this is the one time the key can be seen.
        self.stdout.write(self.style.SUCCESS(key))
        self.stdout.write(
            f"Shown only this once (token {token.prefix}...). Send it as 'Authorization: Token "
            "<key>'."
        )
