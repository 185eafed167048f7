"""Lesson 12, federated learning (``notebooks/12_federated_learning.ipynb``): FedAvg and FedSGD
(``fedavg``), IID and Dirichlet non-IID client splits (``partition``), the one-process simulation the plots
use (``simulate``), FedAvg on torchrun with the all-reduce as the server (``worker``,
``scripts/fedavg_train.py``), and secure aggregation by pairwise masks (``secure_agg``)."""

from bigtrain_lab.federated.fedavg import (
    fedavg_round,
    fedsgd_round,
    init_softmax_params,
    local_sgd,
    module_forward,
    softmax_regression,
    weighted_average,
)
from bigtrain_lab.federated.partition import dirichlet_split, iid_split, label_histogram
from bigtrain_lab.federated.secure_agg import secure_sum
from bigtrain_lab.federated.simulate import FederatedRun, FederatedTask, federated_digits, simulate

__all__ = ["FederatedRun", "FederatedTask", "dirichlet_split", "fedavg_round", "fedsgd_round", "federated_digits",
           "iid_split", "init_softmax_params", "label_histogram", "local_sgd", "module_forward", "secure_sum",
           "simulate", "softmax_regression", "weighted_average"]
