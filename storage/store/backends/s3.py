"""S3-compatible backend (AWS S3, MinIO, Ceph RGW, ...) through boto3.

Keys::

    <prefix><ns>/chunks/<hex[:4]>/<hex>            blobs (a 4-hex-char prefix spreads keys over
                                                   65,536 partitions for request-rate scaling)
    <prefix><ns>/objects/<name>                    index files etc.
    <prefix><ns>/quarantine/<hex>.<timestamp>      bad chunks (copy + delete), with
    <prefix><ns>/quarantine/<hex>.<timestamp>.reason

A PUT is atomic in S3 (readers see the old object or the new one), so no temp-object dance is
needed; an interrupted multipart upload is invisible to listings. One boto3 client is shared:
clients are thread-safe, sessions are not (hence a private session).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import BackendError, ChunkNotFound, NotFound, ObjectNotFound, StoreConfigError
from .base import (
    ChunkBackend,
    ChunkStat,
    ObjectStat,
    QuarantineStat,
    check_digest_hex,
    check_namespace,
    check_object_name,
    check_object_prefix,
)

_PREFIX = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_REASON_SUFFIX = ".reason"
#: Parallel HEAD requests for a "which chunks are missing" batch.
MISSING_QUERY_THREADS = 16


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


class S3Backend(ChunkBackend):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
    ):
        if not bucket:
            raise StoreConfigError("an S3 backend needs a bucket name")
        if not _PREFIX.fullmatch(prefix):
            raise StoreConfigError(f"S3 prefix {prefix!r} must be empty or end with '/'")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=MISSING_QUERY_THREADS * 2,
            # Custom endpoints (MinIO, moto, RGW) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        session = boto3.session.Session()
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Backend({self.bucket!r}, prefix={self.prefix!r}{where})"

    # -- keys -----------------------------------------------------------------------------

    def _base(self, ns: str) -> str:
        return f"{self.prefix}{check_namespace(ns)}/"

    def _chunk_key(self, ns: str, digest_hex: str) -> str:
        check_digest_hex(digest_hex)
        return f"{self._base(ns)}chunks/{digest_hex[:4]}/{digest_hex}"

    def _object_key(self, ns: str, name: str) -> str:
        return f"{self._base(ns)}objects/{check_object_name(name)}"

    @contextmanager
    def _errors(self, what: str, not_found: type[NotFound] | None = None):
        """Translate boto errors: a missing key → ``not_found``, anything else → BackendError."""
        try:
            yield
        except ClientError as exc:
            if not_found is not None and _not_found(exc):
                raise not_found(f"{what} not found") from None
            raise BackendError(f"S3 error on {what}: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"S3 error on {what}: {exc}") from exc

    def _list(self, prefix: str) -> Iterator[dict]:
        with self._errors(f"listing {prefix}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", ())

    def _get(self, key: str, what: str, not_found: type[NotFound]) -> bytes:
        with self._errors(what, not_found):
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _put(self, key: str, data: bytes, what: str) -> None:
        with self._errors(what):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def _delete(self, key: str, what: str) -> None:
        with self._errors(what):  # S3 answers 204 for a missing key as well
            self._client.delete_object(Bucket=self.bucket, Key=key)

    # -- chunks ---------------------------------------------------------------------------

    def put_chunk(self, ns: str, digest_hex: str, blob: bytes) -> None:
        self._put(self._chunk_key(ns, digest_hex), blob, f"chunk {digest_hex}")

    def get_chunk(self, ns: str, digest_hex: str) -> bytes:
        key = self._chunk_key(ns, digest_hex)
        return self._get(key, f"chunk {digest_hex}", ChunkNotFound)

    def delete_chunk(self, ns: str, digest_hex: str) -> None:
        self._delete(self._chunk_key(ns, digest_hex), f"chunk {digest_hex}")

    def has_chunk(self, ns: str, digest_hex: str) -> bool:
        key = self._chunk_key(ns, digest_hex)
        try:
            with self._errors(f"chunk {digest_hex}", ChunkNotFound):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except ChunkNotFound:
            return False
        return True

    def missing_chunks(self, ns: str, digests_hex: Iterable[str]) -> list[str]:
        """HEAD requests in parallel: thousands of digests per call would otherwise cost
        thousands of sequential round trips."""
        digests = list(digests_hex)
        for digest_hex in digests:  # validate all before sending anything
            self._chunk_key(ns, digest_hex)
        if len(digests) <= 1:
            return super().missing_chunks(ns, digests)
        workers = min(MISSING_QUERY_THREADS, len(digests))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            present = list(pool.map(lambda d: self.has_chunk(ns, d), digests))
        return [d for d, there in zip(digests, present, strict=True) if not there]

    def iter_chunks(self, ns: str) -> Iterator[ChunkStat]:
        base = f"{self._base(ns)}chunks/"
        for obj in self._list(base):
            rest = obj["Key"][len(base) :]
            prefix, _, digest_hex = rest.partition("/")
            if _HEX64.fullmatch(digest_hex) and digest_hex[:4] == prefix:
                yield ChunkStat(digest_hex, obj["Size"], obj["LastModified"].timestamp())

    def quarantine_chunk(self, ns: str, digest_hex: str, reason: str) -> None:
        source = self._chunk_key(ns, digest_hex)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = f"{self._base(ns)}quarantine/{digest_hex}.{stamp}"
        what = f"chunk {digest_hex}"
        with self._errors(what, ChunkNotFound):
            self._client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
            )
        self._put(target + _REASON_SUFFIX, reason.encode(), f"quarantine reason of {what}")
        self._delete(source, what)

    def iter_quarantine(self, ns: str) -> Iterator[QuarantineStat]:
        base = f"{self._base(ns)}quarantine/"
        listed = list(self._list(base))
        reasons = {obj["Key"] for obj in listed if obj["Key"].endswith(_REASON_SUFFIX)}
        for obj in listed:
            name = obj["Key"][len(base) :]
            digest_hex, dot, _ = name.partition(".")
            if name.endswith(_REASON_SUFFIX) or not dot or not _HEX64.fullmatch(digest_hex):
                continue
            reason_key = obj["Key"] + _REASON_SUFFIX
            reason = ""
            if reason_key in reasons:
                try:
                    raw = self._get(reason_key, "quarantine reason", ObjectNotFound)
                    reason = raw.decode(errors="replace")
                except ObjectNotFound:
                    pass
            mtime = obj["LastModified"].timestamp()
            yield QuarantineStat(digest_hex, name, obj["Size"], mtime, reason)

    # -- objects --------------------------------------------------------------------------

    def put_object(self, ns: str, name: str, data: bytes) -> None:
        self._put(self._object_key(ns, name), data, f"object {name}")

    def get_object(self, ns: str, name: str) -> bytes:
        return self._get(self._object_key(ns, name), f"object {name}", ObjectNotFound)

    def delete_object(self, ns: str, name: str) -> None:
        self._delete(self._object_key(ns, name), f"object {name}")

    def iter_objects(self, ns: str, prefix: str = "") -> Iterator[ObjectStat]:
        base = f"{self._base(ns)}objects/"
        for obj in self._list(base + check_object_prefix(prefix)):
            name = obj["Key"][len(base) :]
            try:
                check_object_name(name)
            except ValueError:
                continue  # not written by this backend
            yield ObjectStat(name, obj["Size"], obj["LastModified"].timestamp())

    @property
    def client(self) -> BaseClient:
        """The boto3 client (for operators' tooling and tests, e.g. creating the bucket)."""
        return self._client
