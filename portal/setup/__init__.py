"""The practice manager's set-up pages: go-live checklist and test scenarios, API clients for the
voice agent, configuration download and upload (issue 8). Views in `views.py`, forms in
`forms.py`, the writes they need in `services.py`; the checklist itself is `portal.golive`."""
