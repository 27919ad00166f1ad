"""Blob format: round trips, the compression choice, and every way a blob can be bad."""

import hashlib
import os
import threading
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.store.blob import (
    HEADER_SIZE,
    MAGIC_ENCRYPTED,
    MAGIC_PLAIN,
    MAGIC_ZSTD,
    MAGIC_ZSTD_ENCRYPTED,
    blob_info,
    chunk_digest,
    decode_blob,
    decompress_bounded,
    encode_blob,
    encode_from_frame,
    encode_uploaded,
    is_zero,
)
from storage.store.errors import BlobCorrupt, BlobKeyError, DigestMismatch, StoreError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MAX = 1 << 20
TEXT = b"the quick brown fox jumps over the lazy dog " * 200
RANDOM = os.urandom(4096)
KINDS = {  # (compressed, encrypted) -> (data, key)
    (False, False): (RANDOM, None),
    (True, False): (TEXT, None),
    (False, True): (RANDOM, KEY),
    (True, True): (TEXT, KEY),
}
MAGICS = {
    (False, False): MAGIC_PLAIN,
    (True, False): MAGIC_ZSTD,
    (False, True): MAGIC_ENCRYPTED,
    (True, True): MAGIC_ZSTD_ENCRYPTED,
}


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def with_crc(blob: bytes) -> bytes:
    """Recompute the CRC after tampering, to get past the CRC check on purpose."""
    payload = blob[HEADER_SIZE:]
    return blob[:8] + zlib.crc32(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize("kind", list(KINDS), ids=lambda k: f"compressed={k[0]}-encrypted={k[1]}")
def test_round_trip_of_each_kind(kind):
    data, key = KINDS[kind]
    blob = encode_blob(data, sha(data), key=key)
    assert blob[:8] == MAGICS[kind]
    assert blob_info(blob) == kind
    assert decode_blob(blob, sha(data), key=key, max_size=MAX) == data


@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=5000), st.binary(max_size=64).map(lambda b: b * 50)),
    encrypted=st.booleans(),
    level=st.sampled_from([1, 3, 19, None]),
)
def test_round_trip_random_data(data, encrypted, level):
    key = KEY if encrypted else None
    blob = encode_blob(data, sha(data), key=key, level=level)
    compressed, is_encrypted = blob_info(blob)
    assert is_encrypted is encrypted
    if level is None:
        assert not compressed
    assert decode_blob(blob, sha(data), key=key, max_size=max(len(data), 1)) == data
    assert decode_blob(memoryview(blob), sha(data), key=key, max_size=MAX) == data


def test_compressed_form_is_kept_only_when_smaller():
    plain_blob = encode_blob(RANDOM, sha(RANDOM), key=None)
    assert blob_info(plain_blob) == (False, False)
    assert len(plain_blob) == HEADER_SIZE + len(RANDOM)
    text_blob = encode_blob(TEXT, sha(TEXT), key=None)
    assert blob_info(text_blob) == (True, False)
    assert len(text_blob) < len(TEXT) // 10
    empty = encode_blob(b"", sha(b""), key=None)
    assert blob_info(empty) == (False, False)
    assert decode_blob(empty, sha(b""), key=None, max_size=1) == b""


def test_encrypted_blobs_use_a_fresh_nonce():
    assert encode_blob(TEXT, sha(TEXT), key=KEY) != encode_blob(TEXT, sha(TEXT), key=KEY)


def test_encode_from_frame_keeps_the_agents_frame():
    frame = zstandard.ZstdCompressor(level=3).compress(TEXT)
    for key in (None, KEY):
        blob = encode_from_frame(frame, len(TEXT), sha(TEXT), key=key)
        assert blob_info(blob) == (True, key is not None)
        if key is None:
            assert blob[HEADER_SIZE:] == frame  # byte for byte, not recompressed
        assert decode_blob(blob, sha(TEXT), key=key, max_size=MAX) == TEXT


