"""Lesson 13's servable file and model server: the real server started from the CLI (``bigtrain-lab serve``)
on a free loopback port, and the app in process (``TestClient``) for validation messages and failures."""

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bigtrain_lab import cli
from bigtrain_lab.serving.servable import (
    FORMAT,
    Servable,
    build_mlp,
    builtin_model_path,
    load_servable,
    parse_forward_ms,
    resolve_model,
    save_servable,
    slow_servable,
)
from bigtrain_lab.serving.server import MicroBatcher, ServerProcess, create_app

JSON = {"content-type": "application/json"}


def in_process(app, scenario):
    """``await scenario(client)`` with an httpx client on the app in process, inside the app's lifespan."""

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await scenario(client)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data  # raw pixels, 0..16


@pytest.fixture(scope="module")
def served(digits):
    """The built-in model (trained once into the run's scratch kit home) and a server of it."""
    servable = load_servable(resolve_model("digits-mlp"))
    with ServerProcess("digits-mlp", max_batch=8, max_wait_ms=2) as server:
        yield servable, server


def post(server, body, **kw):
    if isinstance(body, (str, bytes)):
        return httpx.post(server.url + "/predict", content=body, headers=JSON, timeout=30, **kw)
    return httpx.post(server.url + "/predict", json=body, timeout=30, **kw)


# ---- the servable file --------------------------------------------------------------------------------

def tiny_servable(seed=0, model=None) -> Servable:
    torch.manual_seed(seed)
    return Servable(model=(model or build_mlp([64, 8, 10])).eval(), n_features=64, classes=list(range(10)),
                    input_range=(0.0, 16.0))


