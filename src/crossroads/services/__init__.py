"""Side services: OpenAI-compatible programs that run next to Crossroads
(a browser-driving proxy, a web-session bridge) and are reached over HTTP.

The machinery here names no service: a provider module describes its
service as a :class:`~crossroads.services.spec.ServiceSpec`; the runtime's
:class:`~crossroads.services.book.SideServices` keeps, for as long as the
server runs, each service's health, its discovered models, its request queue
and (optionally) its supervised child process.
"""
