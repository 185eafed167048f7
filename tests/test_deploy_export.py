"""bigtrain_lab.deploy.export: an ONNX export equals eager within ONNX_ATOL at any batch size, int8 models
agree with eager on most predictions, and the latency table reports every engine."""

import numpy as np
import onnx
import pytest
import torch

from bigtrain_lab.deploy import (
    ONNX_ATOL,
    export_onnx,
    latency_table,
    max_abs_diff_vs_eager,
    ort_predict,
    ort_session,
    quantize_onnx_dynamic,
    train_digits_mlp,
)
from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.models import CNN


@pytest.fixture(scope="module")
def mlp_and_data():
    return train_digits_mlp(hidden=(128, 128), epochs=8)


@pytest.fixture(scope="module")
def cnn(mlp_and_data):
    _, data = mlp_and_data
    torch.manual_seed(0)
    model = CNN()
    fit_classifier(model, data.X_train, data.y_train, epochs=3, seed=0)
    return model.eval()


@pytest.fixture(scope="module")
def exported(mlp_and_data, tmp_path_factory):
    model, data = mlp_and_data
    return export_onnx(model, data.X_test[:1], tmp_path_factory.mktemp("onnx") / "mlp.onnx")


def test_the_onnx_mlp_equals_eager_at_batch_1_and_at_other_sizes(mlp_and_data, exported):
    model, data = mlp_and_data
    graph = onnx.load(str(exported)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a symbolic batch dimension
    session = ort_session(exported, threads=1)
    for batch in (1, 7, 64, len(data.X_test)):
        diff = max_abs_diff_vs_eager(model, session, data.X_test[:batch])
        assert diff < ONNX_ATOL, (batch, diff)
    assert ort_predict(session, data.X_test[:3]).shape == (3, 10)


def test_the_onnx_cnn_equals_eager_on_images(cnn, mlp_and_data, tmp_path):
    _, data = mlp_and_data
    images = data.X_test.view(-1, 1, 8, 8)
    session = ort_session(export_onnx(cnn, images[:4], tmp_path / "cnn.onnx"), threads=1)
    for batch in (1, 5, 64):
        assert max_abs_diff_vs_eager(cnn, session, images[:batch]) < ONNX_ATOL


def test_a_static_export_accepts_only_its_batch_size(mlp_and_data, tmp_path):
    model, data = mlp_and_data
    path = export_onnx(model, data.X_test[:4], tmp_path / "static.onnx", dynamic_batch=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    session = ort_session(path, threads=1)
    assert max_abs_diff_vs_eager(model, session, data.X_test[:4]) < ONNX_ATOL
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        ort_predict(session, data.X_test[:5])


def test_the_int8_onnx_model_is_smaller_and_agrees_on_most_predictions(mlp_and_data, exported, tmp_path):
    model, data = mlp_and_data
    int8 = quantize_onnx_dynamic(exported, tmp_path / "mlp.int8.onnx")
    assert int8.stat().st_size < exported.stat().st_size / 3  # 1 byte per weight instead of 4
    quantized = ort_predict(ort_session(int8, threads=1), data.X_test)
    with torch.no_grad():
        eager = model(data.X_test).numpy()
    assert (quantized.argmax(1) == eager.argmax(1)).mean() >= 0.95
    assert 0 < np.abs(quantized - eager).max() < 1.0  # rounding, but not much


def test_the_fast_latency_table_has_every_engine(mlp_and_data, tmp_path):
    model, data = mlp_and_data
    rows = latency_table(model, (1, 8), X_test=data.X_test, y_test=data.y_test, compile=False, repeat_s=0.01,
                         tmp_dir=tmp_path)
    by_engine = {(r["engine"], r["batch_size"]): r for r in rows}
    engines = ["eager", "onnxruntime fp32", "onnxruntime int8", "torchao int8"]
    assert sorted(by_engine) == sorted((e, b) for e in engines for b in (1, 8))
    for row in rows:
        assert row["error"] is None, row
        assert row["median_ms"] > 0 and row["file_bytes"] > 0 and row["compile_s"] is None
        assert row["argmax_agreement"] >= 0.95 and row["accuracy"] > 0.85
    eager = by_engine["eager", 1]
    assert eager["max_abs_diff"] == 0.0 and eager["argmax_agreement"] == 1.0
    assert by_engine["onnxruntime fp32", 8]["max_abs_diff"] < ONNX_ATOL
    for int8 in ("onnxruntime int8", "torchao int8"):
        assert by_engine[int8, 1]["file_bytes"] < eager["file_bytes"] / 2
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.int8.onnx").is_file()


def test_an_engine_that_fails_becomes_an_error_row(mlp_and_data, monkeypatch):
    def broken(model):
        raise RuntimeError("no int8 kernel here")

    from bigtrain_lab.compress import quantization

    monkeypatch.setattr(quantization, "int8_dynamic", broken)
    model, data = mlp_and_data
    rows = latency_table(model, (2,), X_test=data.X_test[:20], y_test=data.y_test[:20], compile=False,
                         repeat_s=0.005)
    failed = [r for r in rows if r["engine"] == "torchao int8"]
    assert failed == [{"engine": "torchao int8", "batch_size": 2, "median_ms": None, "file_bytes": None,
                       "max_abs_diff": None, "argmax_agreement": None, "accuracy": None, "compile_s": None,
                       "error": "RuntimeError: no int8 kernel here"}]
    assert all(r["error"] is None for r in rows if r["engine"] != "torchao int8")


def test_bad_arguments_are_refused(mlp_and_data):
    model, _ = mlp_and_data
    with pytest.raises(ValueError, match="held-out"):
        latency_table(model, (1,), compile=False)
    with pytest.raises(ValueError, match="positive"):
        latency_table(model, (0,), compile=False)
