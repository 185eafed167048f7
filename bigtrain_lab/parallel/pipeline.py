"""Pipeline parallelism: the GPipe and 1F1B schedules, their dependencies, in-flight activations and bubble.

A model cut into ``p`` consecutive *stages* (one per rank) runs a batch split into ``m`` *micro-batches*.
A schedule says, for every stage, the order of its operations ``("F", mb)`` (forward of micro-batch ``mb``)
and ``("B", mb)`` (its backward). The data flow fixes the dependencies:

* ``F(mb)`` on stage ``s`` needs the activation of ``F(mb)`` on stage ``s - 1``;
* ``B(mb)`` on stage ``s`` needs the gradient of ``B(mb)`` on stage ``s + 1`` (on the last stage, its own
  ``F(mb)``: the loss).

**GPipe** (Huang et al. 2019): all forwards, then all backwards; every stage holds the activations of all
``m`` micro-batches at the turn. **1F1B** (PipeDream-Flush, Narayanan et al. 2021; Megatron-LM's
non-interleaved schedule): stage ``s`` runs ``w = min(p - s - 1, m)`` warm-up forwards, then alternates one
forward and one backward, then drains the remaining backwards; it holds at most ``min(p - s, m)``
micro-batches' activations. Both leave the same idle time, the *bubble*: with a forward taking ``t_f`` and a
backward ``t_b`` on every stage, a step lasts ``(m + p - 1)(t_f + t_b)`` of which each stage computes
``m (t_f + t_b)``, an idle share of ``(p - 1) / (m + p - 1)``
(``bigtrain_lab.estimate.formulas.bubble_fraction``).

``pipeline_schedule`` is the exercise reference (it matches ``torch.distributed.pipelining``'s
``ScheduleGPipe`` and ``Schedule1F1B`` orders); ``check_schedule``, ``max_in_flight``, ``simulate`` and
``bubble_fraction`` examine any schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["SCHEDULES", "Event", "bubble_fraction", "check_schedule", "in_flight_trace", "max_in_flight",
           "pipeline_schedule", "simulate", "stage_bubbles"]

SCHEDULES = ("gpipe", "1f1b")
Op = tuple[str, int]
Schedule = list[list[Op]]


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def pipeline_schedule(num_stages: int, num_microbatches: int, kind: str) -> list[list[tuple[str, int]]]:
    """The operations of each stage, in execution order: ``schedule[s] = [("F", 0), ..., ("B", m - 1)]``.

    ``kind="gpipe"``: ``F0 .. F(m-1)`` then ``B0 .. B(m-1)`` on every stage (backward in micro-batch order, as
    ``torch.distributed.pipelining.ScheduleGPipe``). ``kind="1f1b"``: stage ``s`` runs ``w = min(p - s - 1, m)``
    warm-up forwards ``F0 .. F(w-1)``, then ``F(w + i), B(i)`` for ``i < m - w``, then ``B(m - w) .. B(m - 1)``.

    >>> pipeline_schedule(2, 3, "1f1b")
    [[('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)], [('F', 0), ('B', 0), ('F', 1), ('B', 1), ('F', 2), ('B', 2)]]
    """
    p = _count("num_stages", num_stages)
    m = _count("num_microbatches", num_microbatches)
    if kind not in SCHEDULES:
        raise ValueError(f"kind must be one of {SCHEDULES}, got {kind!r}")
    schedule: Schedule = []
    for s in range(p):
        if kind == "gpipe":
            ops = [("F", i) for i in range(m)] + [("B", i) for i in range(m)]
        else:
            w = min(p - s - 1, m)
            ops = [("F", i) for i in range(w)]
            for i in range(m - w):
                ops += [("F", w + i), ("B", i)]
            ops += [("B", i) for i in range(m - w, m)]
        schedule.append(ops)
    return schedule


def _parse(schedule: object, num_microbatches: int) -> tuple[list[list[Op]], list[str]]:
    """The schedule as lists of ``(op, mb)`` and the problems of form (bad entries are dropped)."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence) or len(schedule) == 0:
        return [], [f"a schedule is a non-empty list with one list of operations per stage, got "
                    f"{type(schedule).__name__}"]
    problems: list[str] = []
    stages: list[list[Op]] = []
    for s, ops in enumerate(schedule):
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
            problems.append(f"stage {s}: expected a list of operations, got {type(ops).__name__}")
            stages.append([])
            continue
        clean = []
        for k, op in enumerate(ops):
            ok = (isinstance(op, Sequence) and not isinstance(op, str) and len(op) == 2 and op[0] in ("F", "B")
                  and isinstance(op[1], int) and not isinstance(op[1], bool) and 0 <= op[1] < num_microbatches)
            if ok:
                clean.append((op[0], int(op[1])))
            else:
                problems.append(f"stage {s}, position {k}: {op!r} is not ('F' or 'B', micro-batch in "
                                f"0..{num_microbatches - 1})")
        stages.append(clean)
    return stages, problems


def _dependency(stage: int, op: Op, num_stages: int) -> tuple[int, Op] | None:
    """The operation on another stage that ``op`` on ``stage`` waits for (None: none)."""
    kind, mb = op
    if kind == "F":
        return (stage - 1, ("F", mb)) if stage > 0 else None
    return (stage + 1, ("B", mb)) if stage < num_stages - 1 else None


def check_schedule(schedule: Sequence[Sequence[tuple[str, int]]], num_microbatches: int) -> list[str]:
    """The problems of a schedule, as sentences (an empty list: it is valid).

    Checked: every stage runs each ``F(mb)`` and ``B(mb)`` exactly once, ``B(mb)`` after ``F(mb)`` on the same
    stage, and the stages can run their lists in order without a deadlock (``F(mb)`` on ``s`` waits for
    ``F(mb)`` on ``s - 1``, ``B(mb)`` on ``s`` for ``B(mb)`` on ``s + 1``).
    """
    m = _count("num_microbatches", num_microbatches)
    stages, problems = _parse(schedule, m)
    for s, ops in enumerate(stages):
        for kind in ("F", "B"):
            counts = [0] * m
            for k, mb in ops:
                if k == kind:
                    counts[mb] += 1
            missing = [i for i, c in enumerate(counts) if c == 0]
            repeated = [i for i, c in enumerate(counts) if c > 1]
            if missing:
                problems.append(f"stage {s}: {kind} of micro-batch(es) {missing} missing")
            if repeated:
                problems.append(f"stage {s}: {kind} of micro-batch(es) {repeated} more than once")
        position = {op: k for k, op in reversed(list(enumerate(ops)))}
        for mb in range(m):
            f, b = position.get(("F", mb)), position.get(("B", mb))
            if f is not None and b is not None and b < f:
                problems.append(f"stage {s}: B{mb} before F{mb} (a backward needs its forward's activations)")
    if not problems:
        try:
            simulate(stages, 1.0, 2.0)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def in_flight_trace(ops: Sequence[tuple[str, int]]) -> list[int]:
    """Micro-batches whose activations a stage holds after each of its operations (forwards done minus
    backwards done)."""
    held, trace = 0, []
    for kind, _ in ops:
        held += 1 if kind == "F" else -1
        trace.append(held)
    return trace


def max_in_flight(schedule: Sequence[Sequence[tuple[str, int]]]) -> list[int]:
    """Per stage, the most micro-batches whose activations are held at once: ``m`` on every stage of GPipe,
    ``min(p - s, m)`` on stage ``s`` of 1F1B."""
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise TypeError(f"schedule must be a list of per-stage operation lists, got {type(schedule).__name__}")
    return [max([0, *in_flight_trace(ops)]) for ops in schedule]


@dataclass(frozen=True)
class Event:
    """One operation of a timeline: ``op`` ("F" / "B") of micro-batch ``mb`` on ``stage`` from ``start`` to
    ``end`` (seconds or any time unit)."""

    stage: int
    op: str
    mb: int
    start: float
    end: float

    def as_dict(self) -> dict:
        return asdict(self)


def _per_stage(name: str, value: float | Sequence[float], p: int) -> list[float]:
    values = list(value) if isinstance(value, Sequence) else [value] * p
    if len(values) != p:
        raise ValueError(f"{name} must be a number or one per stage ({p}), got {len(values)} values")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    return [float(v) for v in values]


def simulate(schedule: Sequence[Sequence[tuple[str, int]]], t_forward: float | Sequence[float] = 1.0,
             t_backward: float | Sequence[float] = 2.0) -> list[Event]:
    """The timeline of a schedule: each stage runs its operations in order, each starting when its stage's
    previous operation and its dependency on the neighbouring stage have both ended (communication free).

    ``t_forward`` / ``t_backward``: the time of one micro-batch's forward / backward, one number or one per
    stage. Returns the events sorted by start; ``ValueError`` names the stuck operations on a deadlock.
    """
    stages = [list(ops) for ops in schedule]
    p = len(stages)
    if p == 0:
        raise ValueError("the schedule has no stages")
    tf, tb = _per_stage("t_forward", t_forward, p), _per_stage("t_backward", t_backward, p)
    done: dict[tuple[int, Op], float] = {}
    nxt = [0] * p
    clock = [0.0] * p
    events: list[Event] = []
    progress = True
    while progress:
        progress = False
        for s in range(p):
            while nxt[s] < len(stages[s]):
                op = tuple(stages[s][nxt[s]])
                dep = _dependency(s, op, p)
                if op[0] == "B" and (s, ("F", op[1])) not in done:
                    break  # its own forward has not run yet
                if dep is not None and dep not in done:
                    break
                start = max(clock[s], done[dep] if dep is not None else 0.0)
                end = start + (tf[s] if op[0] == "F" else tb[s])
                done[(s, op)] = end
                clock[s] = end
                events.append(Event(s, op[0], op[1], start, end))
                nxt[s] += 1
                progress = True
    stuck = [f"stage {s} at {stages[s][nxt[s]][0]}{stages[s][nxt[s]][1]}" for s in range(p)
             if nxt[s] < len(stages[s])]
    if stuck:
        raise ValueError("deadlock: every stage waits for an operation that cannot run first ("
                         + ", ".join(stuck) + ")")
    return sorted(events, key=lambda e: (e.start, e.stage))


def _events(timeline: Sequence[Event | dict]) -> list[Event]:
    return [e if isinstance(e, Event) else Event(**e) for e in timeline]


def stage_bubbles(timeline: Sequence[Event | dict], num_stages: int | None = None) -> list[float]:
    """Each stage's idle share of the step: ``1 - busy_s / (last end - first start)`` over the whole timeline."""
    events = _events(timeline)
    if not events:
        raise ValueError("empty timeline")
    p = num_stages if num_stages is not None else 1 + max(e.stage for e in events)
    span = max(e.end for e in events) - min(e.start for e in events)
    if span <= 0:
        raise ValueError("the timeline spans no time")
    busy = [0.0] * p
    for e in events:
        busy[e.stage] += e.end - e.start
    return [1.0 - b / span for b in busy]


def bubble_fraction(timeline: Sequence[Event | dict], num_stages: int | None = None) -> float:
    """The idle share of a step measured on a timeline (``simulate``'s or a real run's), averaged over the
    stages. With equal ``t_f``, ``t_b`` on every stage it equals ``(p - 1) / (m + p - 1)``."""
    bubbles = stage_bubbles(timeline, num_stages)
    return sum(bubbles) / len(bubbles)
