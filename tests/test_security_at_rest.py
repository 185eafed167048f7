"""bigtrain_lab.security.at_rest: AES-256-GCM files (layout, round trip, every failure a clear error) and the
unauthenticated CTR mistake (a flipped bit changes a weight silently)."""

import struct

import pytest
import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from bigtrain_lab.security.at_rest import (
    FORMAT,
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    DecryptionError,
    ctr_decrypt,
    ctr_encrypt,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    flip_bit,
    generate_key,
    load_encrypted,
    save_encrypted,
    tensor_offset,
)


@pytest.fixture
def state():
    torch.manual_seed(0)
    return {"layer.weight": torch.randn(8, 4), "layer.bias": torch.randn(8), "steps": torch.arange(3),
            "half": torch.randn(5).bfloat16()}


def test_the_file_is_nonce_then_aesgcm_ciphertext_with_the_format_as_associated_data(state, tmp_path):
    key = generate_key()
    assert isinstance(key, bytes) and len(key) == KEY_BYTES
    path = save_encrypted(state, tmp_path / "m.enc", key, metadata={"arch": "mlp"})
    blob = path.read_bytes()
    plaintext = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], FORMAT)  # the reference library
    tensors = st_load(plaintext)
    assert len(blob) == NONCE_BYTES + len(plaintext) + TAG_BYTES
    assert tensors.keys() == state.keys() and all(torch.equal(tensors[k], state[k]) for k in state)
    loaded = load_encrypted(path, key)
    assert all(torch.equal(loaded[k], state[k]) and loaded[k].dtype == state[k].dtype for k in state)
    assert b"layer.weight" not in blob  # the names are hidden too


def test_two_encryptions_of_the_same_bytes_differ(state):
    key = generate_key()
    a, b = encrypt_bytes(b"same weights", key), encrypt_bytes(b"same weights", key)
    assert a[:NONCE_BYTES] != b[:NONCE_BYTES] and a != b
    assert decrypt_bytes(a, key) == decrypt_bytes(b, key) == b"same weights"


@pytest.mark.parametrize("offset", [0, NONCE_BYTES + 3, -1])  # the nonce, the ciphertext, the tag
def test_a_flipped_bit_anywhere_is_refused_with_a_clear_error(state, tmp_path, offset):
    key = generate_key()
    path = save_encrypted(state, tmp_path / "m.enc", key)
    flip_bit(path, offset % path.stat().st_size, bit=3)
    with pytest.raises(DecryptionError, match="authentication failed") as caught:
        load_encrypted(path, key)
    assert isinstance(caught.value.__cause__, InvalidTag) and isinstance(caught.value, ValueError)


def test_a_wrong_key_a_truncated_file_and_another_format_are_refused(state, tmp_path):
    key = generate_key()
    path = save_encrypted(state, tmp_path / "m.enc", key)
    with pytest.raises(DecryptionError, match="key is wrong"):
        load_encrypted(path, generate_key())
    blob = path.read_bytes()
    with pytest.raises(DecryptionError):
        decrypt_bytes(blob[:-1], key)
    with pytest.raises(DecryptionError, match="too short"):
        decrypt_bytes(blob[:NONCE_BYTES + TAG_BYTES - 1], key)
    with pytest.raises(DecryptionError):
        decrypt_bytes(blob, key, associated_data=b"bigtrain-lab/safetensors+AES-256-GCM/v2")


@pytest.mark.parametrize("key", [b"short", b"x" * 16, "a" * 32, None])
def test_keys_that_are_not_32_bytes_are_refused(key):
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_bytes(b"data", key)
    with pytest.raises(ValueError, match="32 bytes"):
        ctr_encrypt(b"data", key)


def test_encrypt_and_decrypt_a_file(tmp_path):
    key = generate_key()
    src = tmp_path / "plain.bin"
    src.write_bytes(b"\x00\x01 weights " * 100)
    enc = encrypt_file(src, tmp_path / "plain.bin.enc", key)
    assert decrypt_file(enc, key, tmp_path / "back.bin") == src.read_bytes()
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_tensor_offset_points_at_the_tensor_bytes(state):
    blob = st_save({k: v.contiguous() for k, v in state.items()})
    at = tensor_offset(blob, "layer.bias")
    assert struct.unpack("<8f", blob[at:at + 32]) == pytest.approx(state["layer.bias"].tolist())
    with pytest.raises(KeyError, match="layer.bias"):
        tensor_offset(blob, "missing")


def test_ctr_is_malleable_a_flipped_bit_changes_a_weight_and_nothing_notices(state):
    key = generate_key()
    plaintext = st_save({k: v.contiguous() for k, v in state.items()})
    blob = bytearray(ctr_encrypt(plaintext, key))
    assert ctr_decrypt(bytes(blob), key) == plaintext
    sign_byte = 16 + tensor_offset(plaintext, "layer.bias") + 3  # float32 little-endian: byte 3 holds the sign
    blob[sign_byte] ^= 0x80
    tampered = st_load(ctr_decrypt(bytes(blob), key))  # no error at all
    assert tampered["layer.bias"][0] == -state["layer.bias"][0]
    assert torch.equal(tampered["layer.bias"][1:], state["layer.bias"][1:])
    with pytest.raises(DecryptionError):  # the same change to an AES-GCM file is caught
        gcm = bytearray(encrypt_bytes(plaintext, key))
        gcm[NONCE_BYTES + tensor_offset(plaintext, "layer.bias") + 3] ^= 0x80
        decrypt_bytes(bytes(gcm), key)


def test_flip_bit_checks_its_arguments(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\x00\x00")
    flip_bit(path, 1, bit=7)
    assert path.read_bytes() == b"\x00\x80"
    with pytest.raises(ValueError, match="offset"):
        flip_bit(path, 2)
    with pytest.raises(ValueError, match="bit"):
        flip_bit(path, 0, bit=8)
