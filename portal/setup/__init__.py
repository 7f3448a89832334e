"""The practice manager's set-up pages: go-live checklist and test scenarios, API clients for the
voice agent, configuration download and upload. Views in `views.py`, forms in `forms.py`, the
scenario and API client writes in `services.py`; the configuration file's import and export are
`onboarding.services`, the checklist itself is `portal.golive`."""
