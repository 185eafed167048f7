"""Secure aggregation by pairwise masks (the idea of Bonawitz et al. 2017, "Practical Secure Aggregation for
Privacy-Preserving Machine Learning"): the server learns the SUM of the clients' updates and nothing else.

1. Fixed point: every update is encoded as integers mod ``2**modulus_bits``: ``round(x * 2**frac_bits)``,
   negatives wrapping around (``encode`` / ``decode``). Sums of such integers mod the modulus are exact.
2. Pairwise keys: client ``i`` has an X25519 key pair and publishes its public key; every pair ``(i, j)``
   computes the same shared secret (Diffie-Hellman) and derives a 32-byte key with HKDF-SHA256
   (``keypair``, ``pair_key``). The server relays the public keys and never holds a pair's key.
3. Masks: the pair's key seeds a stream cipher (ChaCha20, nonce = the round) whose keystream gives one
   uniform integer per coordinate (``prg_mask``). Client ``i`` ADDS the mask of every pair ``(i, j>i)`` and
   SUBTRACTS the mask of every pair ``(j<i, i)`` (``mask_update``).
4. The server adds the masked vectors mod the modulus (``aggregate``): every mask appears once with ``+`` and
   once with ``-`` and cancels, leaving the exact sum of the encoded updates; ``decode`` turns it back into
   floats, off the true sum by the rounding of step 1 only (at most ``K / 2**(frac_bits + 1)`` per coordinate).

Each masked vector alone is uniformly distributed whatever the update (a one-time pad with the pair's mask).
What this lesson's version does NOT do: survive a client that drops out after the masks are fixed (its
pairs' masks no longer cancel and the sum is garbage; the real protocol secret-shares each client's mask
seed with Shamir's scheme so the survivors can rebuild it), nor defend against a server that lies about who
is present, nor hide the sum itself (that is differential privacy's job).

>>> import torch
>>> updates = [torch.tensor([0.5, -1.25]), torch.tensor([2.0, 0.75]), torch.tensor([-0.5, 0.5])]
>>> summed = secure_sum(updates, seed=0)
>>> summed["sum"].tolist(), summed["max_error"] <= 3 / 2 ** 17
([2.0, 0.0], True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["FRAC_BITS", "MODULUS_BITS", "aggregate", "decode", "encode", "keypair", "mask_update", "pair_key",
           "pair_keys", "prg_mask", "secure_sum", "uniformity"]

#: Default fixed point: 16 fractional bits in integers mod 2**32 (sums must stay within +-2**15).
FRAC_BITS, MODULUS_BITS = 16, 32


def _check_bits(frac_bits: int, modulus_bits: int) -> None:
    if not 2 <= modulus_bits <= 62:
        raise ValueError(f"modulus_bits must be in [2, 62], got {modulus_bits}")
    if not 0 <= frac_bits < modulus_bits - 1:
        raise ValueError(f"frac_bits must be in [0, modulus_bits - 1), got {frac_bits}")


def encode(x: torch.Tensor, *, frac_bits: int = FRAC_BITS, modulus_bits: int = MODULUS_BITS) -> torch.Tensor:
    """``round(x * 2**frac_bits) mod 2**modulus_bits`` as int64 in ``[0, 2**modulus_bits)``.

    ValueError when a value does not fit the signed range ``|x| < 2**(modulus_bits - frac_bits - 1)`` or is
    not finite (keep the SUM of all clients inside that range too, or it wraps around)."""
    _check_bits(frac_bits, modulus_bits)
    x = torch.as_tensor(x).double()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("cannot encode NaN or infinite values")
    limit = 2.0 ** (modulus_bits - frac_bits - 1)
    if x.numel() and float(x.abs().max()) >= limit:
        raise ValueError(f"|x| up to {float(x.abs().max()):g} does not fit: need |x| < {limit:g} with "
                         f"{frac_bits} fractional bits mod 2**{modulus_bits}")
    return torch.remainder(torch.round(x * 2.0 ** frac_bits).long(), 2 ** modulus_bits)


def decode(v: torch.Tensor, *, frac_bits: int = FRAC_BITS, modulus_bits: int = MODULUS_BITS) -> torch.Tensor:
    """The float64 values of integers mod ``2**modulus_bits`` read as signed (the upper half is negative)."""
    _check_bits(frac_bits, modulus_bits)
    v = torch.remainder(torch.as_tensor(v).long(), 2 ** modulus_bits)
    signed = torch.where(v >= 2 ** (modulus_bits - 1), v - 2 ** modulus_bits, v)
    return signed.double() / 2.0 ** frac_bits


def keypair(index: int, seed: int | None = None) -> tuple[Any, bytes]:
    """Client ``index``'s X25519 private key and raw 32-byte public key. ``seed=None``: a fresh random key (what
    a real client does); an int: derived from ``(seed, index)`` so a lesson's run repeats."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    if seed is None:
        private = X25519PrivateKey.generate()
    else:
        private = X25519PrivateKey.from_private_bytes(hashlib.sha256(f"bigtrain-secagg:{seed}:{index}".encode()).digest())
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, public


def pair_key(private: Any, peer_public: bytes) -> bytes:
    """The 32-byte key a pair shares: X25519(own private, peer's public), through HKDF-SHA256. Both ends of the
    pair get the same bytes; nobody else can."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bigtrain secure aggregation mask").derive(shared)


def pair_keys(index: int, private: Any, publics: Sequence[bytes]) -> dict[int, bytes]:
    """Client ``index``'s key with every other client ``j`` (``publics[j]``: what the server relayed)."""
    return {j: pair_key(private, pub) for j, pub in enumerate(publics) if j != index}


