from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Practices, locations, users and memberships.

    The label stays "portal": the models' tables, migration history and AUTH_USER_MODEL
    ("portal.User") were named when this code lived in the portal package.
    """

    name = "accounts"
    label = "portal"
    verbose_name = "Accounts: practices, locations, users"
    # Change entries for these (who changed a practice, a location, a membership): accounts is
    # below compliance and cannot call compliance.audit.register_model, so compliance registers
    # the models each app names here. Users are not audited here: sign-in events are.
    audited_models = ("Practice", "Location", "Membership")
