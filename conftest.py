"""pytest set-up for the whole repository, however pytest is invoked (``pytest notebooks/02_....ipynb`` too):
lessons run their fast budget, and a fast run never rewrites a lesson's recorded full-run figures."""

import atexit
import os
import shutil
import tempfile

# Set before any kernel starts (nbval kernels and the grader's inherit the environment).
os.environ["BIGTRAIN_LAB_FAST"] = "1"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
# Three xdist workers, and the notebook kernels and torchrun workers they start, share two cores: one
# intra-op thread each (set before torch is imported anywhere), or OpenMP's spinning threads fight over the
# cores and tiny models run several times slower. A test that needs more threads sets them itself.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Kernels cache what they pretrain under the kit home (lesson 10): a scratch home for the whole run, shared by the
# xdist workers (the cache writes atomically), never the learner's ~/.bigtrain-lab.
if "BIGTRAIN_LAB_HOME" not in os.environ:
    os.environ["BIGTRAIN_LAB_HOME"] = tempfile.mkdtemp(prefix="bigtrain-lab-test-home-")
    atexit.register(shutil.rmtree, os.environ["BIGTRAIN_LAB_HOME"], ignore_errors=True)  # by the process that made it


#: Test files that take the longest (seconds on a 2-core CPU, ``pytest --durations``). pytest-xdist hands out
#: whole files in collection order (``--dist loadfile``), so these go first: the long ones start early and
#: the many short files fill the workers' gaps, instead of one long file running alone at the end.
LONGEST_FIRST = (
    "tests/test_grader_exercises.py", "tests/test_grader_trust.py", "tests/test_grader_solutions.py",
    "tests/test_browser.py", "tests/test_widget_browser.py", "tests/test_fault_tolerance.py", "tests/test_fsdp_script.py",
    "tests/test_grading_tolerance.py", "tests/test_grader_cli.py", "tests/test_grading_check.py",
    "tests/test_distributed.py", "tests/test_ddp_script.py", "tests/test_quiz_browser.py",
    "tests/test_train.py", "tests/test_widget_conformance.py", "notebooks/03_batch_precision_memory.ipynb", "notebooks/08_explainability.ipynb",
    "notebooks/05_distributed.ipynb", "notebooks/06_compression.ipynb", "notebooks/02_optimizers_and_schedules.ipynb",
    "notebooks/11_hyperparameter_search.ipynb", "notebooks/11_fusing_networks.ipynb",
    "notebooks/10_transfer_learning.ipynb", "notebooks/10_regularization.ipynb",
    "notebooks/10_transfer_lightweight_backbones.ipynb", "notebooks/13_serving.ipynb",
    "notebooks/13_saving_and_export.ipynb", "tests/test_serving_server.py", "tests/test_serving_loadgen.py",
    "tests/test_deploy_sharded.py", "tests/test_deploy_export.py", "notebooks/12_differential_privacy.ipynb",
    "notebooks/12_model_security.ipynb", "notebooks/12_federated_learning.ipynb",
    "notebooks/14_llm1_tokens_positions_attention.ipynb", "notebooks/14_llm2_decoding_moe_stability.ipynb",
    "notebooks/15_parallel2_planning_scaling_drills.ipynb", "notebooks/15_parallel1_tensor_sequence_pipeline.ipynb",
    "tests/test_pp_script.py", "tests/test_tp_script.py", "tests/test_parallel_tensor.py", "tests/test_federated_worker.py",
)


def pytest_collection_modifyitems(items):  # noqa: D103 - pytest hook
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def key(indexed):
        index, item = indexed
        path = item.nodeid.split("::", 1)[0]
        return (rank.get(path, len(rank)), index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
