"""Factories for the scheduling models. Like every tenant factory they create rows under
`cross_tenant` (test setup spans practices); many-to-many hooks do the same."""

from __future__ import annotations

from datetime import time, timedelta

import factory
from django.utils import timezone

from core.tenancy import cross_tenant
from scheduling.models import (
    Appointment,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from tests.factories import LocationFactory, PracticeFactory, TenantFactory


def _link(manager, items) -> None:
    if items:
        with cross_tenant("test data setup"):
            manager.set(items)


class ProviderFactory(TenantFactory):
    class Meta:
        model = Provider

    practice = factory.SubFactory(PracticeFactory)
    key = factory.Sequence(lambda n: f"provider-{n}")
    name = factory.Sequence(lambda n: f"Dr. Provider {n}")
    accepts_new_patients = True
    on_call_phone = ""


class OperatoryFactory(TenantFactory):
    class Meta:
        model = Operatory

    practice = factory.SubFactory(PracticeFactory)
    location = factory.SubFactory(LocationFactory, practice=factory.SelfAttribute("..practice"))
    key = factory.Sequence(lambda n: f"op-{n}")
    name = factory.Sequence(lambda n: f"Operatory {n}")
    capabilities = factory.LazyFunction(list)


class AppointmentDescriptorFactory(TenantFactory):
    class Meta:
        model = AppointmentDescriptor

    practice = factory.SubFactory(PracticeFactory)
    location = factory.SubFactory(LocationFactory, practice=factory.SelfAttribute("..practice"))
    code = factory.Sequence(lambda n: f"D{1000 + n}")


class AppointmentTypeFactory(TenantFactory):
    """`AppointmentTypeFactory(phrases=["nose job"], providers=[p])`."""

    class Meta:
        model = AppointmentType
        skip_postgeneration_save = True

    practice = factory.SubFactory(PracticeFactory)
    key = factory.Sequence(lambda n: f"type-{n}")
    name = factory.Sequence(lambda n: f"Appointment type {n}")
    minutes = 30
    new_patients = True
    existing_patients = True
    required_capabilities = factory.LazyFunction(list)

    @factory.post_generation
    def phrases(self, create, extracted, **kwargs):
        if create and extracted:
            with cross_tenant("test data setup"):
                for text in extracted:
                    CallerPhrase.objects.create(
                        practice=self.practice, appointment_type=self, text=text
                    )

    @factory.post_generation
    def providers(self, create, extracted, **kwargs):
        if create:
            _link(self.providers, extracted)

    @factory.post_generation
    def descriptors(self, create, extracted, **kwargs):
        if create:
            _link(self.descriptors, extracted)


class CallerPhraseFactory(TenantFactory):
    class Meta:
        model = CallerPhrase

    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    practice = factory.SelfAttribute("appointment_type.practice")
    text = factory.Sequence(lambda n: f"phrase {n}")


class WorkingHourFactory(TenantFactory):
    """`WorkingHourFactory(provider=p, operatory=o, appointment_types=[t])`."""

    class Meta:
        model = WorkingHour
        skip_postgeneration_save = True

    practice = factory.SubFactory(PracticeFactory)
    provider = factory.SubFactory(ProviderFactory, practice=factory.SelfAttribute("..practice"))
    operatory = factory.SubFactory(OperatoryFactory, practice=factory.SelfAttribute("..practice"))
    days = factory.LazyFunction(lambda: ["Monday", "Wednesday"])
    begin = time(9)
    end = time(17)

    @factory.post_generation
    def appointment_types(self, create, extracted, **kwargs):
        if create:
            _link(self.appointment_types, extracted)


class BlockFactory(TenantFactory):
    class Meta:
        model = Block

    practice = factory.SubFactory(PracticeFactory)
    location = factory.SubFactory(LocationFactory, practice=factory.SelfAttribute("..practice"))
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
    reason = "Staff meeting"


class AppointmentFactory(TenantFactory):
    class Meta:
        model = Appointment

    practice = factory.SubFactory(PracticeFactory)
    provider = factory.SubFactory(ProviderFactory, practice=factory.SelfAttribute("..practice"))
    operatory = factory.SubFactory(OperatoryFactory, practice=factory.SelfAttribute("..practice"))
    location = factory.SelfAttribute("operatory.location")
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=30))


class ProviderRuleFactory(TenantFactory):
    class Meta:
        model = ProviderRule
        skip_postgeneration_save = True

    practice = factory.SubFactory(PracticeFactory)
    provider = factory.SubFactory(ProviderFactory, practice=factory.SelfAttribute("..practice"))
    days = factory.LazyFunction(lambda: ["Tuesday"])
    begin = time(12)
    end = time(17)

    @factory.post_generation
    def appointment_types(self, create, extracted, **kwargs):
        if create:
            _link(self.appointment_types, extracted)


# --- go-live scenarios and bookings for the dashboard -------------------------------------------


class ScenarioFactory(TenantFactory):
    """A go-live test scenario (`scheduling.TestScenario`); not named Test* so pytest leaves it."""

    class Meta:
        model = "scheduling.TestScenario"

    practice = factory.SubFactory(PracticeFactory)
    sentence = factory.Sequence(lambda n: f"caller sentence {n}")
    patient_status = "existing"
    expected_type = factory.SubFactory(
        AppointmentTypeFactory, practice=factory.SelfAttribute("..practice")
    )


class ReleasedHoldFactory(TenantFactory):
    """A hold that no longer claims its slot (so any number may overlap)."""

    class Meta:
        model = "scheduling.Hold"

    practice = factory.SubFactory(PracticeFactory)
    appointment_type = factory.SubFactory(
        AppointmentTypeFactory, practice=factory.SelfAttribute("..practice")
    )
    provider = factory.SubFactory(ProviderFactory, practice=factory.SelfAttribute("..practice"))
    operatory = factory.SubFactory(OperatoryFactory, practice=factory.SelfAttribute("..practice"))
    location = factory.SelfAttribute("operatory.location")
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=30))
    expires_at = factory.LazyFunction(timezone.now)
    status = "released"


class BookingFactory(TenantFactory):
    """`BookingFactory(practice=p, status="confirmed", attempts=1, created_at=...)`: a booking
    row as the pipeline leaves it (no EHR involved). `created_at` is applied after the insert
    (the column is auto_now_add)."""

    class Meta:
        model = "scheduling.Booking"
        skip_postgeneration_save = True

    practice = factory.SubFactory(PracticeFactory)
    appointment_type = factory.SubFactory(
        AppointmentTypeFactory, practice=factory.SelfAttribute("..practice")
    )
    provider = factory.SubFactory(ProviderFactory, practice=factory.SelfAttribute("..practice"))
    operatory = factory.SubFactory(OperatoryFactory, practice=factory.SelfAttribute("..practice"))
    location = factory.SelfAttribute("operatory.location")
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=30))
    hold = factory.SubFactory(
        ReleasedHoldFactory,
        practice=factory.SelfAttribute("..practice"),
        appointment_type=factory.SelfAttribute("..appointment_type"),
        provider=factory.SelfAttribute("..provider"),
        operatory=factory.SelfAttribute("..operatory"),
        start=factory.SelfAttribute("..start"),
        end=factory.SelfAttribute("..end"),
    )
    status = "pending"
    idempotency_key = factory.Sequence(lambda n: f"idem-{n}")
    request_fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    confirmed_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status == "confirmed" else None
    )

    @factory.post_generation
    def created_at(self, create, extracted, **kwargs):
        if create and extracted:
            with cross_tenant("test data setup"):
                type(self).objects.filter(pk=self.pk).update(created_at=extracted)
            self.created_at = extracted
