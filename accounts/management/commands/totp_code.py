from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print a demo user's current TOTP code. Refuses unless DEBUG is on."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        if not settings.DEBUG:
            raise CommandError("totp_code only works with DEBUG=true (local demo accounts).")
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None:
            raise CommandError(f"{username} has no confirmed authenticator.")
        code = totp(
            device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift
        )
        self.stdout.write(f"{code:0{device.digits}d}")
