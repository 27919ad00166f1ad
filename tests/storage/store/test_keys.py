"""Data keys wrapped by master keys: wrapping, namespaces, rotation, configuration errors."""

import base64

import pytest

from storage.store.errors import BlobKeyError, KeyConfigError
from storage.store.keys import (
    WRAPPED_SIZE,
    Keyring,
    key_id,
    load_keyring,
    new_data_key,
)

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
NS = "0123456789abcdef0123456789abcdef"
OTHER_NS = "fedcba9876543210fedcba9876543210"


def test_wrap_and_unwrap():
    ring = Keyring([OLD])
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, NS)
    assert len(wrapped) == WRAPPED_SIZE
    assert wrapped[:8] == key_id(OLD) == ring.current_id
    assert data_key not in wrapped
    assert ring.unwrap(wrapped, NS) == data_key
    assert ring.wrap(data_key, NS) != wrapped  # fresh nonce each time


def test_new_data_keys_are_random_32_bytes():
    keys = {new_data_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 32 for k in keys)


def test_wrong_namespace_fails():
    ring = Keyring([OLD])
    wrapped = ring.wrap(new_data_key(), NS)
    with pytest.raises(BlobKeyError, match="namespace"):
        ring.unwrap(wrapped, OTHER_NS)


def test_damaged_or_foreign_wrapped_keys_fail():
    ring = Keyring([OLD])
    wrapped = ring.wrap(new_data_key(), NS)
    for position in (8, 20, len(wrapped) - 1):  # nonce, ciphertext, tag
        damaged = bytearray(wrapped)
        damaged[position] ^= 1
        with pytest.raises(BlobKeyError):
            ring.unwrap(bytes(damaged), NS)
    with pytest.raises(BlobKeyError, match="bytes"):
        ring.unwrap(wrapped[:-1], NS)
    with pytest.raises(BlobKeyError, match=key_id(OLD).hex()):
        Keyring([NEW]).unwrap(wrapped, NS)


def test_rotation():
    old_ring = Keyring([OLD])
    data_key = new_data_key()
    wrapped_old = old_ring.wrap(data_key, NS)

    rotating = Keyring([NEW, OLD])  # the operator puts the new key first, the old after it
    assert rotating.unwrap(wrapped_old, NS) == data_key
    assert rotating.needs_rewrap(wrapped_old)
    wrapped_new = rotating.rewrap(wrapped_old, NS)
    assert not rotating.needs_rewrap(wrapped_new)
    assert wrapped_new[:8] == key_id(NEW)
    assert rotating.unwrap(wrapped_new, NS) == data_key
    # Re-running the re-wrap command is harmless: already current → unchanged.
    assert rotating.rewrap(wrapped_new, NS) == wrapped_new

    only_new = Keyring([NEW])  # the old key is dropped
    assert only_new.unwrap(wrapped_new, NS) == data_key
    with pytest.raises(BlobKeyError):
        only_new.unwrap(wrapped_old, NS)


def test_rewrap_checks_the_namespace():
    wrapped = Keyring([OLD]).wrap(new_data_key(), NS)
    with pytest.raises(BlobKeyError):
        Keyring([NEW, OLD]).rewrap(wrapped, OTHER_NS)


def test_from_env_accepts_standard_and_urlsafe_base64():
    tricky = bytes([0xFB, 0xFF] * 16)  # encodes with "+" and "/" (or "-" and "_")
    standard = base64.b64encode(tricky).decode()
    urlsafe = base64.urlsafe_b64encode(NEW).decode().rstrip("=")
    assert "+" in standard or "/" in standard
    ring = Keyring.from_env(f" {urlsafe} ,\n{standard} ")
    assert ring.current_id == key_id(NEW)
    wrapped = Keyring([tricky]).wrap(new_data_key(), NS)
    assert len(ring.unwrap(wrapped, NS)) == 32
    assert Keyring.from_env(base64.urlsafe_b64encode(tricky).decode()).current_id == key_id(tricky)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (",", "empty"),
        (f"{base64.b64encode(OLD).decode()},,{base64.b64encode(NEW).decode()}", "empty entry"),
        ("!!!notbase64!!!", "entry 1 is not valid base64"),
        ("abc=def", "not valid base64"),
        ("abcde", "not valid base64"),
        (base64.b64encode(bytes(range(16))).decode(), "entry 1 decodes to 16 bytes"),
        (f"{base64.b64encode(OLD).decode()},{base64.b64encode(b'x' * 33).decode()}", "entry 2"),
    ],
)
def test_from_env_rejects_bad_values(value, message):
    with pytest.raises(KeyConfigError, match=message) as excinfo:
        Keyring.from_env(value)
    assert isinstance(excinfo.value, ValueError)
    for part in value.split(","):
        if len(part.strip()) > 8:
            assert part.strip() not in str(excinfo.value)  # never echo key material


def test_keyring_rejects_bad_master_keys():
    with pytest.raises(KeyConfigError):
        Keyring([])
    with pytest.raises(KeyConfigError, match="32 bytes"):
        Keyring([b"short"])


def test_wrap_rejects_bad_data_keys():
    with pytest.raises(ValueError):
        Keyring([OLD]).wrap(b"short", NS)


def test_load_keyring_unset_means_no_encryption():
    assert load_keyring(None) is None
    assert load_keyring("") is None
    assert load_keyring("  ") is None
    assert load_keyring(base64.b64encode(OLD).decode()).current_id == key_id(OLD)
    with pytest.raises(KeyConfigError):
        load_keyring("nope")


def test_repr_shows_no_key_material():
    text = repr(Keyring([OLD, NEW]))
    assert base64.b64encode(OLD).decode() not in text
    assert OLD.hex() not in text
    assert "keys=2" in text
