"""The store library: content-addressed, per-customer chunk storage with no Django and no HTTP.

Modules: :mod:`.blob` (how one chunk is stored), :mod:`.keys` (per-customer data keys wrapped
by master keys), :mod:`.index` (ordered digests of a disk snapshot and their file format),
:mod:`.backends` (local filesystem and S3), :mod:`.errors`. The Django app (``storage``) wraps
it with models, services and the agent API; keeping this layer framework-free keeps it testable
on its own and usable from the benchmark and the agent.

The S3 backend is imported lazily (``storage.store.backends.s3``) so boto3 is only loaded
when an S3 store is configured.
"""

from .backends import (
    ChunkBackend,
    ChunkStat,
    ObjectStat,
    QuarantineStat,
    backend_from_settings,
    new_namespace,
)
from .backends.local import LocalBackend
from .blob import (
    blob_info,
    chunk_digest,
    decode_blob,
    decompress_bounded,
    encode_blob,
    encode_from_frame,
    encode_uploaded,
    is_zero,
)
from .errors import (
    BackendError,
    BlobCorrupt,
    BlobKeyError,
    ChunkNotFound,
    DigestMismatch,
    IndexCorrupt,
    KeyConfigError,
    NotFound,
    ObjectNotFound,
    StoreConfigError,
    StoreError,
)
from .index import (
    ZERO_DIGEST,
    Index,
    IndexFile,
    decode_index_file,
    encode_index_file,
    materialize,
    plan_index_file,
)
from .keys import Keyring, key_id, load_keyring, new_data_key

__all__ = [
    "ZERO_DIGEST",
    "BackendError",
    "BlobCorrupt",
    "BlobKeyError",
    "ChunkBackend",
    "ChunkNotFound",
    "ChunkStat",
    "DigestMismatch",
    "Index",
    "IndexCorrupt",
    "IndexFile",
    "KeyConfigError",
    "Keyring",
    "LocalBackend",
    "NotFound",
    "ObjectNotFound",
    "ObjectStat",
    "QuarantineStat",
    "StoreConfigError",
    "StoreError",
    "backend_from_settings",
    "blob_info",
    "chunk_digest",
    "decode_blob",
    "decode_index_file",
    "decompress_bounded",
    "encode_blob",
    "encode_from_frame",
    "encode_index_file",
    "encode_uploaded",
    "is_zero",
    "key_id",
    "load_keyring",
    "materialize",
    "new_data_key",
    "new_namespace",
    "plan_index_file",
]
