from django.apps import AppConfig


class EhrConfig(AppConfig):
    """The EHR port and its adapters.

    The label stays "integrations": tables, migration history and task names were named when this
    code lived in the integrations package.
    """

    name = "ehr"
    label = "integrations"
    verbose_name = "EHR integrations"

    def ready(self) -> None:
        """Audited, the models that are configuration or credentials:

        - `EHRConnection`: how a location reaches its EHR and with which credentials. The API
          key and webhook secret are encrypted fields, so a change to them is recorded as
          "[encrypted]" -> "[encrypted]": that it changed, by whom, never the secret. Left out:
          `last_successful_sync_at`, `status_detail` and `updated_at`, which every sync rewrites
          (a change entry per sync would bury the real changes); `status` stays
          (connected/error transitions only produce an entry when the status actually changes).
        - `AppointmentTypeLink`: which EHR appointment type a booking of our type posts;
          rewritten by a sync only when the mapping changes.

        Not audited, on purpose:
        - `WebhookDelivery`: one row per inbound webhook (the hot path), itself the record of
          what the EHR sent and when it was processed; its PHI payload is encrypted at rest and
          only the system writes it. Reading a payload for a person is a PHI read (an access
          event).
        - `EHRVersion`: one row per EHR appointment, updated on every delivery: ordering
          bookkeeping (ids and timestamps), neither configuration nor PHI.
        - `ConnectionHealth`: dashboard counters flushed from Redis every few seconds.
        """
        from compliance.audit import register_model

        register_model(
            self.get_model("EHRConnection"),
            exclude_fields=["last_successful_sync_at", "status_detail", "updated_at"],
        )
        register_model(self.get_model("AppointmentTypeLink"))
