"""Factories for test data. Creating tenant rows is setup work across practices, so tenant
factories open `cross_tenant` explicitly; the code under test never gets that for free."""

from __future__ import annotations

import datetime as dt

import factory
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Location, Membership, Practice, Role, User
from core.tenancy import cross_tenant

PASSWORD = "correct horse battery staple"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with cross_tenant("test data setup"):
            return super()._create(model_class, *args, **kwargs)


class PracticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Practice
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"practice-{n}")
    name = factory.Sequence(lambda n: f"Practice {n}")
    timezone = "America/New_York"


class LocationFactory(TenantFactory):
    class Meta:
        model = Location

    practice = factory.SubFactory(PracticeFactory)
    key = factory.Sequence(lambda n: f"loc-{n}")
    name = factory.Sequence(lambda n: f"Office {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.SelfAttribute("username")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        """`UserFactory(totp=True)` gives the user a confirmed authenticator."""
        if create and extracted:
            TOTPDevice.objects.create(user=self, name="test", confirmed=True)
        self.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    practice = factory.SubFactory(PracticeFactory)
    role = Role.PRACTICE_MANAGER


SIGNED_PDF = b"%PDF-1.7\n% signed BAA\n%%EOF\n"


def sign_baa(practice: Practice) -> None:
    """An executed BAA in force since 2026-01-05: PHI may be processed for the practice."""
    from compliance import services as baa_services

    agreement = baa_services.create_draft(practice)
    baa_services.execute(
        agreement,
        signed_pdf=SIGNED_PDF,
        executed_on=dt.date(2026, 1, 5),
        effective_on=dt.date(2026, 1, 5),
        practice_signer_name="Dana Reyes",
        hello_signer_name="Sam Hello",
    )


def staff_member(practice: Practice, role: str, **user_fields) -> User:
    """A person with a confirmed authenticator who holds `role` in `practice`."""
    user = UserFactory(totp=True, **user_fields)
    MembershipFactory(user=user, practice=practice, role=role)
    return user
