"""`bigtrain-lab lab --no-browser` serves the curriculum and prints a URL (what `make lab-headless` runs)."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lab_headless_serves_the_notebooks(tmp_path):
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "bigtrain_lab.cli", "lab", "--no-browser", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url, lines, deadline = None, [], time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(rf"(http://127\.0\.0\.1:{port}/lab\?token=\w+)", line)
            url = match.group(1) if match else None
        assert url, "no URL printed:\n" + "".join(lines)
        token = url.split("token=")[1]
        listing = None
        while listing is None and time.monotonic() < deadline:  # the URL is printed just before it listens
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}",
                                            timeout=30) as response:
                    listing = json.load(response)
            except urllib.error.URLError:
                time.sleep(0.5)
        assert listing is not None, "the server printed a URL but never answered"
        names = {item["name"] for item in listing["content"]}
        on_disk = {p.name for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")}
        assert "00_start_here.ipynb" in names
        assert on_disk <= names
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
