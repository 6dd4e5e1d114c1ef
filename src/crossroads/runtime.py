"""The one object a server owns for as long as it runs.

Guarantees:
- everything long-lived is built once, here: the upstream transport, the
  shared state, account health, session affinity, the usage ledger, client-key
  windows, selection cursors, the token refresher, logins in progress and the
  credential store, and the observer (request log, metrics, usage database);
  nothing of it lives in module globals;
- what a config decides lives on the current :class:`~crossroads.snapshot.Snapshot`;
  ``adopt`` swaps it in one assignment, after the candidate was built and
  validated without touching anything live (so a rejected config changes
  nothing);
- a reload or a credential write never resets client-key limits, cursors,
  health or affinity: they are keyed by client key, pool and credential
  identity, not by the snapshot that happened to be current;
- side services (their health, model lists, request queues and child
  processes) live on ``services``; a change of a service's health or model
  list rebuilds the snapshot from the same config and credentials;
- settings that only apply at start (listen address, port, store, state
  backend) are reported when a reload changes them, never silently ignored.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Sequence

from crossroads import snapshot as snapshots
from crossroads import usage
from crossroads.access.lockout import Lockout
from crossroads.access.management_secret import SecretCheck
from crossroads.access.policy import Limiter, budget_window
from crossroads.auth.pending import Logins
from crossroads.auth.refresher import Refresher
from crossroads.config import Config, ConfigError
from crossroads.credentials.base import Record, Store
from crossroads.images import ImageFetcher
from crossroads.inflight import InFlight
from crossroads.observe import Observer
from crossroads.observe.alerts import Budget, Facts
from crossroads.observe.metrics import Gauges
from crossroads.providers import Provider, all_providers
from crossroads.redaction import Redaction
from crossroads.routing.health import Health
from crossroads.routing.selection import Selector, make_strategy
from crossroads.routing.sticky import Affinity
from crossroads.routing.windows import RequestWindows
from crossroads.services.book import SideServices, service_handles
from crossroads.snapshot import Snapshot
from crossroads.state import open_state
from crossroads.transport import Transport

log = logging.getLogger("crossroads")


class Runtime:
    def __init__(self, config: Config, providers: Sequence[Provider] | None = None) -> None:
        self.providers: Sequence[Provider] = providers if providers is not None else all_providers()
        self.refresher = Refresher(oauth=lambda: self.snapshot.oauth)
        self.transport = Transport(config.timeouts, config.proxy_url)
        self.services = SideServices(self.transport, on_change=self.rebuild)  # started by the server's lifespan
        self._records: list[Record] = []  # the credentials applied last (a rebuild keeps them)
        self.snapshot: Snapshot = self.build(config)
        self.services.sync(service_handles(self.snapshot.accounts))
        self.state = open_state(config.state)  # started/closed by the server's lifespan
        self.health = Health(config.transient_cooldown, self.state)
        self.affinity = Affinity(config.session_affinity_ttl, self.state)
        self.ledger = usage.Ledger(state=self.state)
        self.limiter = Limiter(config.key_policies, self.state)
        self.selector = Selector(self.health, make_strategy(config.routing_strategy, self._replica_number),
                                 self.affinity, config.routing_strategy)
        self.images = ImageFetcher(config.image_fetch)
        self.request_windows = RequestWindows()
        self.client_lockout = Lockout(config.lockout)  # wrong client keys, per address
        self.management_lockout = Lockout(config.lockout)  # wrong management secrets, per address
        self.management_check = SecretCheck(config.auth_dir)  # plain or bcrypt-hashed management secret
        self.logins = Logins()
        self.store: Store | None = None  # opened by the server at start
        self.redaction = Redaction(self.snapshot.secrets)  # installed on the log handlers by the server
        self.inflight = InFlight()  # requests being answered: body deadlines, clients that leave
        self.listen_host = config.bind_host  # where the server listens (the command line may say otherwise)
        self.observer = Observer(lambda: self.snapshot.config, lambda: self.redaction.redactor,
                                 self._gauges)  # started by the server
        self.refresher.on_result = self.observer.metrics.refreshed
        self.observer.alerts.facts = self._alert_facts

    def _replica_number(self) -> int:
        return self.state.replica_number

    def _alert_facts(self) -> Facts:
        now = time.time()
        return Facts([(c.id, c.type) for c in self.refresher.credentials.values() if c.status == "needs_login"],
                     self.services.report() if len(self.services) else [],
                     [Budget(self.observer.client_name(p.key), p.budget_tokens, *budget_window(p, now))
                      for p in self.config.key_policies.values() if p.budget_tokens])

    def _gauges(self) -> Gauges:
        labels = {account.id: account.label for account in self.snapshot.accounts}
        cooling = [labels.get(account, account) for account, _model in self.health.snapshot()]
        return Gauges(cooling, self.transport.connections(), self.services.queues() if len(self.services) else {})

    @property
    def config(self) -> Config:
        return self.snapshot.config

    def build(self, config: Config, records: Iterable[Record] = ()) -> Snapshot:
        """A snapshot of ``config`` (raises ConfigError); nothing live changes."""
        return snapshots.build(config, records, self.providers, self.refresher, self.services)

    def vet(self, candidate: Snapshot) -> None:
        """Refuse (ConfigError) a config that would open the door: one without
        client keys or without the management secret that the running one has,
        while the server listens beyond loopback (a truncated or mistyped file
        must not turn a protected router into an open one)."""
        config, previous = candidate.config, self.snapshot.config
        if _is_loopback(self.listen_host):
            return
        lost = []
        if previous.api_keys and not config.api_keys:
            lost.append("every client key (api-keys)")
        if previous.management_secret and not config.management_secret:
            lost.append("the management secret (remote-management.secret-key)")
        if lost:
            raise ConfigError(
                f"{config.source}: refused: it removes {' and '.join(lost)} while the server listens on "
                f"{self.listen_host}, which would open it to anyone; the running config stays. To run "
                "without them, restart the server bound to 127.0.0.1")

    def adopt(self, candidate: Snapshot) -> None:
        """Make ``candidate`` current (after ``vet``): the long-lived parts take
        its settings, then new requests see it."""
        self.vet(candidate)
        config, previous = candidate.config, self.snapshot.config
        for key in previous.restart_changes(config):
            log.warning("config: '%s' changed (%r -> %r); it takes effect after a restart, the running "
                        "server keeps %r", key, previous.raw.get(key), config.raw.get(key),
                        _current(previous, key))
        self.transport.configure(config.timeouts, config.proxy_url)
        self.health.transient_cooldown = config.transient_cooldown
        self.affinity.ttl = config.session_affinity_ttl
        self.limiter.configure(config.key_policies)
        self.selector.use_strategy(config.routing_strategy, self._replica_number)
        self.images.configure(config.image_fetch)
        self.client_lockout.policy = self.management_lockout.policy = config.lockout
        self.redaction.update(candidate.secrets)
        self.snapshot = candidate
        self.services.sync(service_handles(candidate.accounts))
        self.observer.configure()

    def apply(self, config: Config, records: Iterable[Record] = ()) -> None:
        """Build and adopt in one step (raises ConfigError, leaving all as it was)."""
        records = list(records)
        self.adopt(self.build(config, records))
        self._records = records

    def rebuild(self) -> None:
        """The same config and credentials again (a side service's health or
        model list changed, so its routes did)."""
        try:
            self.apply(self.config, self._records)
        except ConfigError as exc:  # cannot happen for a config that was applied; never fail a health check
            log.error("rebuilding routes failed: %s", exc)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _current(config: Config, key: str) -> object:
    if key == "host":
        return config.bind_host
    if key == "port":
        return config.port
    return config.raw.get(key)
