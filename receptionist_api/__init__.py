"""The receptionist API v1 (../shared/RECEPTIONIST_API.md): what the voice agent calls."""
