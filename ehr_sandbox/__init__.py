"""A stand-alone stand-in for the NexHealth Synchronizer API (the "EHR sandbox").

It runs as its own process (``python -m ehr_sandbox --port 8100``) with its own storage
and never imports Django or any portal module: the portal must reach it only over HTTP, exactly as
it would reach the real API. See ``README.md`` in this folder for the contract it implements.
"""

__all__ = ["__version__"]

__version__ = "1.0.0"
