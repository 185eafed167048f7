"""Lesson 13's circulating wrong answer (``notebooks/13_serving.ipynb``): "FastAPI is async, so an
``async def`` endpoint that calls the model serves many requests at once."

It does not: ``model(x)`` is ordinary blocking code, and inside ``async def`` it runs ON the event loop, so
while one forward pass runs nothing else happens: no other request is parsed, answered or even accepted,
and ``/healthz`` waits too. :func:`create_blocking_app` is that server (same routes and validation as
``server.create_app``); its ``/stats`` records how many requests were inside the forward pass at once
(``in_forward_max``), which stays 1 under any load, while the micro-batching server answers a burst in
batches larger than 1. The fixes: run the forward off the loop (``asyncio.to_thread``, a plain ``def``
endpoint, or the batcher's executor) and batch.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI

from bigtrain_lab.serving.servable import Servable
from bigtrain_lab.serving.server import (
    DEFAULT_MAX_BODY_BYTES,
    BodyLimit,
    PredictRequest,
    _checked_body_limit,
    check_features,
)

__all__ = ["create_blocking_app", "max_concurrency"]


def create_blocking_app(servable: Servable, *, forward_ms: tuple[float, float] | None = None,
                        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The WRONG server: ``POST /predict`` calls the blocking forward pass directly inside ``async def``.
    ``forward_ms``: ``(fixed, per_item)`` ms of artificial (blocking) cost, as ``slow_servable``."""
    if forward_ms is not None:
        from bigtrain_lab.serving.servable import slow_servable

        servable = slow_servable(servable, forward_ms)
    app = FastAPI(title="bigtrain-lab BLOCKING model server (lesson 13's wrong answer)")
    counts = {"requests": 0, "served": 0, "in_forward": 0, "in_forward_max": 0}
    classes = np.asarray(servable.classes)

    @app.post("/predict")
    async def predict(body: PredictRequest) -> dict[str, Any]:
        x = check_features(body.features, servable)
        counts["requests"] += 1
        counts["in_forward"] += 1
        counts["in_forward_max"] = max(counts["in_forward_max"], counts["in_forward"])
        try:
            probs = servable.predict_proba(x[None, :])[0]  # blocks the event loop: the mistake
        finally:
            counts["in_forward"] -= 1
        counts["served"] += 1
        return {"label": int(classes[int(np.argmax(probs))]), "probabilities": probs.tolist(), "batch_size": 1}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue": 0, "max_batch": 1, "max_wait_ms": 0.0, "served": counts["served"],
                "blocking": True}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {**counts, "blocking": True, "forward_ms": servable.forward_cost_ms}

    app.add_middleware(BodyLimit, max_bytes=_checked_body_limit(max_body_bytes))
    return app


def max_concurrency(url: str) -> int:
    """The most requests a running server had inside its forward pass (blocking app: ``in_forward_max``)
    or its ``/predict`` handler (micro-batching app: ``in_handler_max``) at once, from ``url + "/stats"``."""
    stats = httpx.get(url.rstrip("/") + "/stats", timeout=10.0).raise_for_status().json()
    return int(stats["in_forward_max"] if stats.get("blocking") else stats["in_handler_max"])