def test_encode_from_frame_rejects_what_it_cannot_store():
    frame = zstandard.ZstdCompressor().compress(RANDOM)
    with pytest.raises(ValueError, match="not smaller"):
        encode_from_frame(frame, len(RANDOM), sha(RANDOM), key=None)
    with pytest.raises(ValueError, match="zstd"):
        encode_from_frame(b"not a frame at all", len(TEXT), sha(TEXT), key=None)
    text_frame = zstandard.ZstdCompressor().compress(TEXT)
    with pytest.raises(ValueError, match="declares"):
        encode_from_frame(text_frame, len(TEXT) + 1, sha(TEXT), key=None)


def test_encode_uploaded_chooses_frame_or_plain():
    compressor = zstandard.ZstdCompressor(level=1)
    text_blob = encode_uploaded(compressor.compress(TEXT), TEXT, sha(TEXT), key=KEY)
    assert blob_info(text_blob) == (True, True)
    random_blob = encode_uploaded(compressor.compress(RANDOM), RANDOM, sha(RANDOM), key=None)
    assert blob_info(random_blob) == (False, False)
    assert decode_blob(random_blob, sha(RANDOM), key=None, max_size=MAX) == RANDOM


@pytest.mark.parametrize("kind", list(KINDS), ids=str)
def test_flipped_payload_or_crc_byte_is_corrupt(kind):
    data, key = KINDS[kind]
    data = data[:300]
    blob = encode_blob(data, sha(data), key=key)
    for position in range(8, len(blob)):  # every CRC and payload byte
        damaged = bytearray(blob)
        damaged[position] ^= 0x01
        with pytest.raises(BlobCorrupt):
            decode_blob(bytes(damaged), sha(data), key=key, max_size=MAX)


@pytest.mark.parametrize("kind", list(KINDS), ids=str)
def test_every_truncation_is_corrupt(kind):
    data, key = KINDS[kind]
    data = data[:300]
    blob = encode_blob(data, sha(data), key=key)
    for length in range(len(blob)):
        with pytest.raises(BlobCorrupt):
            decode_blob(blob[:length], sha(data), key=key, max_size=MAX)


@pytest.mark.parametrize("magic", [b"ACBLOB\x02\x00", b"ACBLOB\x00\x02", b"NOTABLOB", bytes(8)])
def test_bad_magic(magic):
    blob = encode_blob(TEXT, sha(TEXT), key=None)
    with pytest.raises(BlobCorrupt, match="magic"):
        decode_blob(magic + blob[8:], sha(TEXT), key=None, max_size=MAX)
    with pytest.raises(BlobCorrupt):
        blob_info(magic + blob[8:])


@pytest.mark.parametrize("data", [TEXT, RANDOM], ids=["compressed", "plain"])
def test_wrong_or_missing_key(data):
    blob = encode_blob(data, sha(data), key=KEY)
    with pytest.raises(BlobKeyError):
        decode_blob(blob, sha(data), key=OTHER_KEY, max_size=MAX)
    with pytest.raises(BlobKeyError, match="no data key"):
        decode_blob(blob, sha(data), key=None, max_size=MAX)
    with pytest.raises(ValueError, match="digest"):
        decode_blob(blob, None, key=KEY, max_size=MAX)


def test_tampered_ciphertext_with_valid_crc_fails_authentication():
    blob = bytearray(encode_blob(TEXT, sha(TEXT), key=KEY))
    blob[-1] ^= 0x80
    with pytest.raises(BlobKeyError):
        decode_blob(with_crc(bytes(blob)), sha(TEXT), key=KEY, max_size=MAX)


def test_right_blob_at_the_wrong_digest():
    other = sha(b"some other chunk")
    for data in (TEXT, RANDOM):
        encrypted = encode_blob(data, sha(data), key=KEY)
        with pytest.raises(BlobKeyError):  # the digest is the associated data
            decode_blob(encrypted, other, key=KEY, max_size=MAX)
        plain = encode_blob(data, sha(data), key=None)
        with pytest.raises(DigestMismatch):
            decode_blob(plain, other, key=None, max_size=MAX)
        # Without a digest there is nothing to compare (callers that know it always pass it).
        assert decode_blob(plain, None, key=None, max_size=MAX) == data


