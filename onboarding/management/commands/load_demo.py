from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from onboarding.demo import DemoLoadFailed, load_demo


class Command(BaseCommand):
    help = "Load the demo practices and one demo user per role (local development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password-file",
            default=str(Path(settings.BASE_DIR) / ".local" / "demo-password"),
            help="Where the demo password is kept between runs (git-ignored).",
        )

    def handle(self, *args, password_file: str, **options):
        if not (settings.DEBUG or settings.TESTING):
            raise CommandError("Demo data is for local development: run with DEBUG=true.")
        path = Path(password_file)
        existing = path.read_text().strip() if path.exists() else None
        try:
            password, logins = load_demo(existing)
        except DemoLoadFailed as exc:
            raise CommandError(f"Demo data not loaded: {exc}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(logins)} demo users."))
        for login in logins:
            self.stdout.write(f"  {login.username:<42} {login.role:<20} {login.practice}")
        self.stdout.write(f"Password for every demo user: {password}")
