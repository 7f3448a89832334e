from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Practices, locations, users and memberships.

    The label stays "portal": the models' tables, migration history and AUTH_USER_MODEL
    ("portal.User") were named when this code lived in the portal package.
    """

    name = "accounts"
    label = "portal"
    verbose_name = "Accounts: practices, locations, users"
