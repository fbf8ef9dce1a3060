import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from clusters.services import users


class Command(BaseCommand):
    help = "Create the first admin user with a random password, printed once; no-op if one exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin user exists already; log in with it.")
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(None, username, password)
        # Printed once and stored only as a hash: whoever runs `make run` first must keep it.
        self.stdout.write(
            self.style.SUCCESS(f"Created admin user '{username}' with password: {password}")
        )
        self.stdout.write("It is shown only this once. Change it under /admin/ if you like.")
