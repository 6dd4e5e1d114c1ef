"""Subscription logins and the token lifecycle.

- ``settings``: per-provider OAuth endpoints, client ids and refresh leads
  (overridable with the ``oauth-endpoints`` config key).
- ``tokens``: where each auth-file ``type`` keeps its tokens and expiry.
- ``oauth``: token-endpoint requests (form or JSON) and their errors.
- ``refresher``: single-flight, crash-safe refresh of stored credentials.
- ``pkce``, ``callback``, ``device``, ``flows``: the login flows, independent
  of the CLI so the management API can drive them too.
"""
