"""Plausible WRONG answers to the compression exercises (each must be rejected) and different CORRECT ones
(each must be accepted)."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune

# ---- compress.magnitude_prune_mask ------------------------------------------------------------------


def mask_signed_not_abs(weight, amount):
    # prunes the most NEGATIVE weights instead of the smallest magnitudes
    k = round(amount * weight.numel())
    mask = torch.ones_like(weight)
    if k:
        mask.view(-1)[torch.topk(weight.flatten(), k, largest=False).indices] = 0
    return mask


def mask_floor_count(weight, amount):
    k = int(amount * weight.numel())  # floors: 3.5 -> 3 where torch rounds to 4
    mask = torch.ones_like(weight)
    if k:
        mask.view(-1)[torch.topk(weight.abs().flatten(), k, largest=False).indices] = 0
    return mask


def mask_keeps_amount(weight, amount):
    # confuses "amount to prune" with "amount to keep"
    k = round((1 - amount) * weight.numel())
    mask = torch.ones_like(weight)
    if k:
        mask.view(-1)[torch.topk(weight.abs().flatten(), k, largest=False).indices] = 0
    return mask


def mask_threshold_by_quantile(weight, amount):
    # a quantile threshold with "<=": off by one around the threshold (interpolation)
    thr = torch.quantile(weight.abs().flatten().double(), amount)
    return (weight.abs().double() > thr).to(weight.dtype)


def mask_in_place(weight, amount):
    # zeroes the weight itself and returns it (modifies the input)
    k = round(amount * weight.numel())
    if k:
        weight.view(-1)[torch.topk(weight.abs().flatten(), k, largest=False).indices] = 0
    return (weight != 0).to(weight.dtype)


def mask_rows(weight, amount):
    # structured (whole rows by L1 norm) instead of unstructured
    w = weight.reshape(weight.shape[0], -1) if weight.dim() > 1 else weight.reshape(-1, 1)
    k = round(amount * w.shape[0])
    mask = torch.ones_like(w)
    if k:
        mask[torch.topk(w.abs().sum(1), k, largest=False).indices] = 0
    return mask.reshape(weight.shape)


PRUNE_WRONG = [mask_signed_not_abs, mask_floor_count, mask_keeps_amount, mask_threshold_by_quantile,
               mask_in_place, mask_rows]


def mask_torch_prune(weight, amount):
    layer = nn.Module()
    layer.weight = nn.Parameter(weight.clone())
    prune.l1_unstructured(layer, "weight", amount=amount)
    return layer.weight_mask


def mask_argsort_bool(weight, amount):
    k = round(amount * weight.numel())
    order = torch.argsort(weight.abs().flatten(), stable=True)
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    keep[order[:k]] = False
    return keep.reshape(weight.shape)  # a bool mask is accepted too


PRUNE_RIGHT = [mask_torch_prune, mask_argsort_bool]

# ---- compress.quantize_affine ------------------------------------------------------------------------


def _ranges(num_bits, symmetric):
    if symmetric:
        return -(2 ** (num_bits - 1) - 1), 2 ** (num_bits - 1) - 1
    return 0, 2 ** num_bits - 1


def q_no_zero_in_range(x, *, num_bits=8, symmetric=False):
    # min/max of x itself: 0 is not exactly representable when x is all positive
    qmin, qmax = _ranges(num_bits, symmetric)
    lo, hi = float(x.min()), float(x.max())
    if symmetric:
        scale = max(max(abs(lo), abs(hi)) / qmax, 1.1920928955078125e-07)
        return torch.clamp(torch.round(x / scale), qmin, qmax).to(torch.int64), scale, 0
    scale = max((hi - lo) / (qmax - qmin), 1.1920928955078125e-07)
    zp = int(qmin - round(lo / scale))
    return torch.clamp(torch.round(x / scale) + zp, qmin, qmax).to(torch.int64), scale, zp


def q_truncates(x, *, num_bits=8, symmetric=False):
    # int() truncation instead of rounding: round-trip error up to a whole scale
    qmin, qmax = _ranges(num_bits, symmetric)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    if symmetric:
        scale, zp = max(max(-lo, hi) / qmax, 1.1920928955078125e-07), 0
    else:
        scale = max((hi - lo) / (qmax - qmin), 1.1920928955078125e-07)
        zp = int(qmin - round(lo / scale))
    return torch.clamp(torch.trunc(x / scale) + zp, qmin, qmax).to(torch.int64), scale, zp


def q_symmetric_uses_128(x, *, num_bits=8, symmetric=False):
    # symmetric over [-128, 127] with scale = max|x| / 128 (the restricted range is what was asked)
    qmin, qmax = _ranges(num_bits, symmetric)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    if symmetric:
        scale = max(max(-lo, hi) / (qmax + 1), 1.1920928955078125e-07)
        return torch.clamp(torch.round(x / scale), -qmax - 1, qmax).to(torch.int64), scale, 0
    scale = max((hi - lo) / (qmax - qmin), 1.1920928955078125e-07)
    zp = int(qmin - round(lo / scale))
    return torch.clamp(torch.round(x / scale) + zp, qmin, qmax).to(torch.int64), scale, zp


def q_divides_by_levels(x, *, num_bits=8, symmetric=False):
    # scale = range / 2^b (levels, not steps): the top value overflows and is clamped
    qmin, qmax = _ranges(num_bits, symmetric)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    if symmetric:
        scale = max(max(-lo, hi) / (qmax + 1), 1.1920928955078125e-07)
        return torch.clamp(torch.round(x / scale), qmin, qmax).to(torch.int64), scale, 0
    scale = max((hi - lo) / 2 ** num_bits, 1.1920928955078125e-07)
    zp = int(qmin - round(lo / scale))
    return torch.clamp(torch.round(x / scale) + zp, qmin, qmax).to(torch.int64), scale, zp


def q_float_codes(x, *, num_bits=8, symmetric=False):
    # the right numbers, returned as a float tensor
    q, s, z = q_right_formula(x, num_bits=num_bits, symmetric=symmetric)
    return q.float(), s, z


def q_no_eps(x, *, num_bits=8, symmetric=False):
    # divides by zero on an all-zero tensor (scale 0 -> NaN codes)
    qmin, qmax = _ranges(num_bits, symmetric)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = max(-lo, hi) / qmax if symmetric else (hi - lo) / (qmax - qmin)
    if scale == 0:
        return torch.zeros_like(x, dtype=torch.int64), 0.0, 0
    zp = 0 if symmetric else int(qmin - round(lo / scale))
    return torch.clamp(torch.round(x / scale) + zp, qmin, qmax).to(torch.int64), scale, zp


QUANT_WRONG = [q_no_zero_in_range, q_truncates, q_symmetric_uses_128, q_divides_by_levels, q_float_codes,
               q_no_eps]


def q_right_formula(x, *, num_bits=8, symmetric=False):
    qmin, qmax = _ranges(num_bits, symmetric)
    lo = torch.clamp(x.min(), max=0.0)
    hi = torch.clamp(x.max(), min=0.0)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        scale = torch.clamp(torch.maximum(-lo, hi) / qmax, min=eps)
        zp = torch.tensor(0)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=eps)
        zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int64)
    q = torch.clamp(torch.round(x / scale) + zp, qmin, qmax).to(torch.int32)
    return q, float(scale), int(zp)


def q_torch_observer(x, *, num_bits=8, symmetric=False):
    from torch.ao.quantization.observer import MinMaxObserver
    qmin, qmax = _ranges(num_bits, symmetric)
    obs = MinMaxObserver(dtype=torch.qint8 if symmetric else torch.quint8,
                         qscheme=torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine,
                         quant_min=qmin, quant_max=qmax)
    obs(x)
    scale, zp = obs.calculate_qparams()
    fq = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), qmin, qmax)
    return (torch.round(fq / scale) + zp).to(torch.int16), scale, zp  # 0-d tensors for scale / zp


QUANT_RIGHT = [q_right_formula, q_torch_observer]

# ---- compress.dequantize_affine ----------------------------------------------------------------------


def dq_uint8_wraps(q, scale, zero_point):
    return (q - zero_point).float() * scale  # uint8 arithmetic wraps around below 0


def dq_adds_zero_point(q, scale, zero_point):
    return (q.float() + zero_point) * scale


def dq_divides(q, scale, zero_point):
    return (q.float() - zero_point) / scale


def dq_float64(q, scale, zero_point):
    return (q.double() - zero_point) * scale  # float64: not the float32 asked for


DEQUANT_WRONG = [dq_uint8_wraps, dq_adds_zero_point, dq_divides, dq_float64]


def dq_formula(q, scale, zero_point):
    return (q.to(torch.float32) - zero_point) * scale


def dq_int_then_float(q, scale, zero_point):
    return (q.to(torch.int32) - int(zero_point)).to(torch.float32).mul(float(scale))


DEQUANT_RIGHT = [dq_formula, dq_int_then_float]

# ---- compress.distillation_loss ----------------------------------------------------------------------


def kd_no_t_squared(s, t, y, *, temperature, alpha):
    T = temperature
    soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_mean_reduction(s, t, y, *, temperature, alpha):
    T = temperature  # reduction="mean" also divides by the number of classes
    soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="mean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_arguments_swapped(s, t, y, *, temperature, alpha):
    T = temperature  # KL(student || teacher) instead of KL(teacher || student)
    soft = F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_probabilities_not_logs(s, t, y, *, temperature, alpha):
    T = temperature  # kl_div wants log-probabilities as its first argument
    soft = F.kl_div(F.softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_hard_term_at_t(s, t, y, *, temperature, alpha):
    T = temperature  # the label term is taken at temperature T too
    soft = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s / T, y)


def kd_returns_float(s, t, y, *, temperature, alpha):
    return float(kd_formula(s, t, y, temperature=temperature, alpha=alpha))  # .backward() is gone


KD_WRONG = [kd_no_t_squared, kd_mean_reduction, kd_arguments_swapped, kd_probabilities_not_logs,
            kd_hard_term_at_t, kd_returns_float]


def kd_formula(s, t, y, *, temperature, alpha):
    T = temperature
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
    return alpha * T ** 2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_by_hand(s, t, y, *, temperature, alpha):
    T = temperature
    p_t = torch.softmax(t / T, dim=-1)
    kl = (p_t * (torch.log_softmax(t / T, -1) - torch.log_softmax(s / T, -1))).sum(-1).mean()
    ce = -torch.log_softmax(s, -1).gather(1, y[:, None]).mean()
    return alpha * T * T * kl + (1 - alpha) * ce


KD_RIGHT = [kd_formula, kd_by_hand]

# ---- compress.low_rank_factorize ---------------------------------------------------------------------


def _check(linear, rank):
    if not 1 <= rank <= min(linear.weight.shape):
        raise ValueError("bad rank")


def _pair(linear, rank, w1, w2, bias_first=False):
    out_f, in_f = linear.weight.shape
    first = nn.Linear(in_f, rank, bias=bias_first, dtype=linear.weight.dtype)
    second = nn.Linear(rank, out_f, bias=linear.bias is not None and not bias_first, dtype=linear.weight.dtype)
    with torch.no_grad():
        first.weight.copy_(w1)
        second.weight.copy_(w2)
        if linear.bias is not None:
            (first if bias_first else second).bias.copy_(linear.bias[:rank] if bias_first else linear.bias)
    return nn.Sequential(first, second)


def lr_smallest_singular_values(linear, rank):
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    return _pair(linear, rank, Vh[-rank:], U[:, -rank:] * S[-rank:])


def lr_forgets_s(linear, rank):
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    return _pair(linear, rank, Vh[:rank], U[:, :rank])


def lr_drops_bias(linear, rank):
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    out = _pair(linear, rank, Vh[:rank], U[:, :rank] * S[:rank])
    if out[1].bias is not None:
        with torch.no_grad():
            out[1].bias.zero_()
    return out


def lr_no_rank_check(linear, rank):
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    rank = max(1, min(rank, S.numel()))  # silently clamps an invalid rank
    return _pair(linear, rank, Vh[:rank], U[:, :rank] * S[:rank])


LOWRANK_WRONG = [lr_smallest_singular_values, lr_forgets_s, lr_drops_bias, lr_no_rank_check]


def lr_sqrt_split(linear, rank):
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
    r = S[:rank].sqrt()
    return _pair(linear, rank, (r[:, None] * Vh[:rank]).to(linear.weight.dtype),
                 (U[:, :rank] * r).to(linear.weight.dtype))


def lr_lowrank_lib(linear, rank):
    from bigtrain_lab.compress import low_rank_factorize
    return low_rank_factorize(linear, rank)


def lr_sqrt_split_native(linear, rank):
    # the SVD in the layer's own dtype (float32 for a float32 layer), sqrt(S) on either side
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    r = S[:rank].sqrt()
    return _pair(linear, rank, r[:, None] * Vh[:rank], U[:, :rank] * r)


def lr_s_on_first_native(linear, rank):
    # first = S Vh, second = U: the singular values on the other side, in the layer's dtype
    _check(linear, rank)
    U, S, Vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    return _pair(linear, rank, S[:rank, None] * Vh[:rank], U[:, :rank])


def lr_numpy_svd(linear, rank):
    # numpy's LAPACK SVD in the layer's dtype, U S on the second layer
    import numpy as np

    _check(linear, rank)
    U, S, Vh = np.linalg.svd(linear.weight.detach().numpy(), full_matrices=False)
    first = torch.from_numpy(np.ascontiguousarray(Vh[:rank]))
    second = torch.from_numpy(np.ascontiguousarray(U[:, :rank] * S[:rank]))
    return _pair(linear, rank, first, second)


def lr_gram_eigh(linear, rank):
    # the top eigenvectors of W^T W (in float64) are the right singular vectors: first = V_r^T, second = W V_r
    _check(linear, rank)
    W = linear.weight.detach().double()
    _, V = torch.linalg.eigh(W.T @ W)
    Vr = V[:, -rank:].flip(1)
    return _pair(linear, rank, Vr.T.to(linear.weight.dtype), (W @ Vr).to(linear.weight.dtype))


LOWRANK_RIGHT = [lr_sqrt_split, lr_lowrank_lib, lr_sqrt_split_native, lr_s_on_first_native, lr_numpy_svd,
                 lr_gram_eigh]

# ---- compress.LoRALinear -----------------------------------------------------------------------------


class _LoRABase(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base, self.rank, self.alpha = base, rank, alpha
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(rank, base.in_features, dtype=base.weight.dtype) / math.sqrt(rank))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))

    def delta(self):
        return (self.alpha / self.rank) * (self.B @ self.A)

    def forward(self, x):
        return self.base(x) + (self.alpha / self.rank) * (x @ self.A.T @ self.B.T)

    def merge(self):
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


class LoRANoScaling(_LoRABase):
    def forward(self, x):
        return self.base(x) + x @ self.A.T @ self.B.T  # forgets alpha / rank


class LoRABaseNotFrozen(_LoRABase):
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        for p in base.parameters():
            p.requires_grad_(True)  # the whole layer keeps training: not LoRA


class LoRABothRandom(_LoRABase):
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        with torch.no_grad():
            self.B.normal_()  # the model no longer starts from the pretrained function


class LoRAMergeForgetsScaling(_LoRABase):
    def delta(self):
        return self.B @ self.A


class LoRAMergeInPlace(_LoRABase):
    def merge(self):
        # right weights, but folds the update into the base layer it was called on (a second merge, or the
        # next forward, now adds the update twice) and hands that layer out
        with torch.no_grad():
            self.base.weight += self.delta()
        return self.base


LORA_WRONG = [LoRANoScaling, LoRABaseNotFrozen, LoRABothRandom, LoRAMergeForgetsScaling, LoRAMergeInPlace]


class LoRAEinsum(_LoRABase):
    def forward(self, x):
        return F.linear(x, self.base.weight, self.base.bias) + self.alpha / self.rank * torch.einsum(
            "...i,ri,or->...o", x, self.A, self.B)


def lora_lib(base, rank, alpha):
    from bigtrain_lab.compress import LoRALinear
    return LoRALinear(base, rank, alpha)


LORA_RIGHT = [_LoRABase, LoRAEinsum, lora_lib]

WRONG = {
    "compress.magnitude_prune_mask": PRUNE_WRONG,
    "compress.quantize_affine": QUANT_WRONG,
    "compress.dequantize_affine": DEQUANT_WRONG,
    "compress.distillation_loss": KD_WRONG,
    "compress.low_rank_factorize": LOWRANK_WRONG,
    "compress.LoRALinear": LORA_WRONG,
}
RIGHT = {
    "compress.magnitude_prune_mask": PRUNE_RIGHT,
    "compress.quantize_affine": QUANT_RIGHT,
    "compress.dequantize_affine": DEQUANT_RIGHT,
    "compress.distillation_loss": KD_RIGHT,
    "compress.low_rank_factorize": LOWRANK_RIGHT,
    "compress.LoRALinear": LORA_RIGHT,
}
