"""Plausible WRONG dynamic loss-scale updates (``precision.update_loss_scale``; each must be rejected by
``check``) and several different CORRECT ones (each must be accepted)."""

FP32_MAX = 3.4028234663852886e38


def _check_factors(growth_factor, backoff_factor, growth_interval):
    if growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0 or growth_interval < 1:
        raise ValueError("bad factors")


def ls_no_reset_on_growth(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                          growth_interval=2000):
    # grows, but keeps counting instead of starting again
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker >= growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), tracker
    return scale, tracker


def ls_keep_tracker_on_overflow(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                                growth_interval=2000):
    # backs off but does not reset the count of clean steps
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, growth_tracker
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


def ls_off_by_one(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                  growth_interval=2000):
    # compares the count before adding this step
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    if growth_tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, growth_tracker + 1


def ls_python_float_scale(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                          growth_interval=2000):
    # right rule, but forgets that the scale lives in an fp32 tensor (grows past fp32's max)
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        return scale * growth_factor, 0
    return scale, tracker


def ls_divides_on_overflow(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                           growth_interval=2000):
    # "backoff" as a division: scale / backoff_factor grows the scale after an overflow
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale / backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


def ls_no_validation(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000):
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker >= growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


LOSS_SCALE_WRONG = [ls_no_reset_on_growth, ls_keep_tracker_on_overflow, ls_off_by_one, ls_python_float_scale,
                    ls_divides_on_overflow, ls_no_validation]


def ls_numpy_float32(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000):
    import numpy as np

    if not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0 or growth_interval < 1:
        raise ValueError("growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1")
    s = np.float32(scale)
    if found_inf:
        return float(s * np.float32(backoff_factor)), 0
    if growth_tracker + 1 < growth_interval:
        return float(s), growth_tracker + 1
    with np.errstate(over="ignore"):
        grown = s * np.float32(growth_factor)
    return float(grown if np.isfinite(grown) else s), 0


def ls_with_gradscaler(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                       growth_interval=2000):
    import torch

    if growth_interval < 1 or growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0:
        raise ValueError("invalid GradScaler settings")
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_factor=growth_factor,
                                  backoff_factor=backoff_factor, growth_interval=growth_interval)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    scaler._growth_tracker.fill_(growth_tracker)
    found = torch.tensor([1.0 if found_inf else 0.0])
    torch._amp_update_scale_(scaler._scale, scaler._growth_tracker, found, growth_factor, backoff_factor,
                             growth_interval)
    return scaler.get_scale(), int(scaler._growth_tracker.item())


LOSS_SCALE_RIGHT = [ls_numpy_float32, ls_with_gradscaler]


WRONG = {"precision.update_loss_scale": LOSS_SCALE_WRONG}
RIGHT = {"precision.update_loss_scale": LOSS_SCALE_RIGHT}
