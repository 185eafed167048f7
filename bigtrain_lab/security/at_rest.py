"""Weights encrypted at rest with authenticated encryption (AES-256-GCM), and why "authenticated" matters.

A file written by ``save_encrypted`` / ``encrypt_file`` is ``nonce (12 bytes) + ciphertext + tag (16 bytes)``:
AES-GCM with a 256-bit key and a fresh random 96-bit nonce per file, the format's name ``FORMAT`` as associated
data (authenticated, not stored). The weights go through safetensors bytes (``safetensors.torch.save`` /
``load``): nothing in the file can run code when it is read. Decryption checks the tag over the nonce, the
ciphertext and the format: a wrong key, one changed byte, a truncated file or a file of another format raise
``DecryptionError`` (a ValueError, from cryptography's ``InvalidTag``) before any byte is used.

What it protects: the weights on a stolen disk, backup or bucket (confidentiality), and the file against
undetected changes by anyone without the key (integrity). What it does not: a key stored beside the file
(the thief takes both), the weights in memory while the model serves, and copying the model through its API
(``security.extraction``).

The mistake shown next to it: AES in CTR mode (``ctr_encrypt`` / ``ctr_decrypt``) hides the bytes but
authenticates nothing; flipping a ciphertext bit flips the same plaintext bit, and decryption succeeds.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from bigtrain_lab.files import write_atomic

__all__ = ["FORMAT", "KEY_BYTES", "MAX_PLAINTEXT_BYTES", "NONCE_BYTES", "TAG_BYTES", "DecryptionError",
           "ctr_decrypt", "ctr_encrypt", "decrypt_bytes", "decrypt_file", "encrypt_bytes", "encrypt_file",
           "flip_bit", "generate_key", "load_encrypted", "save_encrypted", "tensor_offset"]

#: The associated data of every file: names the format, so a file of another format or version fails.
FORMAT = b"bigtrain-lab/safetensors+AES-256-GCM/v1"
KEY_BYTES, NONCE_BYTES, TAG_BYTES = 32, 12, 16
#: cryptography's one-shot AESGCM refuses more (2**31 - 1 bytes): larger checkpoints are saved as shards.
MAX_PLAINTEXT_BYTES = 2**31 - 1


class DecryptionError(ValueError):
    """The file did not authenticate: a wrong key, or a changed, truncated or foreign file."""


def generate_key() -> bytes:
    """A fresh random 256-bit key. Keep it in a secret manager / KMS or an environment variable, never
    beside the file it opens."""
    return AESGCM.generate_key(bit_length=256)


def _aesgcm(key: Any) -> AESGCM:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise ValueError(f"key must be {KEY_BYTES} bytes (AES-256), got {got}: use generate_key()")
    return AESGCM(bytes(key))


def encrypt_bytes(plaintext: bytes, key: bytes, *, associated_data: bytes = FORMAT) -> bytes:
    """``nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)`` with a fresh random nonce."""
    aead = _aesgcm(key)
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"{len(plaintext)} bytes is more than one AES-GCM message takes here "
                         f"({MAX_PLAINTEXT_BYTES}): save the checkpoint in shards and encrypt each")
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, bytes(plaintext), associated_data)


def decrypt_bytes(blob: bytes, key: bytes, *, associated_data: bytes = FORMAT) -> bytes:
    """The plaintext of ``encrypt_bytes``' output; ``DecryptionError`` when it does not authenticate."""
    aead = _aesgcm(key)
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{len(blob)} bytes is too short for nonce + tag ({NONCE_BYTES + TAG_BYTES} bytes): "
                              "truncated, or not an encrypted file")
    try:
        return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
    except InvalidTag as exc:
        raise DecryptionError("authentication failed (InvalidTag): the key is wrong, or the file was changed, "
                              "truncated or written in another format; nothing was decrypted") from exc


def encrypt_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], key: bytes) -> Path:
    """Encrypt the file ``src`` into ``dst`` (written atomically). Returns ``dst``."""
    return write_atomic(dst, encrypt_bytes(Path(src).read_bytes(), key))


def decrypt_file(src: str | os.PathLike[str], key: bytes, dst: str | os.PathLike[str] | None = None) -> bytes:
    """The plaintext of the encrypted file ``src`` (also written to ``dst`` when given); ``DecryptionError``
    when it does not authenticate."""
    plaintext = decrypt_bytes(Path(src).read_bytes(), key)
    if dst is not None:
        write_atomic(dst, plaintext)
    return plaintext


def save_encrypted(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str], key: bytes,
                   metadata: Mapping[str, Any] | None = None) -> Path:
    """Serialize ``state_dict`` with safetensors (tensors made contiguous, on the CPU; string ``metadata``),
    encrypt the bytes with AES-256-GCM and write ``path`` atomically. Returns ``path``."""
    tensors = {str(k): v.detach().contiguous().cpu() for k, v in state_dict.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()} or None
    return write_atomic(path, encrypt_bytes(save_safetensors_bytes(tensors, metadata=meta), key))


def load_encrypted(path: str | os.PathLike[str], key: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a ``save_encrypted`` file: authenticated first (``DecryptionError`` on a wrong key or
    a changed file), then parsed by safetensors (which executes nothing)."""
    return load_safetensors_bytes(decrypt_file(path, key))


def tensor_offset(safetensors_blob: bytes, name: str) -> int:
    """The byte offset of tensor ``name``'s data in a safetensors file's bytes (8-byte header length, JSON
    header, then the data): the layout is public, so an attacker knows where each weight lies."""
    (header_len,) = struct.unpack("<Q", safetensors_blob[:8])
    header = json.loads(safetensors_blob[8:8 + header_len])
    if name not in header or name == "__metadata__":
        raise KeyError(f"no tensor {name!r} in the file; it has {sorted(k for k in header if k != '__metadata__')}")
    return 8 + header_len + int(header[name]["data_offsets"][0])


def flip_bit(path: str | os.PathLike[str], offset: int, bit: int = 0) -> None:
    """Flip bit ``bit`` (0 = least significant) of the byte at ``offset`` of the file ``path``, in place (a
    bad disk, or a deliberate change)."""
    if not 0 <= bit <= 7:
        raise ValueError(f"bit must be in [0, 7], got {bit!r}")
    size = Path(path).stat().st_size
    if not 0 <= offset < size:
        raise ValueError(f"offset must be in [0, {size}), got {offset!r}")
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


# ----------------------------------------------------------------------------------------------------
# The mistake: encryption without authentication


def ctr_encrypt(plaintext: bytes, key: bytes) -> bytes:
    """AES-256 in CTR mode, NOT authenticated (shown as the mistake): ``nonce (16 bytes) + ciphertext``.
    Anyone can change the ciphertext and the plaintext changes bit for bit, undetected."""
    _aesgcm(key)  # the same key check
    nonce = os.urandom(16)
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.CTR(nonce)).encryptor()
    return nonce + encryptor.update(bytes(plaintext)) + encryptor.finalize()


def ctr_decrypt(blob: bytes, key: bytes) -> bytes:
    """Decrypt ``ctr_encrypt``'s output. It never fails on a changed file: nothing is checked."""
    _aesgcm(key)
    decryptor = Cipher(algorithms.AES(bytes(key)), modes.CTR(blob[:16])).decryptor()
    return decryptor.update(blob[16:]) + decryptor.finalize()
