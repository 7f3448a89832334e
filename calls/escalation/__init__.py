"""Escalation protocols, the on-call rota and screening (issue 7, part B).

`matching` reads caller words into clinical concepts (pure), `screening.screen` applies the live
protocols, `selectors` reads, `services` writes, `api` is the receptionist API's screen endpoint,
`views` the portal pages.
"""
