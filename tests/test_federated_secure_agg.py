"""bigtrain_lab.federated.secure_agg: fixed point round trip, pair keys agree (X25519 + HKDF), masks cancel in
the sum (exact up to rounding), a masked message looks uniform, a dropped client breaks the sum, bad inputs."""

import pytest
import torch

from bigtrain_lab.federated.secure_agg import (
    aggregate,
    decode,
    encode,
    keypair,
    mask_update,
    pair_key,
    pair_keys,
    prg_mask,
    secure_sum,
    uniformity,
)


def test_fixed_point_round_trip_and_wrap_around():
    x = torch.tensor([0.0, 1.5, -1.5, 1e-6, -32767.0, 3.14159])
    v = encode(x)
    assert v.dtype == torch.int64 and int(v.min()) >= 0 and int(v.max()) < 2 ** 32
    assert float((decode(v) - x.double()).abs().max()) <= 2 ** -17
    assert int(encode(torch.tensor([-1.0]))[0]) == 2 ** 32 - 2 ** 16  # negatives wrap around
    with pytest.raises(ValueError, match="does not fit"):
        encode(torch.tensor([32768.0]))
    with pytest.raises(ValueError, match="NaN"):
        encode(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="modulus_bits"):
        encode(x, modulus_bits=64)


def test_both_ends_of_a_pair_derive_the_same_key_and_others_do_not():
    (a, pa), (b, pb), (_, pc) = keypair(0, 7), keypair(1, 7), keypair(2, 7)
    assert pair_key(a, pb) == pair_key(b, pa) and len(pair_key(a, pb)) == 32
    assert pair_key(a, pc) != pair_key(a, pb)
    assert keypair(0, 7)[1] == pa and keypair(0, 8)[1] != pa and keypair(0, None)[1] != keypair(0, None)[1]
    assert set(pair_keys(1, b, [pa, pb, pc])) == {0, 2}


def test_masks_repeat_per_round_and_change_across_rounds():
    key = bytes(range(32))
    m0, m0b, m1 = prg_mask(key, 1000), prg_mask(key, 1000), prg_mask(key, 1000, round_index=1)
    assert torch.equal(m0, m0b) and not torch.equal(m0, m1)
    assert int(m0.min()) >= 0 and int(m0.max()) < 2 ** 32
    assert prg_mask(key, 0).numel() == 0
    with pytest.raises(ValueError, match="32 bytes"):
        prg_mask(b"short", 4)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_the_server_gets_the_exact_sum(k):
    g = torch.Generator().manual_seed(k)
    updates = [torch.randn(50, generator=g) * 3 for _ in range(k)]
    out = secure_sum(updates, seed=1, round_index=2)
    assert out["max_error"] <= k * 2 ** -17
    assert torch.allclose(out["sum"], sum(u.double() for u in updates), atol=k * 2 ** -17)
    # the integers sum exactly: the masks cancel
    exact = torch.remainder(sum(out["encoded"]), 2 ** 32)
    assert torch.equal(aggregate(out["masked"]), exact)
    # no single message is the encoded update
    assert all(not torch.equal(m, e) for m, e in zip(out["masked"], out["encoded"], strict=True))


def test_a_masked_message_looks_uniform_and_unrelated_to_the_update():
    update = torch.linspace(-1, 1, 4000)  # very structured
    out = secure_sum([update, -update, update * 0.5], seed=0)
    report = uniformity(out["masked"][0], update)
    assert report["ks_pvalue"] > 1e-3 and abs(report["correlation"]) < 0.1
    unmasked = uniformity(out["encoded"][0], update)
    assert unmasked["ks_pvalue"] < 1e-6  # the plain encoding is anything but uniform
    assert unmasked["correlation"] > 0.999  # and it reads back as the update


def test_a_dropped_client_leaves_masks_that_do_not_cancel():
    updates = [torch.ones(20) * v for v in (0.1, 0.2, 0.3)]
    out = secure_sum(updates, seed=0, drop=[1])
    assert out["arrived"] == [0, 2] and out["max_error"] > 1.0
    with pytest.raises(ValueError, match="do not exist"):
        secure_sum(updates, drop=[5])


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        secure_sum([torch.zeros(3)])
    with pytest.raises(ValueError, match="same shape"):
        secure_sum([torch.zeros(3), torch.zeros(4)])
    with pytest.raises(ValueError, match="itself"):
        mask_update(torch.zeros(3, dtype=torch.long), 0, {0: bytes(32)})
    with pytest.raises(ValueError, match="no messages"):
        aggregate([])
    with pytest.raises(ValueError, match="shapes"):
        aggregate([torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long)])
