"""The process-wide chunk-store backend and each customer's view of it.

``customer_store(customer)`` gives the customer's namespace and (unwrapped) data key: every
read and write of chunks goes through a ``StoreHandle``, so encryption and the namespace are
applied in one place.
"""

import secrets
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, transaction

from storage.models import CustomerStore
from storage.store import blob as blobs
from storage.store.backends import ChunkBackend, backend_from_settings
from storage.store.errors import BlobKeyError
from storage.store.keys import Keyring, new_data_key

# Upper bound for one decoded chunk: a blob claiming more is corrupt (or a bomb).
MAX_CHUNK_SIZE = 64 * 1024 * 1024


@lru_cache(maxsize=1)
def _backend(url: str, data_dir: str, fsync: bool) -> ChunkBackend:
    from pathlib import Path

    return backend_from_settings(url, Path(data_dir), fsync)


def backend() -> ChunkBackend:
    return _backend(settings.STORE_URL, str(settings.DATA_DIR), settings.STORE_FSYNC)


@lru_cache(maxsize=4)
def _keyring(value: str) -> Keyring | None:
    return Keyring.from_env(value) if value else None


def keyring() -> Keyring | None:
    return _keyring(settings.STORE_MASTER_KEYS)


class StoreKeyUnavailable(RuntimeError):
    """The customer's store is encrypted and the configured master keys cannot unwrap its
    data key (ACURA_MASTER_KEYS unset, or the wrapping master was dropped): an operator
    problem, reported as such instead of as damaged data."""


@dataclass(frozen=True)
class StoreHandle:
    """One customer's namespace in the backend, with its data key (None: unencrypted)."""

    namespace: str
    data_key: bytes | None
    backend: ChunkBackend

    def put_blob(self, digest_hex: str, blob: bytes) -> None:
        self.backend.put_chunk(self.namespace, digest_hex, blob)

    def read_chunk(self, digest_hex: str) -> bytes:
        """The plaintext of a chunk, CRC-, key- and digest-checked."""
        raw = self.backend.get_chunk(self.namespace, digest_hex)
        return blobs.decode_blob(
            raw, bytes.fromhex(digest_hex), key=self.data_key, max_size=MAX_CHUNK_SIZE
        )

    def encode_frame(self, digest: bytes, frame: bytes, plain: bytes) -> bytes:
        """The blob for an uploaded chunk: the agent's zstd frame when it is smaller."""
        return blobs.encode_uploaded(frame, plain, digest, key=self.data_key)


def _create_store(customer) -> CustomerStore:
    ring = keyring()
    namespace = secrets.token_hex(16)
    wrapped = ring.wrap(new_data_key(), namespace) if ring else None
    try:
        with transaction.atomic():
            return CustomerStore.objects.create(
                customer=customer, namespace=namespace, wrapped_data_key=wrapped
            )
    except IntegrityError:  # another process created it first
        return CustomerStore.objects.get(customer=customer)


def customer_store(customer) -> StoreHandle:
    store = CustomerStore.objects.filter(customer=customer).first() or _create_store(customer)
    data_key = None
    if store.wrapped_data_key:
        ring = keyring()
        if ring is None:
            raise StoreKeyUnavailable(
                f"The store of {customer} is encrypted but ACURA_MASTER_KEYS is not set."
            )
        try:
            data_key = ring.unwrap(bytes(store.wrapped_data_key), store.namespace)
        except BlobKeyError as exc:
            raise StoreKeyUnavailable(
                f"The data key of {customer}'s store cannot be unwrapped with ACURA_MASTER_KEYS: "
                f"{exc}."
            ) from None
    return StoreHandle(store.namespace, data_key, backend())
