"""Chunk backends: one interface (``base``), two implementations (``local`` filesystem,
``s3``-compatible), and ``backend_from_settings``, which picks one from ``ACURA_STORE_URL``.

Everything of a customer lives under its namespace (an opaque random id, 32 lowercase hex
chars, never the slug); every name that reaches a backend is checked in ``base`` first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import StoreConfigError
from .base import (
    MAX_OBJECT_NAME,
    ChunkBackend,
    ChunkStat,
    ObjectStat,
    QuarantineStat,
    check_digest_hex,
    check_namespace,
    check_object_name,
    check_object_prefix,
    new_namespace,
)

__all__ = [
    "MAX_OBJECT_NAME",
    "ChunkBackend",
    "ChunkStat",
    "ObjectStat",
    "QuarantineStat",
    "backend_from_settings",
    "check_digest_hex",
    "check_namespace",
    "check_object_name",
    "check_object_prefix",
    "new_namespace",
]


def backend_from_settings(
    url: str | None, data_dir: Path, fsync: bool, environ: Mapping[str, str] | None = None
) -> ChunkBackend:
    """Build the backend ``ACURA_STORE_URL`` names.

    - unset / empty → ``LocalBackend(data_dir / "store")`` (the embedded default);
    - ``file:///abs/path`` → ``LocalBackend(Path("/abs/path"))``;
    - ``s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1`` →
      ``S3Backend`` with credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
      in ``environ`` (default ``os.environ``; when absent boto3's own chain applies).

    ``fsync`` applies to the local backend (S3 writes are durable when acknowledged).
    ``StoreConfigError`` (a ``ValueError``) for anything else.
    """
    from .local import LocalBackend

    if url is None or not url.strip():
        return LocalBackend(Path(data_dir) / "store", fsync=fsync)
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StoreConfigError("ACURA_STORE_URL file URLs must be file:///absolute/path")
        return LocalBackend(Path(unquote(parts.path)), fsync=fsync)
    if parts.scheme == "s3":
        from .s3 import S3Backend  # boto3 is only imported when S3 is configured

        if not parts.netloc:
            raise StoreConfigError("ACURA_STORE_URL s3 URLs need a bucket: s3://bucket/prefix")
        query = parse_qs(parts.query)
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise StoreConfigError(f"unknown ACURA_STORE_URL parameter(s): {sorted(unknown)}")
        prefix = unquote(parts.path).strip("/")
        env = os.environ if environ is None else environ
        return S3Backend(
            parts.netloc,
            endpoint_url=query.get("endpoint", [None])[-1],
            region=query.get("region", [None])[-1],
            access_key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            prefix=f"{prefix}/" if prefix else "",
        )
    raise StoreConfigError(
        f"ACURA_STORE_URL scheme {parts.scheme!r} is not supported (use file:// or s3://)"
    )
