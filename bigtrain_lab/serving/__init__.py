"""Real-time model serving for lesson 13 (``notebooks/13_serving.ipynb``).

* ``servable``: a small digits MLP saved as one ``.safetensors`` file with its architecture and input spec in
  the metadata (``save_servable``, ``load_servable``, ``resolve_model``, ``slow_servable``).
* ``batching``: the micro-batching policy as a pure function of arrival times, and ``latency_report``.
* ``server``: the FastAPI server with a bounded queue and dynamic micro-batching (``create_app``, ``serve``,
  ``ServerProcess``); ``blocking``: the wrong answer, a forward pass that blocks the event loop.
* ``loadgen``: an open-loop (Poisson) load generator with latency percentiles and Little's law.

The server and load generator import FastAPI and httpx: import them from their modules.
"""

from bigtrain_lab.serving.batching import latency_report, micro_batches
from bigtrain_lab.serving.servable import (
    Servable,
    load_servable,
    resolve_model,
    save_servable,
    slow_servable,
    train_digits_mlp,
)

__all__ = ["Servable", "latency_report", "load_servable", "micro_batches", "resolve_model", "save_servable",
           "slow_servable", "train_digits_mlp"]
