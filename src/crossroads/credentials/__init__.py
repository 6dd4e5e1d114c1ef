"""Credential records and the stores that keep them."""

from crossroads.credentials.base import Change, Conflict, Record, Store, StoreError

__all__ = ["Change", "Conflict", "Record", "Store", "StoreError"]
