"""`crossroads auth migrate` and `crossroads auth rotate-key`."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from crossroads import config as config_module
from crossroads.credentials.base import CorruptRecord, Record, Store, StoreError, problems_of
from crossroads.credentials.crypto import (
    KEY_ENV,
    EncryptedStore,
    Key,
    KeyProblem,
    Keyring,
    key_file_from,
    read_key_file,
    reencrypt_all,
    write_key_file,
)
from crossroads.credentials.select import open_spec, settings_of

SPEC_HELP = ("A store: 'config' (the configured one), a folder path or file:PATH, postgres://...?schema=S, "
             "git:URL-OR-PATH, s3://BUCKET/PREFIX?endpoint=URL")
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Path to config.yaml.")]


@dataclass(slots=True)
class MigrationReport:
    copied: int = 0
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    config: str = "none in source"

    def lines(self, total: int) -> list[str]:
        out = [f"accounts: {total} in source, {self.copied} copied, {self.unchanged} already up to date, "
               f"{len(self.failed)} failed", f"config: {self.config}"]
        out += [f"  failed: {record_id}: {cause}" for record_id, cause in sorted(self.failed.items())]
        return out


async def migrate(source: Store, target: Store, local_config: str | None = None) -> tuple[int, MigrationReport]:
    """Copy every record and the config from ``source`` to ``target`` and verify
    each copy. Idempotent: records already equal are left alone."""
    report = MigrationReport()
    records = await source.list()
    report.failed.update(problems_of(source))
    for record in records:
        try:
            existing = await target.get(record.id)
            if existing is not None and existing.data == record.data:
                report.unchanged += 1
                continue
            await target.put(Record(record.id, record.data),
                             expected_version=existing.version if existing is not None else 0)
            copied = await target.get(record.id)
            if copied is None or copied.data != record.data:
                raise StoreError("the copy read back differs from the source")
            report.copied += 1
        except (StoreError, CorruptRecord) as exc:
            report.failed[record.id] = str(exc)
    text = await source.read_config()
    if text is None:
        text = local_config
    if text is not None:
        try:
            if await target.read_config() == text:
                report.config = "already up to date"
            else:
                await target.write_config(text)
                report.config = "copied" if await target.read_config() == text else "FAILED verification"
                if report.config.startswith("FAILED"):
                    report.failed["config"] = "the config read back differs from the source"
        except StoreError as exc:
            report.config = f"not copied ({exc})"
    return len(records), report


def _load_config(path: Path | None) -> config_module.Config | None:
    if path is None:
        return None
    try:
        return config_module.load(path)
    except config_module.ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer, auth_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @auth_app.command("migrate")
    def migrate_command(
        source: Annotated[str, typer.Option("--from", help=SPEC_HELP)],
        target: Annotated[str, typer.Option("--to", help=SPEC_HELP)],
        config: ConfigOption = None,
    ) -> None:
        """Copy every account and the config between two stores, verify, report counts (idempotent)."""
        cfg = _load_config(config)
        local_text = config.read_text(encoding="utf-8") if config is not None else None

        async def run() -> tuple[int, MigrationReport]:
            src = open_spec(source, cfg, config)
            dst = open_spec(target, cfg, config)
            try:
                return await migrate(src, dst, local_text)
            finally:
                await src.close()
                await dst.close()

        try:
            total, report = asyncio.run(run())
        except (StoreError, KeyProblem) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        for line in report.lines(total):
            typer.echo(line)
        if report.failed:
            raise typer.Exit(1)

    @auth_app.command("rotate-key")
    def rotate_key(
        config: ConfigOption = None,
        key_file: Annotated[Path | None, typer.Option(
            "--key-file", help="Key file to rotate (created when missing: this turns encryption on).")] = None,
        retire_old: Annotated[bool, typer.Option(
            "--retire-old", help="Drop the old keys once every record uses the new one.")] = False,
    ) -> None:
        """Make a new encryption key and re-encrypt every stored credential with it."""
        cfg = _load_config(config)
        settings = settings_of(cfg)
        path = key_file or key_file_from(settings, os.environ)
        from_env = os.environ.get(KEY_ENV, "").strip()
        try:
            if path is not None:
                old = read_key_file(path) if path.exists() else []
            elif from_env:
                old = Keyring([Key.parse(p, f"${KEY_ENV}") for p in from_env.split(",") if p.strip()]).keys
            else:
                typer.echo("error: no key file: pass --key-file PATH (or set store.key-file / "
                           "$CROSSROADS_STORE_KEY_FILE)", err=True)
                raise typer.Exit(2)
        except KeyProblem as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        new = Key.generate()
        keyring = Keyring([new, *old])
        if path is not None:
            # Written first: a crash during re-encryption leaves a keyring that reads every record.
            write_key_file(path, keyring.keys)

        async def run() -> tuple[int, int, dict[str, str]]:
            store = open_spec("config", cfg, config)
            inner = store.inner if isinstance(store, EncryptedStore) else store
            try:
                report = await reencrypt_all(inner, keyring)
            finally:
                await store.close()
            return report.rewritten, report.current, report.failed

        try:
            rewritten, current, failed = asyncio.run(run())
        except StoreError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"new key {new.kid}: {rewritten} record(s) re-encrypted, {current} already current, "
                   f"{len(failed)} failed")
        for record_id, cause in sorted(failed.items()):
            typer.echo(f"  failed: {record_id}: {cause}")
        if path is None:
            typer.echo(f"set {KEY_ENV}={','.join(k.encoded() for k in keyring.keys)}")
        elif retire_old and not failed and old:
            write_key_file(path, [new])
            typer.echo(f"retired {len(old)} old key(s) from {path}")
        elif retire_old and failed:
            typer.echo("old keys kept: some records were not re-encrypted")
        if failed:
            raise typer.Exit(1)