def test_a_servable_round_trips_through_one_safetensors_file(tmp_path, digits):
    model = build_mlp([64, 16, 12, 10])
    path = save_servable(model, tmp_path / "m.safetensors", meta={"note": "test"}, classes=range(10, 20))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left
    tensors = load_file(str(path))  # weights: safetensors only, no pickle
    assert sorted(tensors) == [f"layers.{i}.{k}" for i in range(3) for k in ("bias", "weight")]
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT
    assert json.loads(meta["architecture"])["sizes"] == [64, 16, 12, 10]
    assert json.loads(meta["input"]) == {"n_features": 64, "range": [0.0, 16.0], "scale": 16.0,
                                         "unit": "raw pixel intensity"}
    loaded = load_servable(path)
    assert (loaded.n_features, loaded.classes, loaded.meta) == (64, list(range(10, 20)), {"note": "test"})
    assert not loaded.model.training
    x = digits[:5]
    with torch.no_grad():
        expected = torch.softmax(model(torch.tensor(x / 16, dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(loaded.predict_proba(x), expected, rtol=1e-5, atol=1e-6)
    assert loaded.predict(x).min() >= 10


def test_save_servable_refuses_what_it_cannot_describe(tmp_path):
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_servable(build_mlp([64, 10]), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="nn.Sequential of Linear and ReLU"):
        save_servable(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 3)), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="3 classes for 10 outputs"):
        save_servable(build_mlp([64, 10]), tmp_path / "m.safetensors", classes=[0, 1, 2])


def test_load_servable_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no servable model"):
        load_servable(tmp_path / "missing.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a servable"):
        load_servable(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        load_servable(tmp_path / "junk.safetensors")
    good = save_servable(build_mlp([64, 10]), tmp_path / "good.safetensors")
    tensors = load_file(str(good))
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
    tensors["layers.0.weight"] = torch.zeros(10, 63)
    save_file(tensors, str(tmp_path / "bad_shape.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=r"layers.0.weight should have shape \(10, 64\), got \(10, 63\)"):
        load_servable(tmp_path / "bad_shape.safetensors")


def test_resolve_model_trains_the_builtin_once_and_checks_files(tmp_path):
    path = resolve_model("digits-mlp")  # the test's own empty kit home: trains
    assert path == builtin_model_path("digits-mlp") and path.parent.name == "models"
    assert [p.name for p in path.parent.iterdir()] == ["digits-mlp.safetensors"]
    stamp = path.stat().st_mtime_ns
    assert resolve_model("digits-mlp") == path and path.stat().st_mtime_ns == stamp  # cached
    servable = load_servable(path)
    assert servable.meta["test_accuracy"] > 0.9 and servable.meta["recipe"]["data"] == "digits"
    path.write_bytes(b"damaged")
    assert load_servable(resolve_model("digits-mlp")).n_features == 64  # a damaged cache is retrained
    with pytest.raises(ValueError, match="unknown model 'nope'.*digits-mlp"):
        resolve_model("nope")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        resolve_model(tmp_path / "missing.safetensors")


def test_slow_servable_adds_its_cost_and_parse_forward_ms(digits):
    fast = tiny_servable()
    slow = slow_servable(fast, (30.0, 1.0))
    assert fast.forward_cost_ms is None and slow.forward_cost_ms == (30.0, 1.0)
    start = time.perf_counter()
    np.testing.assert_array_equal(slow.predict_proba(digits[:10]), fast.predict_proba(digits[:10]))
    assert time.perf_counter() - start >= 0.040  # a sleep never ends early: at least 30 + 10 x 1 ms
    assert slow_servable(fast, 5).forward_cost_ms == (5.0, 0.0)
    assert parse_forward_ms("2") == (2.0, 0.0) and parse_forward_ms(" 2 , 0.02 ") == (2.0, 0.02)
    for bad in ("", "a", "1,2,3", "-1", "nan", "1,inf"):
        with pytest.raises(ValueError, match="FIXED,PER_ITEM"):
            parse_forward_ms(bad)
    with pytest.raises(ValueError, match="cost_ms"):
        slow_servable(fast, (-1.0, 0.0))


# ---- the server, started from the CLI -------------------------------------------------------------------

def test_a_valid_request_gets_the_models_own_prediction(served, digits):
    servable, server = served
    for i in (0, 1, 7):
        r = post(server, {"features": digits[i].tolist()})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["label"] == int(servable.predict(digits[i:i + 1])[0])
        assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert 1 <= body["batch_size"] <= 8
    assert post(server, {"features": [0] * 64}).status_code == 200  # integers are numbers too


def test_healthz_reports_the_knobs_and_the_queue(served):
    _, server = served
    health = server.get("/healthz")
    assert health["status"] == "ok" and health["queue"] == 0
    assert (health["max_batch"], health["max_wait_ms"], health["queue_size"]) == (8, 2.0, 256)
    stats = server.get("/stats")
    assert {"requests", "served", "batches", "mean_batch_size", "rejected", "failed", "in_handler_max"} <= set(stats)


def detail(response) -> list[dict]:
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def test_malformed_json_is_a_422(served):
    _, server = served
    (error,) = detail(post(server, '{"features": [1, 2'))
    assert error["type"] == "json_invalid"


@pytest.mark.parametrize("n", [0, 3, 65])
def test_a_wrong_length_is_a_422_naming_features(served, n):
    _, server = served
    (error,) = detail(post(server, {"features": [1.0] * n}))
    assert error["loc"] == ["body", "features"]
    assert "exactly 64" in error["msg"] and f"got {n}" in error["msg"]


@pytest.mark.parametrize("bad", ['"x"', "true", "null", '"1.5"', "[1]"])
def test_a_non_number_in_the_list_is_a_422_naming_its_index(served, bad):
    _, server = served
    (error,) = detail(post(server, '{"features": [' + "1.0, " * 5 + bad + ", 1.0" * 58 + "]}"))
    assert error["loc"] == ["body", "features", 5] and "valid number" in error["msg"]


@pytest.mark.parametrize("bad, message", [("NaN", "finite"), ("Infinity", "finite"), ("-Infinity", "finite"),
                                          ("16.5", "outside the input range [0, 16]"),
                                          ("-1", "outside the input range [0, 16]")])
def test_nan_and_out_of_range_values_are_a_422(served, bad, message):
    _, server = served
    (error,) = detail(post(server, '{"features": [' + "1.0, " * 9 + bad + ", 1.0" * 54 + "]}"))
    assert error["loc"] == ["body", "features", 9] and message in error["msg"]


def test_missing_or_extra_fields_are_a_422(served):
    _, server = served
    errors = detail(post(server, {"instances": [[0.0] * 64]}))
    assert {tuple(e["loc"]) for e in errors} == {("body", "features"), ("body", "instances")}


def test_an_oversized_body_is_a_413(served):
    _, server = served
    r = post(server, b"[" + b"1.0," * 40_000 + b"1.0]")
    assert r.status_code == 413 and "too large" in r.json()["detail"] and "16384" in r.json()["detail"]

    def chunks():  # no Content-Length: the size is counted as the body arrives
        yield b'{"features": ['
        for _ in range(20):
            yield b"1.0, " * 200
        yield b"1.0]}"

    r = httpx.post(server.url + "/predict", content=chunks(), headers=JSON, timeout=30)
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    assert post(server, {"features": [1.0] * 64}).status_code == 200


async def _burst(url: str, n: int, body: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
        return await asyncio.gather(*(client.post(url, json=body) for _ in range(n)))


def test_a_burst_beyond_the_queue_gets_503_with_retry_after_then_the_server_still_answers(served, digits):
    model_file = served[0].path  # the cached built-in (this test's own kit home is empty)
    with ServerProcess(model_file, max_batch=1, queue_size=4, forward_ms="50") as server:
        responses = asyncio.run(_burst(server.url + "/predict", 24, {"features": digits[0].tolist()}))
        codes = [r.status_code for r in responses]
        assert set(codes) == {200, 503} and codes.count(200) >= 4, codes  # the queue's 4 (+1 being computed)
        rejected = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and "queue is full" in r.json()["detail"] for r in rejected)
        assert post(server, {"features": digits[1].tolist()}).status_code == 200
        stats = server.get("/stats")
        assert stats["rejected"] == len(rejected) and stats["max_batch_size_seen"] == 1


def test_server_process_reports_a_failed_start_with_its_output(tmp_path):
    with pytest.raises(RuntimeError, match="(?s)exited with code 2.*model file not found"), \
            ServerProcess(tmp_path / "missing.safetensors", startup_timeout_s=60):
        pass


# ---- the CLI ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown model 'nope'"),
    (["missing.safetensors"], "model file not found"),
    (["digits-mlp", "--forward-ms", "fast"], "--forward-ms takes FIXED"),
    (["digits-mlp", "--max-batch", "0"], "max_batch must be an integer >= 1"),
])
def test_serve_with_a_bad_argument_exits_2_with_a_message(capsys, args, message):
    assert cli.main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---- the app in process -----------------------------------------------------------------------------------

class Exploding(torch.nn.Module):
    """The tiny MLP, but a forward pass with a first pixel of exactly 13 raises."""

    def __init__(self):
        super().__init__()
        self.net = build_mlp([64, 8, 10])

    def forward(self, x):
        if bool((x[:, 0] == 13 / 16).any()):
            raise RuntimeError("boom")
        return self.net(x)


def test_in_process_validation_messages_and_a_failing_forward_pass():
    async def scenario(client):
        ok = await client.post("/predict", json={"features": [2.0] * 64})
        assert ok.status_code == 200 and ok.json()["batch_size"] == 1
        r = await client.post("/predict", json={"features": [2.0] * 10})
        assert r.status_code == 422 and r.json()["detail"][0]["msg"] == (
            "features must hold exactly 64 numbers (one instance), got 10")
        r = await client.post("/predict", json={"features": [2.0] * 63 + [99]})
        assert r.json()["detail"][0]["msg"] == ("features[63] = 99 is outside the input range [0, 16] "
                                               "(raw pixel units)")
        boom = await client.post("/predict", json={"features": [13.0] + [2.0] * 63})
        assert boom.status_code == 500 and "forward pass failed: RuntimeError: boom" in boom.json()["detail"]
        assert (await client.post("/predict", json={"features": [2.0] * 64})).status_code == 200  # still serving
        return (await client.get("/stats")).json()

    stats = in_process(create_app(tiny_servable(model=Exploding()), max_batch=1), scenario)
    assert (stats["served"], stats["failed"], stats["batches"]) == (2, 1, 2)


def test_the_batcher_refuses_bad_knobs_and_a_small_body_limit_gives_413():
    for kwargs, name in (({"max_batch": 0}, "max_batch"), ({"max_wait_ms": -1.0}, "max_wait_ms"),
                         ({"queue_size": 0}, "queue_size")):
        with pytest.raises(ValueError, match=name):
            MicroBatcher(lambda x: x, **kwargs)
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(tiny_servable(), max_body_bytes=0)
    async def scenario(client):
        r = await client.post("/predict", json={"features": [2.0] * 64})
        assert r.status_code == 413 and "the limit is 100" in r.json()["detail"]
        assert (await client.get("/healthz")).json()["status"] == "ok"

    in_process(create_app(tiny_servable(), max_body_bytes=100), scenario)


def test_the_batcher_forms_one_batch_from_simultaneous_requests():
    calls = []

    def predict(X):
        calls.append(len(X))
        return np.tile(np.eye(3)[X[:, 0].astype(int)], 1)

    async def main():
        batcher = MicroBatcher(predict, max_batch=4, max_wait_ms=50, queue_size=16)
        await batcher.start()
        try:
            out = await asyncio.gather(*(batcher.submit(np.array([i % 3, 0.0])) for i in range(6)))
        finally:
            await batcher.stop()
        return out, batcher.stats()

    out, stats = asyncio.run(main())
    assert calls == [4, 2] and [size for _, size in out] == [4, 4, 4, 4, 2, 2]
    assert [int(np.argmax(p)) for p, _ in out] == [0, 1, 2, 0, 1, 2]  # each request gets its own row
    assert (stats["batches"], stats["mean_batch_size"], stats["batch_size_counts"]) == (2, 3.0, {"2": 1, "4": 1})
