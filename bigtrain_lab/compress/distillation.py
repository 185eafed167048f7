"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): a small student learns from a teacher's
softened output distribution as well as from the labels.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))  +  (1 - alpha) * CE(student, y)

The temperature T > 1 spreads the teacher's probability over the wrong classes ("a 3 looks a bit like an
8"): that dark knowledge is what the labels do not carry. Gradients of the soft term scale as 1 / T^2,
hence the T^2 factor that keeps both terms comparable when T changes. KL uses ``batchmean`` (sum over
classes, mean over samples), the mathematically correct reduction; ``reduction="mean"`` would also
divide by the number of classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, *,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton's loss (see the module docstring); the teacher gets no gradient."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
                         f"{tuple(teacher_logits.shape)}")
    T = float(temperature)
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits.detach() / T, dim=-1),
                    reduction="batchmean")
    hard = F.cross_entropy(student_logits, targets)
    return alpha * T * T * soft + (1.0 - alpha) * hard


def distillation_loss_fn(teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.9):
    """``loss_fn(student, x, y)`` for ``fit_classifier`` / ``bigtrain_lab.train.train``: runs the frozen
    teacher (eval mode, no gradient) on the same batch."""
    teacher.eval()

    def loss_fn(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t = teacher(x)
        return distillation_loss(student(x), t, y, temperature=temperature, alpha=alpha)

    return loss_fn


UNLABELLED = -100


@torch.no_grad()
def transfer_targets(teacher: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Offline distillation targets for a transfer set: ``(N, 1 + classes)`` float rows ``[label,
    teacher logits...]``, the label ``UNLABELLED`` (-100) where a row has none. The frozen teacher runs once
    over the set (as soft labels are stored in practice when the teacher is large), so each training step
    costs only the student's; ``transfer_loss_fn`` reads them."""
    teacher.eval()
    return torch.cat([y.to(torch.float32).unsqueeze(1), teacher(X).float()], dim=1)


def transfer_loss_fn(*, temperature: float = 4.0, alpha: float = 0.5):
    """``loss_fn(student, x, targets)`` over ``transfer_targets`` rows, for a transfer set that is partly
    UNLABELLED: ``alpha * T^2 * KL(teacher_T || student_T)`` over every row of the batch plus
    ``(1 - alpha) * CE`` over its labelled rows only (0 when the batch has none). With every row labelled it
    equals ``distillation_loss``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    T = float(temperature)

    def loss_fn(student: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y, t = targets[:, 0].long(), targets[:, 1:]
        z = student(x)
        soft = F.kl_div(F.log_softmax(z / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
        labelled = y != UNLABELLED
        hard = F.cross_entropy(z[labelled], y[labelled]) if bool(labelled.any()) else z.sum() * 0.0
        return alpha * T * T * soft + (1.0 - alpha) * hard

    return loss_fn


@torch.no_grad()
def agreement(model: nn.Module, reference: nn.Module, X: torch.Tensor) -> float:
    """Fraction of rows on which ``model`` predicts the same class as ``reference`` (e.g. the teacher)."""
    model.eval()
    reference.eval()
    return float((model(X).argmax(-1) == reference(X).argmax(-1)).float().mean())


@torch.no_grad()
def kl_to(model: nn.Module, reference: nn.Module, X: torch.Tensor) -> float:
    """Mean KL(reference || model) of the predicted distributions (T = 1): how close to the teacher."""
    model.eval()
    reference.eval()
    return float(F.kl_div(F.log_softmax(model(X), -1), F.softmax(reference(X), -1), reduction="batchmean"))
