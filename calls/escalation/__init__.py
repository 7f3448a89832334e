"""Escalation protocols, the on-call rota and screening.

`matching` reads caller words into clinical concepts (pure), `screening.screen` applies the live
protocols, `selectors` reads, `services` writes, `views` the portal pages (the receptionist
API's screen endpoint is `receptionist_api.screening`).
"""
