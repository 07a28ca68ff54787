"""Webhooks: a project's events POSTed, signed, to the URLs its admins register.

| module | concept |
|---|---|
| ``targets`` | which URLs may be targets: http(s) only, every resolved address public (SSRF) |
| ``signing`` | secrets and the Standard Webhooks signature (HMAC-SHA256 over id, time, body) |
| ``registry`` | register, pause, resume, rotate the secret of, remove a webhook; redeliver |
| ``follow`` | the dispatcher: the log turned into deliveries, exactly once per event |
| ``delivery`` | one attempt of a delivery under a lease, its record, backoff and giving up |
"""
