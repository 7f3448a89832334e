"""The Nextech adapter: Nextech's Select API (FHIR STU3) behind our EHR operations.

config.py     NextechConfig: one practice's connection (URLs, practice id, service user)
auth.py       TokenManager: password grant + refresh, shared through Redis
governor.py   RateGovernor: 20 requests/s per user per endpoint, shared through Redis
resources.py  FHIR STU3 resources built and parsed with fhir.resources, and our types
client.py     NextechClient: one HTTP call with governor, auth, retries, error mapping
adapter.py    NextechAdapter: reads, find-or-prepare patient, book, cancel, note, changes
errors.py     the typed failures callers act on (credentials need a reset, slot taken)
"""
