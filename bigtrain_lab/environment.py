"""What this machine is: the compute device to use and a report of versions and hardware."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field

import torch

from bigtrain_lab.conditions import cpu_model

REPORTED_PACKAGES = (
    "torch", "numpy", "scipy", "scikit-learn", "jupyterlab", "ipywidgets", "plotly",
    "shap", "lime", "captum", "opacus", "onnxruntime",
)


def get_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when a CUDA GPU is usable, else ``mps`` on Apple silicon, else ``cpu``.

    ``prefer`` forces a device (e.g. ``"cpu"`` for a reproducible CPU run); asking for ``"cuda"`` on a
    machine without one raises ``RuntimeError`` rather than silently falling back.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but torch.cuda.is_available() is False")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _cpu_flags() -> list[str]:
    """The CPU features that matter for training speed (read from /proc/cpuinfo where it exists)."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "fma")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


@dataclass
class EnvironmentReport:
    """Versions and hardware, printable as text and rendered as a table in a notebook."""

    python: str
    platform: str
    cpu: str
    cpu_count: int
    cpu_flags: list[str]
    torch_threads: int
    device: str
    gpus: list[str] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("python", self.python),
            ("platform", self.platform),
            ("cpu", f"{self.cpu} ({self.cpu_count} cores)"),
            ("cpu features", ", ".join(self.cpu_flags) or "none detected"),
            ("torch threads", str(self.torch_threads)),
            ("default device", self.device),
            ("gpus", "; ".join(self.gpus) or "none"),
        ]
        rows += [(name, version) for name, version in self.packages.items()]
        return rows

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in self.rows())
        return f"<table>{body}</table>"


def environment_report() -> EnvironmentReport:
    """Collect versions, CPU features and GPUs (used by ``notebooks/00_start_here.ipynb``)."""
    packages = {}
    for name in REPORTED_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "not installed"
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return EnvironmentReport(
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        cpu_flags=_cpu_flags(),
        torch_threads=torch.get_num_threads(),
        device=str(get_device()),
        gpus=gpus,
        packages=packages,
    )