def prg_mask(key: bytes, n: int, *, round_index: int = 0, modulus_bits: int = MODULUS_BITS) -> torch.Tensor:
    """``n`` uniform integers in ``[0, 2**modulus_bits)`` (int64) from the ChaCha20 keystream of ``key`` with the
    round as nonce: the same key and round give the same mask, another round a fresh one."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    if len(key) != 32:
        raise ValueError(f"key must be 32 bytes, got {len(key)}")
    if n < 0 or round_index < 0:
        raise ValueError(f"n and round_index must be >= 0, got {n}, {round_index}")
    nonce = bytes(4) + round_index.to_bytes(12, "little")  # ChaCha20's 16 bytes: block counter, then nonce
    stream = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(bytes(8 * n))
    words = torch.frombuffer(bytearray(stream), dtype=torch.int64) if n else torch.zeros(0, dtype=torch.int64)
    return torch.bitwise_and(words, 2 ** modulus_bits - 1)


def mask_update(encoded: torch.Tensor, index: int, keys: Mapping[int, bytes], *, round_index: int = 0,
                modulus_bits: int = MODULUS_BITS) -> torch.Tensor:
    """Client ``index``'s message: its encoded update plus the masks of pairs ``(index, j > index)`` minus those
    of pairs ``(j < index, index)``, mod ``2**modulus_bits``."""
    modulus = 2 ** modulus_bits
    out = torch.remainder(encoded.long(), modulus)
    for j, key in keys.items():
        if j == index:
            raise ValueError(f"client {index} cannot share a mask with itself")
        mask = prg_mask(key, out.numel(), round_index=round_index, modulus_bits=modulus_bits).view(out.shape)
        out = torch.remainder(out + mask if j > index else out - mask, modulus)
    return out


def aggregate(masked: Sequence[torch.Tensor], *, modulus_bits: int = MODULUS_BITS) -> torch.Tensor:
    """The server's step: the sum of the clients' messages mod ``2**modulus_bits``."""
    if len(masked) == 0:
        raise ValueError("no messages to aggregate")
    total = torch.zeros_like(masked[0], dtype=torch.int64)
    for m in masked:
        if m.shape != total.shape:
            raise ValueError(f"messages of shapes {tuple(total.shape)} and {tuple(m.shape)}")
        total = torch.remainder(total + m.long(), 2 ** modulus_bits)
    return total


def secure_sum(updates: Sequence[torch.Tensor], *, seed: int | None = 0, round_index: int = 0,
               frac_bits: int = FRAC_BITS, modulus_bits: int = MODULUS_BITS,
               drop: Sequence[int] = ()) -> dict[str, Any]:
    """The whole protocol for one round, every client in this process: keys, encode, mask, aggregate, decode.

    ``drop``: clients whose message never reaches the server after the masks were agreed (the lesson's version
    does not recover: the returned sum is then wrong). Returns ``{"sum"`` (float64, what the server learns),
    ``"true_sum"`` (float64 sum of the updates that arrived), ``"max_error"``, ``"masked"`` (the messages the
    server saw), ``"encoded"`` (the clients' unmasked integers, which the server never sees)``}``."""
    if len(updates) < 2:
        raise ValueError("secure aggregation needs at least 2 clients (one client's sum is its update)")
    shape = updates[0].shape
    if any(u.shape != shape for u in updates):
        raise ValueError("every update must have the same shape")
    bad = [k for k in drop if not 0 <= k < len(updates)]
    if bad:
        raise ValueError(f"drop names clients that do not exist: {bad}")
    pairs = [keypair(i, seed) for i in range(len(updates))]
    publics = [pub for _, pub in pairs]  # what the server relays
    encoded = [encode(u, frac_bits=frac_bits, modulus_bits=modulus_bits) for u in updates]
    masked = [mask_update(e, i, pair_keys(i, pairs[i][0], publics), round_index=round_index, modulus_bits=modulus_bits)
              for i, e in enumerate(encoded)]
    arrived = [i for i in range(len(updates)) if i not in set(drop)]
    total = decode(aggregate([masked[i] for i in arrived], modulus_bits=modulus_bits), frac_bits=frac_bits,
                   modulus_bits=modulus_bits)
    true = sum(updates[i].double() for i in arrived)
    return {"sum": total, "true_sum": true, "max_error": float((total - true).abs().max()), "masked": masked,
            "encoded": encoded, "arrived": arrived}


def uniformity(message: torch.Tensor, update: torch.Tensor, *, frac_bits: int = FRAC_BITS,
               modulus_bits: int = MODULUS_BITS) -> dict[str, float]:
    """How much a message tells about the update it carries: the Kolmogorov-Smirnov test of
    ``message / 2**modulus_bits`` against U(0, 1) (statistic, p-value), and the Pearson correlation between the
    message read as a number (``decode``) and the update (1.0 for an unmasked encoding; about 0 masked)."""
    import numpy as np
    from scipy.stats import kstest

    u = message.double().flatten().numpy() / 2.0 ** modulus_bits
    test = kstest(u, "uniform")
    read = decode(message, frac_bits=frac_bits, modulus_bits=modulus_bits).flatten().numpy()
    corr = float(np.corrcoef(read, update.double().flatten().numpy())[0, 1])
    return {"ks_statistic": float(test.statistic), "ks_pvalue": float(test.pvalue), "correlation": corr}
