"""What installing Flower (``flwr``) would do to the kit's pinned environment, without installing it.

    python bench/flwr_footprint.py [--package flwr] [--from-report PATH] [--out-dir DIR]

Runs ``python -m pip install --dry-run --quiet --report REPORT flwr`` with this interpreter's pip (the kit's
``.venv``), reads pip's JSON installation report (https://pip.pypa.io/en/stable/reference/installation-report/)
and compares it with the pins of ``requirements.txt``: the packages pip would install, the pinned ones it would
replace (from -> to, downgrade or upgrade), and those the kit does not have yet. pip's report carries no file
sizes, so no download size is recorded. ``--from-report``: analyse a report made earlier instead of running
pip (the analysis is the same). Lesson 12 (``notebooks/12_federated_learning.ipynb``, "Flower") quotes the
result, bench/results/flwr_footprint.json, through ``bigtrain_lab.bench_results``: a measurement of an install,
not of a speed, recorded with the usual conditions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conditions import Conditions, save_result
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a requirements file (names canonicalised)."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0].strip())] = version.split(";", 1)[0].strip()
    return pins


def dry_run_report(package: str, timeout_s: float = 600.0) -> tuple[dict[str, Any], list[str]]:
    """pip's installation report of ``pip install --dry-run package`` in this interpreter, and the command."""
    with tempfile.TemporaryDirectory(prefix="flwr-footprint-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report), package]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not report.is_file():
            raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
        return json.loads(report.read_text(encoding="utf-8")), ["python", "-m", "pip", *cmd[3:-2], "REPORT", package]


def analyse(report: dict[str, Any], pins: dict[str, str], package: str) -> dict[str, Any]:
    """Packages to install, pinned ones changed (from -> to), new ones, from a pip report and the pins."""
    installs = [{"name": item["metadata"]["name"], "version": item["metadata"]["version"],
                 "requested": bool(item.get("requested"))} for item in report["install"]]
    changed, new = [], []
    for item in installs:
        key = canonicalize_name(item["name"])
        if key in pins:
            before, after = Version(pins[key]), Version(item["version"])
            if before != after:
                changed.append({"name": item["name"], "pinned": pins[key], "would_install": item["version"],
                                "change": "downgrade" if after < before else "upgrade"})
        elif not item["requested"]:
            new.append((key, f"{item['name']}=={item['version']}"))
    target = next((i for i in installs if canonicalize_name(i["name"]) == canonicalize_name(package)), None)
    return {"package": package, "version": target["version"] if target else None, "pip_version": report.get("pip_version"),
            "n_install": len(installs), "installs": installs, "pinned_changed": changed, "new_packages": [text for _, text in sorted(new)],
            "n_downgrades": sum(c["change"] == "downgrade" for c in changed)}


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The lines the lesson prints."""
    lines = [f"pip install {result['package']} ({result['package']} {result['version']}, pip {result['pip_version']}): "
             f"{result['n_install']} packages to install, {len(result['pinned_changed'])} of the kit's pins "
             f"changed ({result['n_downgrades']} downgrades), {len(result['new_packages'])} new packages"]
    lines += [f"  {c['name']}: pinned {c['pinned']} -> {c['would_install']} ({c['change']})" for c in result["pinned_changed"]]
    if result["new_packages"]:
        lines.append("  new: " + ", ".join(result["new_packages"]))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="flwr", help="what to dry-run install (default flwr)")
    parser.add_argument("--from-report", default=None, help="a pip --report JSON made earlier (no pip run)")
    parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"), help="the pins to compare with")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where flwr_footprint.json goes")
    args = parser.parse_args(argv)
    conditions = Conditions.start(threads=1)
    if args.from_report:
        report = json.loads(Path(args.from_report).read_text(encoding="utf-8"))
        pip_command = None
    else:
        report, pip_command = dry_run_report(args.package)
    conditions.finish()
    result = analyse(report, read_pins(Path(args.requirements)), args.package)
    result["pip_command"] = " ".join(pip_command) if pip_command else f"report read from {args.from_report}"
    result["summary_lines"] = summary_lines(result)
    print("\n".join(result["summary_lines"]))
    path = save_result("flwr_footprint", {"command": conditions.command, **result}, conditions, out_dir=args.out_dir)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
