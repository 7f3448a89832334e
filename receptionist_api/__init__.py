"""The receptionist API v1 (docs/receptionist-api.md): what the voice agent calls."""
