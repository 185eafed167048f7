"""bench/privacy.py at its smoke size writes a result the lesson's dial can read."""

import json
import subprocess
import sys
from pathlib import Path

from bigtrain_lab.privacy.experiments import dial_data

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_a_dial_ready_result(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "privacy.py"), "--quick", "--epsilons", "2",
                           "--mia-epochs", "2", "--out-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "privacy.json").read_text())
    assert result["conditions"]["torch_threads"] == 1 and "privacy.py" in result["command"]
    assert result["sweep"]["epsilons"] == [2.0] and len(result["sweep"]["seeds"]) == 1
    assert set(result["membership"]) == {"overfit", "regularised", "max-norm", "no DP, same recipe", "DP eps=2"}
    assert result["membership"]["DP eps=2"]["epsilon"][0] <= 2.0 + 1e-6
    assert any("epsilon    2: noise multiplier" in line for line in result["summary_lines"])
    assert dial_data(result["sweep"], 2.0)["key"] == "2"
