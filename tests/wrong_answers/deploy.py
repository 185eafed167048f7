"""Plausible WRONG implementations of the ``deploy.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import copy

import torch


def save_weights_only(model, optimizer, scheduler, step):
    # the classic: only the model's weights; AdamW's moments, the schedule and the RNG start over
    return {"model": model.state_dict(), "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
            "scheduler": {}, "step": step, "rng": torch.get_rng_state()}


def save_without_rng(model, optimizer, scheduler, step):
    # everything but the RNG: dropout masks and the batch order differ after the restart
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": step, "rng": torch.Generator().get_state()}  # a fresh generator's state, not the run's


def save_whole_objects(model, optimizer, scheduler, step):
    # pickles the module itself: torch.load(weights_only=True) refuses it
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "step": step, "rng": torch.get_rng_state()}
    state["module"] = model
    return state


def save_step_plus_one(model, optimizer, scheduler, step):
    # "the next step to run": one step is skipped after the restart
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": step + 1, "rng": torch.get_rng_state()}


def save_fresh_scheduler_state(model, optimizer, scheduler, step):
    # the scheduler's state is not saved: the LR schedule restarts from its first step
    fresh = {k: v for k, v in scheduler.state_dict().items()}
    fresh["last_epoch"], fresh["_step_count"] = 0, 1
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": fresh,
            "step": step, "rng": torch.get_rng_state()}


def save_right_deepcopy(model, optimizer, scheduler, step):
    return copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "step": int(step), "rng": torch.get_rng_state()})


def save_right_cloned(model, optimizer, scheduler, step):
    return {"rng": torch.get_rng_state().clone(), "step": step,
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(), "scheduler": dict(scheduler.state_dict())}


def restore_model_only(state, model, optimizer, scheduler):
    model.load_state_dict(state["model"])
    return int(state["step"])


def restore_without_rng(state, model, optimizer, scheduler):
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


def restore_without_scheduler(state, model, optimizer, scheduler):
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def restore_returns_zero(state, model, optimizer, scheduler):
    # restores everything but starts counting from 0: trains total_steps more steps
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return 0


def restore_right(state, model, optimizer, scheduler):
    torch.set_rng_state(state["rng"])
    optimizer.load_state_dict(state["optimizer"])
    model.load_state_dict(state["model"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


def restore_right_strict_copy(state, model, optimizer, scheduler):
    with torch.no_grad():
        for name, p in model.state_dict().items():
            p.copy_(state["model"][name])
    optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    torch.random.set_rng_state(state["rng"].clone())
    return state["step"]


WRONG = {
    "deploy.training_state": [save_weights_only, save_without_rng, save_whole_objects, save_step_plus_one,
                              save_fresh_scheduler_state],
    "deploy.restore_training_state": [restore_model_only, restore_without_rng, restore_without_scheduler,
                                      restore_returns_zero],
}
RIGHT = {
    "deploy.training_state": [save_right_deepcopy, save_right_cloned],
    "deploy.restore_training_state": [restore_right, restore_right_strict_copy],
}
