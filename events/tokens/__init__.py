"""Events API tokens: how a team's event stream proves who it is.

- secret.py: the token format (`cnv_` + random + checksum), its digest and hint, and hiding tokens in text.
- authentication.py: a request's token -> the live token, or a 401/403; lookup.py caches the look-up.
- services.py (every write: create, revoke, enable the API), selectors.py, forms.py, views.py: Settings → Events
  API, and the "Token created" page that shows a new token once.

The rule a newcomer must know: a token's plaintext exists only in the one response that creates it and in the
client that sends it. Canvas stores its SHA-256 digest and a hint (`cnv_…wXyZ`), and shows the hint in place
of any token it finds in what it stores or logs.
"""
