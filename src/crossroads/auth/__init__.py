"""Generic subscription-login machinery and the token lifecycle, driven by
the OAuth spec each subscription provider module declares (no provider is
named here; providers import this package, never the reverse).

- ``spec``: what a provider declares (:class:`~crossroads.auth.spec.OAuthSpec`,
  its settings and hook protocols).
- ``table``: the specs with one config's ``oauth-endpoints`` overrides applied.
- ``tokens``: where each auth-file layout keeps its tokens and expiry.
- ``oauth``: token-endpoint requests (form or JSON) and their errors.
- ``refresher``: single-flight, crash-safe refresh of stored credentials;
  ``grants``: the standard rotating refresh grant.
- ``pkce``, ``callback``, ``flows`` (browser), ``device``, ``discovery``:
  the login flows, independent of the CLI so the management API drives them
  too; ``pending``: a server's logins in progress; ``persist``: saving results.
"""
