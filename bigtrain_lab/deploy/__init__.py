"""Lesson 13 (``notebooks/13_saving_and_export.ipynb``): saving, exporting and monitoring a trained model.

- ``checkpoint``: data-only resumable training state (model, optimizer, scheduler, step, RNG).
- ``saving``: why a pickled module breaks and can run code, safetensors, dtype on load, SHA-256 checks.
- ``export``: ONNX export with a dynamic batch, onnxruntime fp32 / int8, torchao int8, a latency table.
- ``sharded``: distributed checkpoints (DCP) of an FSDP2 model, reloaded on another world size.
- ``monitor``: input and prediction drift (PSI, KS), shadow agreement, a stream with a growing shift.
"""

from bigtrain_lab.deploy.checkpoint import (
    ResumeRun,
    restore_training_state,
    resume_experiment,
    state_round_trip,
    training_state,
)
from bigtrain_lab.deploy.export import (
    ENGINES,
    ONNX_ATOL,
    export_onnx,
    latency_table,
    max_abs_diff_vs_eager,
    ort_predict,
    ort_session,
    quantize_onnx_dynamic,
    train_digits_mlp,
)
from bigtrain_lab.deploy.monitor import (
    PSI_MAJOR,
    PSI_MODERATE,
    SHIFTS,
    apply_shift,
    drift_report,
    ks_drift,
    prediction_drift,
    psi,
    psi_categorical,
    shadow_agreement,
    shifted_stream,
)
from bigtrain_lab.deploy.saving import (
    MARKER_SUFFIX,
    checkpoint_formats,
    dtype_on_load,
    load_outcomes,
    load_safetensors,
    load_verified,
    malicious_checkpoint,
    marker_path,
    pickled_module_breaks_on_refactor,
    save_safetensors,
    sha256_file,
    verify_sha256,
    write_sha256,
)
from bigtrain_lab.deploy.sharded import (
    build_model,
    checkpoint_files,
    consolidate_checkpoint,
    parse_result,
    result_line,
    run_dcp_roundtrip,
    worker,
)

__all__ = [
    "ENGINES", "MARKER_SUFFIX", "ONNX_ATOL", "PSI_MAJOR", "PSI_MODERATE", "SHIFTS", "ResumeRun", "apply_shift",
    "build_model", "checkpoint_files", "checkpoint_formats", "consolidate_checkpoint", "drift_report",
    "dtype_on_load", "export_onnx", "ks_drift", "latency_table", "load_outcomes", "load_safetensors",
    "load_verified", "malicious_checkpoint", "marker_path", "max_abs_diff_vs_eager", "ort_predict", "ort_session",
    "parse_result", "pickled_module_breaks_on_refactor", "prediction_drift", "psi", "psi_categorical",
    "quantize_onnx_dynamic", "restore_training_state", "result_line", "resume_experiment", "run_dcp_roundtrip",
    "save_safetensors", "shadow_agreement", "sha256_file", "shifted_stream", "state_round_trip",
    "train_digits_mlp", "training_state", "verify_sha256", "worker", "write_sha256",
]