def test_tampered_plain_payload_with_valid_crc_is_a_digest_mismatch():
    blob = bytearray(encode_blob(RANDOM, sha(RANDOM), key=None))
    blob[-1] ^= 0x01
    with pytest.raises(DigestMismatch):
        decode_blob(with_crc(bytes(blob)), sha(RANDOM), key=None, max_size=MAX)


def test_trailing_bytes_after_the_frame_are_corrupt():
    blob = encode_blob(TEXT, sha(TEXT), key=None)
    with pytest.raises(BlobCorrupt):
        decode_blob(with_crc(blob + b"\x00junk"), sha(TEXT), key=None, max_size=MAX)


def test_decompression_bomb_with_declared_size():
    bomb_plain = bytes(64 << 20)
    blob = encode_blob(bomb_plain, sha(bomb_plain), key=None)
    assert len(blob) < 64 << 10
    with pytest.raises(BlobCorrupt, match="limit"):
        decode_blob(blob, sha(bomb_plain), key=None, max_size=1 << 20)
    encrypted = encode_blob(bomb_plain, sha(bomb_plain), key=KEY)
    with pytest.raises(BlobCorrupt):
        decode_blob(encrypted, sha(bomb_plain), key=KEY, max_size=1 << 20)


def test_decompression_bomb_without_declared_size():
    plain = bytes(8 << 20)
    frame = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(plain)
    assert zstandard.frame_content_size(frame) == -1
    blob = encode_from_frame(frame, len(plain), sha(plain), key=None)
    with pytest.raises(BlobCorrupt):
        decode_blob(blob, sha(plain), key=None, max_size=1 << 20)
    assert decode_blob(blob, sha(plain), key=None, max_size=8 << 20) == plain


def test_plain_payload_beyond_max_size_is_corrupt():
    blob = encode_blob(RANDOM, sha(RANDOM), key=None)
    with pytest.raises(BlobCorrupt):
        decode_blob(blob, sha(RANDOM), key=None, max_size=len(RANDOM) - 1)


def test_decompress_bounded():
    frame = zstandard.ZstdCompressor().compress(TEXT)
    assert decompress_bounded(frame, len(TEXT)) == TEXT
    with pytest.raises(BlobCorrupt):
        decompress_bounded(frame, len(TEXT) - 1)
    with pytest.raises(BlobCorrupt):
        decompress_bounded(b"garbage", 100)
    empty = zstandard.ZstdCompressor(write_content_size=False).compress(b"")
    assert decompress_bounded(empty, 0) == b""


def test_errors_are_store_errors_and_bad_arguments_are_value_errors():
    for error in (BlobCorrupt, BlobKeyError, DigestMismatch):
        assert issubclass(error, StoreError)
    with pytest.raises(ValueError):
        encode_blob(TEXT, b"short", key=None)
    with pytest.raises(ValueError):
        encode_blob(TEXT, sha(TEXT), key=b"16 bytes key....")
    with pytest.raises(ValueError):
        decode_blob(encode_blob(TEXT, sha(TEXT), key=None), sha(TEXT), key=None, max_size=-1)


def test_threads_share_nothing_mutable():
    """Per-thread zstd contexts: many threads encoding and decoding at once stay correct."""
    failures = []

    def work(seed: int):
        for i in range(30):
            data = (TEXT[: 100 + seed * 37 + i] + os.urandom(50)) * (1 + i % 3)
            level = 1 + (seed + i) % 4
            blob = encode_blob(data, sha(data), key=KEY if i % 2 else None, level=level)
            if decode_blob(blob, sha(data), key=KEY if i % 2 else None, max_size=MAX) != data:
                failures.append((seed, i))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_helpers():
    assert chunk_digest(TEXT) == sha(TEXT)
    assert is_zero(bytes(1 << 20))
    assert is_zero(memoryview(bytes(100)))
    assert is_zero(b"")
    assert not is_zero(bytes(1000) + b"\x01")
