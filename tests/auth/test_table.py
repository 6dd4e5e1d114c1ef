"""The OAuth table: the providers' specs under a config's ``oauth-endpoints``,
and the seam rules (generic auth code, no provider names, no globals)."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

from crossroads.auth import tokens
from crossroads.auth.refresher import Refresher
from crossroads.auth.spec import OAuthSettings, OAuthSpec
from crossroads.auth.table import OAuthTable, UnknownOAuthType
from crossroads.credentials.base import Record
from crossroads.providers import all_providers, oauth_specs
from tests.auth.memstore import MemoryStore
from tests.auth.tables import oauth_table
from tests.fakes.oauth import FakeIdentity

SRC = Path(__file__).resolve().parents[2] / "src" / "crossroads"


def test_overrides_apply_per_type_and_keep_the_rest() -> None:
    table = oauth_table({"claude": {"token-url": "https://id.example/token/", "refresh-lead": 10,
                                    "scopes": "a b", "callback-port": "9999", "userinfo-url": "https://u"}})
    claude = table.settings("claude")
    assert claude.token_url == "https://id.example/token"  # trailing slash dropped
    assert claude.lead == 10.0 and claude.scopes == ("a", "b") and claude.callback_port == 9999
    assert claude.extra["userinfo-url"] == "https://u"
    assert claude.extra["paste-redirect-uri"].startswith("https://")  # defaults' extras kept
    assert claude.client_id == table.spec("claude").defaults.client_id
    assert table.overridden("claude") and not table.overridden("codex")
    assert table.settings("codex") is table.spec("codex").defaults
    assert oauth_table().settings("claude") is table.spec("claude").defaults  # tables are independent


@pytest.mark.parametrize(("section", "message"), [
    ([1], "'oauth-endpoints' must map a provider type to its endpoints"),
    ({"nope": {}}, "oauth-endpoints: unknown provider 'nope'; known: claude, "),
    ({"claude": "x"}, r"oauth-endpoints.claude must be a mapping"),
    ({"claude": {"token-url": "u", "headers": {"a": 1}}}, r"oauth-endpoints.claude.headers: expected a string"),
])
def test_bad_overrides_are_refused_clearly(section: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        OAuthTable.build(oauth_specs(), {"oauth-endpoints": section})


def test_lookups() -> None:
    table = oauth_table()
    assert set(table.kinds()) == {"claude", "codex", "gemini", "antigravity", "qwen", "kimi", "xai", "iflow",
                                  "vertex", "ctonew", "gemini-web"}
    names = {"claude": "claude", "anthropic": "claude", "codex": "codex", "codex-device": "codex",
             "gemini": "gemini", "gemini-cli": "gemini", "antigravity": "antigravity", "qwen": "qwen",
             "kimi": "kimi", "xai": "xai", "iflow": "iflow", "vertex": "vertex", "ctonew": "ctonew",
             "gemini-web": "gemini-web"}
    assert {name: spec.type for name, spec in table.login_names.items()} == names
    assert table.by_login_name("nope") is None
    codex = table.spec("codex")
    assert not codex.uses_device("codex") and codex.uses_device("codex-device") and codex.uses_device("codex", asked=True)
    assert table.spec("kimi").uses_device("kimi") and not table.spec("vertex").uses_device("vertex", asked=True)
    assert table.spec("vertex").memory_only and not table.spec("claude").memory_only
    with pytest.raises(UnknownOAuthType, match="no OAuth provider for auth type 'nope'; known: claude"):
        table.settings("nope")
    entry = table.entry("qwen")
    assert (entry.type, entry.settings, entry.overridden) == ("qwen", table.settings("qwen"), False)


def test_specs_are_declared_by_their_provider_modules() -> None:
    specs = {spec.type: spec for spec in oauth_specs()}
    for provider in all_providers():
        if provider.oauth is not None:
            assert provider.oauth is specs[provider.oauth.type]
            assert provider.oauth.type in provider.auth_types
    assert {p.oauth.type for p in all_providers() if p.oauth is not None} == set(specs)


def test_inconsistent_specs_are_refused() -> None:
    claude = next(spec for spec in oauth_specs() if spec.type == "claude")
    with pytest.raises(ValueError, match="login name 'claude' is declared by 'claude' and 'other'"):
        OAuthTable.build([claude, OAuthSpec("other", OAuthSettings("other"), ("claude",))], {})
    with pytest.raises(ValueError, match="two OAuth specs declare the auth type 'claude'"):
        OAuthTable.build([claude, claude], {})
    with pytest.raises(ValueError, match="its defaults are for 'b'"):
        OAuthSpec("a", OAuthSettings("b"), ("a",))
    with pytest.raises(ValueError, match="device login names without a device flow"):
        OAuthSpec("a", OAuthSettings("a"), ("a",), device_login_names=("a-device",))


async def test_refresher_uses_the_table_in_force_at_each_refresh() -> None:
    """A reload's new endpoints and leads apply to live credentials; the
    refresher holds no table of its own."""
    with FakeIdentity(client_id="test-client", encoding="json", expires_in=8 * 3600) as identity:
        grant = identity.issue()
        record = Record("claude-a", {"type": "claude", "access_token": grant.access_token,
                                     "refresh_token": grant.refresh_token,
                                     "expired": tokens.format_time(time.time() + 60)})
        store = MemoryStore(record)
        stored = await store.get("claude-a")
        assert stored is not None
        at_identity = {"claude": {"token-url": f"{identity.base_url}/oauth/token", "client-id": "test-client"}}
        in_force = [oauth_table({"claude": {**at_identity["claude"], "refresh-lead": 10}})]
        refresher = Refresher(store, oauth=lambda: in_force[0])
        credential = refresher.credential(stored)
        assert await credential.token() == grant.access_token  # 60 s left, 10 s lead: not due
        assert identity.refresh_calls == 0
        in_force[0] = oauth_table(at_identity)  # the reloaded config: Claude's 4 h lead
        fresh = await credential.token()
        assert fresh != grant.access_token and identity.refresh_calls == 1
        assert store.records["claude-a"].data["access_token"] == fresh


def _python_files(*relative: str) -> list[Path]:
    found: list[Path] = []
    for name in relative:
        path = SRC / name
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def test_generic_code_names_no_provider() -> None:
    names = {name for spec in oauth_specs() for name in (spec.type, *spec.all_login_names)}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b", re.I)
    for path in _python_files("auth", "commands/login.py", "frontdoors/management.py"):
        hits = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
        assert not hits, f"{path.relative_to(SRC)} names a provider: {hits}"


def test_auth_never_imports_providers() -> None:
    for path in _python_files("auth"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.startswith("crossroads.providers") for m in modules), path.name


def test_auth_modules_hold_no_mutable_state() -> None:
    """Module-level names in auth/ are constants: no dict/list/set literals or
    instances of the classes that hold state."""
    stateful = {"Refresher", "PendingLogins", "PendingDeviceLogins", "Logins", "dict", "list", "set"}
    for path in _python_files("auth"):
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is None:
                continue
            called = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else ""
            mutable = isinstance(value, ast.Dict | ast.List | ast.Set) or called in stateful
            assert not mutable, f"{path.name}:{node.lineno} keeps module-level mutable state"
