"""The EHR sandbox's Nextech surface: a stand-in for Nextech's Select API (FHIR STU3) and its
Azure AD token endpoint, in its own process with its own in-memory store.

``python -m ehr_sandbox.nextech --port 8200``; tests start it with ``testing.NextechServer``.
"""
