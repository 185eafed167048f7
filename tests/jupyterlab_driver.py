"""Drive a real JupyterLab in headless Chromium (Playwright) for the browser tests.

Two pieces, both usable outside pytest:

* ``JupyterLabServer``: an isolated ``jupyter lab`` on a free port (no port retries, a random token, fresh
  config / data / runtime / IPython dirs, the news pop-up switched off, ``BIGTRAIN_LAB_FAST=1``), polled on
  ``/api/status`` and checked to serve *our* root dir; ``stop()`` deletes the sessions through the REST API
  (kernels outlive pages) and terminates the server.
* ``NotebookPage``: opens a notebook, runs every cell through the Run menu, waits until each code cell has
  an ``[N]:`` prompt and the kernel status bar says Idle, and reads / moves the threshold explorer of
  ``bigtrain_lab.widgets.threshold_explorer`` through its DOM contract (a FloatSlider described
  "threshold", ``table.bt-confusion`` with ``data-cell`` tp/fp/fn/tn, ``.bt-scores``, and a plotly
  FigureWidget with traces "ROC", "PR", "current (ROC)", "current (PR)").

Failures raise subclasses of ``LabDriverError`` (an ``AssertionError``) carrying what was seen; callers
take a screenshot on failure (``NotebookPage.screenshot``).

What worked on this machine and its pitfalls: ``tests/BROWSER.md``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # playwright is imported lazily so that this module imports without it
    from playwright.sync_api import Browser, Locator, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLIDER_DESCRIPTION = "threshold"
MARKER_TRACES = ("current (ROC)", "current (PR)")


class LabDriverError(AssertionError):
    """Something seen in the browser or the server was not what the test expects."""


class ServerStartError(LabDriverError):
    """The Jupyter server did not start or did not answer."""


class NotebookRunError(LabDriverError):
    """Running all cells did not finish cleanly (an error output, a hang, a missing prompt)."""


class WidgetRenderError(LabDriverError):
    """The threshold explorer did not render (missing, still "Loading widget", "Error displaying widget")."""


class SliderDidNotMove(LabDriverError):
    """The slider's value (its readout) did not reach the requested threshold."""


class WidgetDidNotUpdate(LabDriverError):
    """The slider moved but the confusion table and / or the plot did not follow it."""


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed (pip install playwright; never `playwright install`)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (install it with: apt-get install -y chromium)"
    if importlib.util.find_spec("jupyterlab") is None:
        return f"jupyterlab is not importable from {sys.executable}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLabServer:
    """An isolated JupyterLab serving ``root_dir``; ``state_dir`` receives its config, runtime and log."""

    def __init__(self, root_dir: Path, state_dir: Path, *, extra_env: dict[str, str] | None = None,
                 start_timeout: float = 60.0) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.state_dir = Path(state_dir).resolve()
        self.extra_env = dict(extra_env or {})
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(24)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.state_dir / "jupyter-server.log"

    # -- lifecycle -------------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        config_dir = self.state_dir / "config"
        settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
        files = {
            # "Would you like to get notified about Jupyter news?" would cover the page.
            settings / "apputils-extension" / "notification.jupyterlab-settings": {"fetchNews": "false"},
            # Render every cell (no virtual scrolling), so every prompt and output is in the DOM.
            settings / "notebook-extension" / "tracker.jupyterlab-settings": {"windowingMode": "none"},
        }
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content))
        dirs = {name: self.state_dir / name for name in ("runtime", "data", "ipython", "home")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("JUPYTER", "JPY_", "IPYTHON")) and key != "PYTHONSTARTUP"}
        env.update({
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_PREFER_ENV_PATH": "1",
            "JUPYTER_PLATFORM_DIRS": "0",
            "IPYTHONDIR": str(dirs["ipython"]),
            "BIGTRAIN_LAB_HOME": str(dirs["home"]),
            "BIGTRAIN_LAB_FAST": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        })
        env.update(self.extra_env)
        return env

    def start(self) -> JupyterLabServer:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment()
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between free_port() and the bind
            self.port = free_port()
            command = [
                sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
                # Backstop should this process die without stopping the server: idle kernels are
                # culled, then the idle server exits (a test run never idles this long).
                "--MappingKernelManager.cull_idle_timeout=900", "--MappingKernelManager.cull_interval=60",
                "--ServerApp.shutdown_no_activity_timeout=1200",
            ]
            log = self.log_path.open("ab")
            log.write(f"\n$ {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=self.root_dir, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            try:
                self._wait_ready()
                return self
            except ServerStartError as error:
                last_error = str(error)
                self._terminate()
                if "exited" not in last_error:
                    break
        raise ServerStartError(f"{last_error}\n--- server log ({self.log_path}) ---\n{self.log_tail()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerStartError(f"jupyter lab exited with code {self.process.returncode} on port "
                                       f"{self.port}")
            try:
                self.api("GET", "/api/status", timeout=2)
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
                continue
            # Make sure the server on this port is ours: it must serve our root dir.
            listing = self.api("GET", "/api/contents/")
            served = {entry["name"] for entry in listing.get("content", [])}
            ours = {path.name for path in self.root_dir.iterdir() if not path.name.startswith(".")}
            if not ours <= served:
                raise ServerStartError(f"the server on port {self.port} does not serve {self.root_dir}: "
                                       f"it lists {sorted(served)}")
            return
        raise ServerStartError(f"jupyter lab did not answer /api/status within {self.start_timeout:.0f} s")

    def delete_sessions(self) -> list[str]:
        """Shut down every session's kernel (kernels outlive the browser page)."""
        deleted = []
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
                deleted.append(session["path"])
        return deleted

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.delete_sessions()
        self._terminate()

    def __enter__(self) -> JupyterLabServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str) -> str:
        return f"{self.base_url}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str, *, timeout: float = 10) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


@dataclass(frozen=True)
class ExplorerState:
    """What the threshold explorer shows: readout, confusion counts, score line and marker positions."""

    readout: str
    counts: dict[str, int]
    scores: str
    markers: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]

    def describe(self) -> str:
        return (f"slider {self.readout!r}, counts {self.counts}, scores {self.scores!r}, "
                f"markers {self.markers}")


_READ_EXPLORER_JS = """
(el) => {
  const text = (selector) => { const node = el.querySelector(selector); return node ? node.textContent.trim() : null; };
  const counts = {};
  for (const cell of ['tp', 'fp', 'fn', 'tn']) counts[cell] = text(`table.bt-confusion td[data-cell="${cell}"]`);
  const readoutNode = el.querySelector('.widget-readout');
  const readout = readoutNode ? (readoutNode.value !== undefined ? readoutNode.value : readoutNode.textContent).trim() : null;
  const plot = el.querySelector('.js-plotly-plot');
  const markers = {};
  for (const name of MARKERS) {
    const trace = plot && plot.data ? plot.data.find((t) => t.name === name) : null;
    markers[name] = trace ? [Array.from(trace.x), Array.from(trace.y)] : null;
  }
  const traceNames = plot && plot.data ? plot.data.map((t) => t.name) : null;
  return {readout, counts, scores: text('.bt-scores'), markers, traceNames};
}
""".replace("MARKERS", json.dumps(list(MARKER_TRACES)))

_CELL_STATES_JS = r"""
() => {
  const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'));
  const prompts = cells.map((cell) => {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    return prompt ? prompt.textContent.trim() : '';
  });
  const errors = [];
  cells.forEach((cell, i) => {
    // JupyterLab renders an error output as stderr text: tell it from warnings by its traceback.
    for (const out of cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
      const text = out.textContent;
      if (/^-{20,}\s*\n\S*(Error|Exception|Interrupt|Exit)/.test(text) || text.includes('Traceback (most recent call last)')) {
        errors.push(`code cell ${i} ${prompts[i]}:\n${text.trim().slice(-1500)}`);
      }
    }
  });
  const status = document.querySelector('span.jp-StatusBar-TextItem[title^="Change kernel"]');
  const dialog = document.querySelector('.jp-Dialog');
  return {prompts, errors, status: status ? status.textContent.trim() : null,
          dialog: dialog ? dialog.textContent.trim().slice(0, 300) : null};
}
"""


class NotebookPage:
    """One JupyterLab page showing one notebook."""

    def __init__(self, page: Page, server: JupyterLabServer) -> None:
        self.page = page
        self.server = server
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)

    # -- notebook --------------------------------------------------------------------------------------
    def open(self, notebook: str, *, timeout: float = 90.0) -> None:
        """Open ``notebook`` (relative to the server's root dir) and wait until its kernel is idle."""
        self.page.goto(self.server.lab_url(notebook), wait_until="domcontentloaded", timeout=timeout * 1000)
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout=timeout)

    def kernel_status(self) -> str | None:
        status = self.page.locator('span.jp-StatusBar-TextItem[title^="Change kernel"]')
        return status.first.text_content() if status.count() else None

    def wait_kernel_idle(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.kernel_status()
            if status and status.strip().endswith("| Idle"):
                return
            self._raise_on_dialog()
            time.sleep(0.25)
        raise NotebookRunError(f"the kernel status bar did not say Idle within {timeout:.0f} s "
                               f"(last: {status!r})")

    def _raise_on_dialog(self) -> None:
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            raise NotebookRunError(f"a dialog blocks the page: {dialog.first.inner_text()[:300]!r}")

    def run_all(self, n_code_cells: int, *, timeout: float = 180.0) -> float:
        """Run > Run All Cells, wait for ``[N]:`` on all ``n_code_cells`` and an idle kernel; return seconds."""
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        deadline = start + timeout
        state: dict[str, Any] = {}
        idle_since = None
        while time.monotonic() < deadline:
            state = self.page.evaluate(_CELL_STATES_JS)
            if state["errors"]:
                raise NotebookRunError("a cell raised:\n" + "\n".join(state["errors"]))
            if state["dialog"]:
                raise NotebookRunError(f"a dialog blocks the page: {state['dialog']!r}")
            numbered = [bool(re.fullmatch(r"\[\d+\]:", prompt)) for prompt in state["prompts"]]
            idle = bool(state["status"] and state["status"].endswith("| Idle"))
            if len(numbered) == n_code_cells and all(numbered) and idle:
                return time.monotonic() - start
            # Idle with unrun cells for long after the run started: the run stopped (Run All stops
            # at an error), fail now rather than at the timeout.
            if idle and time.monotonic() - start > 10 and "[*]:" not in state["prompts"]:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 10:
                    break
            else:
                idle_since = None
            time.sleep(0.5)
        unrun = [i for i, prompt in enumerate(state.get("prompts", [])) if not re.fullmatch(r"\[\d+\]:", prompt)]
        raise NotebookRunError(
            f"Run All Cells did not finish cleanly after {time.monotonic() - start:.0f} s: "
            f"{len(state.get('prompts', []))} code cells in the page (expected {n_code_cells}), "
            f"not run: {unrun}, prompts {state.get('prompts')}, kernel status {state.get('status')!r}")

    def check_no_widget_errors(self) -> None:
        for text in ("Error displaying widget", "Loading widget"):
            found = self.page.get_by_text(text)
            if found.count():
                raise WidgetRenderError(f"the page shows {text!r} ({found.count()} times)")
        if self.page_errors:
            raise WidgetRenderError(f"JavaScript errors on the page: {self.page_errors}")

    # -- threshold explorer ----------------------------------------------------------------------------
    def explorer(self, *, timeout: float = 30.0) -> Locator:
        """The output area holding the threshold explorer; checks the DOM contract and that it rendered."""
        slider = self.page.locator(".widget-hslider", has=self.page.locator(
            ".widget-label", has_text=re.compile(rf"^{SLIDER_DESCRIPTION}$")))
        output = self.page.locator(".jp-OutputArea-output", has=slider)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (slider.count() == 1 and output.count() == 1
                    and output.locator("table.bt-confusion").count() == 1
                    and output.locator(".js-plotly-plot").count() == 1
                    and not self.page.get_by_text("Loading widget").count()):
                break
            if self.page.get_by_text("Error displaying widget").count():
                break
            time.sleep(0.25)
        self.check_no_widget_errors()
        if slider.count() != 1:
            raise WidgetRenderError(f"expected exactly one slider described {SLIDER_DESCRIPTION!r}, "
                                    f"found {slider.count()}")
        if output.count() != 1:
            raise WidgetRenderError(f"expected one output area holding the slider, found {output.count()}")
        for selector in ("table.bt-confusion", ".bt-scores", ".js-plotly-plot", ".widget-readout"):
            if output.locator(selector).count() != 1:
                raise WidgetRenderError(f"the threshold explorer has {output.locator(selector).count()} "
                                        f"{selector!r}, expected 1")
        output.scroll_into_view_if_needed()
        return output

    def read_explorer(self, explorer: Locator, timeout: float = 30.0) -> ExplorerState:
        # the plot's element exists before plotly has drawn the FigureWidget's traces into it (seconds on a
        # loaded machine): wait for them
        deadline = time.monotonic() + timeout
        while True:
            raw = explorer.evaluate(_READ_EXPLORER_JS)
            missing = [name for name in ("ROC", "PR", *MARKER_TRACES) if name not in (raw["traceNames"] or [])]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if missing:
            raise WidgetRenderError(f"the plot lacks traces {missing}; it has {raw['traceNames']}")
        try:
            counts = {cell: int(value) for cell, value in raw["counts"].items()}
        except (TypeError, ValueError) as error:
            raise WidgetRenderError(f"unreadable confusion table {raw['counts']}") from error
        markers = {name: (tuple(raw["markers"][name][0]), tuple(raw["markers"][name][1])) for name in MARKER_TRACES}
        return ExplorerState(readout=raw["readout"], counts=counts, scores=raw["scores"], markers=markers)

    def move_slider(self, explorer: Locator, value: float, *, timeout: float = 15.0) -> None:
        """Type ``value`` into the slider's readout and press Enter; wait until the readout shows it."""
        readout = explorer.locator(".widget-readout")
        readout.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.type(f"{value:.2f}")
        self.page.keyboard.press("Enter")
        readout.blur()
        deadline = time.monotonic() + timeout
        shown = None
        while time.monotonic() < deadline:
            shown = self.read_explorer(explorer).readout
            with contextlib.suppress(TypeError, ValueError):
                if math.isclose(float(shown), value, abs_tol=1e-9):
                    return
            time.sleep(0.2)
        raise SliderDidNotMove(f"typed {value:.2f} into the threshold readout, it shows {shown!r}")

    def wait_for_update(self, explorer: Locator, before: ExplorerState, value: float, *,
                        timeout: float = 20.0) -> ExplorerState:
        """Wait until the table and the plot show threshold ``value``; return what they show.

        Checks that the counts changed and kept their row totals, that the score line names the new
        threshold, and that the ROC / PR markers moved to the points the table's counts give.
        """
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        after = before
        while time.monotonic() < deadline:
            after = self.read_explorer(explorer)
            problems = _update_problems(before, after, value)
            if not problems:
                return after
            time.sleep(0.25)
        raise WidgetDidNotUpdate(
            f"after moving the slider to {value:.2f}, within {timeout:.0f} s: " + "; ".join(problems)
            + f"\nbefore: {before.describe()}\nafter:  {after.describe()}")

    def screenshot(self, path: Path, explorer: Locator | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if explorer is not None:
            with contextlib.suppress(Exception):
                explorer.scroll_into_view_if_needed(timeout=5000)
        self.page.screenshot(path=str(path), timeout=15000)
        return path


def _update_problems(before: ExplorerState, after: ExplorerState, value: float) -> list[str]:
    problems = []
    b, a = before.counts, after.counts
    if a == b:
        problems.append("the confusion matrix did not change")
    if (a["tp"] + a["fn"], a["fp"] + a["tn"]) != (b["tp"] + b["fn"], b["fp"] + b["tn"]):
        problems.append("the confusion matrix's row totals (actual positives / negatives) changed")
    if f"threshold {value:.2f}" not in (after.scores or ""):
        problems.append(f"the score line does not say 'threshold {value:.2f}': {after.scores!r}")
    if after.markers == before.markers:
        problems.append("the plot's markers did not move")
    else:
        # Where the markers must be, from the table: ROC at (FPR, TPR), PR at (recall, precision).
        fpr = a["fp"] / max(a["fp"] + a["tn"], 1)
        tpr = a["tp"] / max(a["tp"] + a["fn"], 1)
        precision = a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else 0.0
        expected = {"current (ROC)": (fpr, tpr), "current (PR)": (tpr, precision)}
        for name, (x, y) in expected.items():
            xs, ys = after.markers[name]
            if len(xs) != 1 or not (math.isclose(xs[0], x, abs_tol=1e-6) and math.isclose(ys[0], y, abs_tol=1e-6)):
                problems.append(f"marker {name!r} is at {after.markers[name]}, the table gives ({x:.4f}, {y:.4f})")
    return problems


def code_cell_count(notebook: Path) -> int:
    return sum(cell["cell_type"] == "code" for cell in json.loads(Path(notebook).read_text())["cells"])


def copy_notebook(source: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


@dataclass
class ScenarioResult:
    """What ``run_threshold_scenario`` saw and saved."""

    before: ExplorerState | None = None
    after: ExplorerState | None = None
    run_seconds: float = 0.0
    screenshots: list[Path] | None = None


def run_threshold_scenario(browser: Browser, server: JupyterLabServer, notebook: str, n_code_cells: int,
                           out_dir: Path, *, threshold: float = 0.2, run_timeout: float = 180.0,
                           update_timeout: float = 20.0, prefix: str = "") -> ScenarioResult:
    """Open ``notebook``, run all cells, check the widgets, move the threshold slider, see the view follow.

    Saves ``{prefix}before.png`` / ``{prefix}after.png`` (the page) and ``{prefix}explorer-*.png`` (the
    widget alone) in ``out_dir``, and ``{prefix}failure.png`` when anything fails; the shutdown of the
    notebook's kernel happens even on failure. Raises a ``LabDriverError`` subclass on any failure, e.g.
    ``WidgetDidNotUpdate`` when the slider moved but the confusion table or the plot did not follow.
    """
    result = ScenarioResult(screenshots=[])
    shots = result.screenshots
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    lab = NotebookPage(context.new_page(), server)
    explorer = None
    try:
        lab.open(notebook)
        result.run_seconds = lab.run_all(n_code_cells, timeout=run_timeout)
        lab.check_no_widget_errors()
        explorer = lab.explorer()
        result.before = before = lab.read_explorer(explorer)
        if before.readout == f"{threshold:.2f}":
            raise LabDriverError(f"the slider already shows {before.readout}: pick another threshold to move to")
        shots.append(lab.screenshot(out_dir / f"{prefix}before.png", explorer))
        plot = explorer.locator(".js-plotly-plot")
        plot_pixels = plot.screenshot()
        shots.append(out_dir / f"{prefix}explorer-before.png")
        explorer.screenshot(path=str(shots[-1]))

        lab.move_slider(explorer, threshold)
        result.after = lab.wait_for_update(explorer, before, threshold, timeout=update_timeout)
        deadline = time.monotonic() + 10
        while plot.screenshot() == plot_pixels:  # the data changed; the drawing must too
            if time.monotonic() > deadline:
                raise WidgetDidNotUpdate("the plot's data changed but its pixels did not")
            time.sleep(0.25)
        shots.append(lab.screenshot(out_dir / f"{prefix}after.png", explorer))
        shots.append(out_dir / f"{prefix}explorer-after.png")
        explorer.screenshot(path=str(shots[-1]))
        lab.check_no_widget_errors()
        return result
    except Exception as error:
        with contextlib.suppress(Exception):
            shots.append(lab.screenshot(out_dir / f"{prefix}failure.png", explorer))
            error.add_note(f"screenshot of the page at the failure: {shots[-1]}")
        if lab.console_errors:
            error.add_note(f"browser console errors: {lab.console_errors[-10:]}")
        raise
    finally:
        with contextlib.suppress(Exception):
            context.close()
        server.delete_sessions()


# -- any widget: one scratch notebook, read / drive / measure a widget by its DOM class ------------------------
# (tests/test_widget_browser.py; the threshold-explorer helpers above are unchanged)


def write_scratch_notebook(path: Path, sources: list[str]) -> Path:
    """A notebook of one code cell per source, with a python3 kernelspec (no "Select Kernel" dialog)."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
              "source": source.splitlines(keepends=True)} for i, source in enumerate(sources)]
    notebook = {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path


#: What a widget shows: each control's description -> what the browser displays for it (a slider's readout,
#: a dropdown's selected option, a toggle's pressed button), the text of its HTML readouts, and a hash of each
#: plot's data and title (so a change of any plotted number shows).
READ_WIDGET_JS = r"""
(el) => {
  const hash = (s) => { let h = 0; for (let i = 0; i < s.length; i++) { h = (h * 31 + s.charCodeAt(i)) | 0; } return h; };
  const norm = (s) => (s || '').replace(/\s+/g, ' ').trim();  // also turns no-break spaces into spaces
  const label = (node) => { const l = node.querySelector(':scope > .widget-label'); return l ? norm(l.textContent) : ''; };
  const controls = {};
  for (const node of el.querySelectorAll('.widget-slider')) {
    const r = node.querySelector('.widget-readout');
    controls[label(node)] = r ? norm(r.tagName === 'INPUT' ? r.value : r.textContent) : null;
  }
  for (const node of el.querySelectorAll('.widget-dropdown')) {
    const s = node.querySelector('select');
    controls[label(node)] = s && s.selectedIndex >= 0 ? norm(s.options[s.selectedIndex].textContent) : null;
  }
  for (const node of el.querySelectorAll('.widget-toggle-buttons')) {
    const b = node.querySelector('button.mod-active');
    controls[label(node)] = b ? norm(b.textContent) : null;
  }
  const texts = Array.from(el.querySelectorAll('.widget-html-content')).map((n) => norm(n.textContent));
  const plots = Array.from(el.querySelectorAll('.js-plotly-plot')).map((p) => {
    const data = (p.data || []).map((t) => [t.name, t.x, t.y, t.z, t.source, t.text, t.visible]);
    const title = p.layout && p.layout.title ? (p.layout.title.text || p.layout.title) : '';
    return hash(JSON.stringify([data, title]));
  });
  return {controls, texts, plots};
}
"""

#: Where a widget's layout fails a learner: slider tracks (px), labels cut off by their box, and for each plot
#: the texts (titles, annotations, legend, tick labels) and plot areas drawn outside what is visible (the
#: figure's svg clipped by its output area), titles / annotations / axis titles that overlap, the smallest
#: font drawn; and the output area's width.
WIDGET_LAYOUT_JS = r"""
(el) => {
  const out = el.closest('.jp-OutputArea-output') || el;
  const outBox = out.getBoundingClientRect();
  const tracks = Array.from(el.querySelectorAll('.widget-slider')).map((node) => {
    const l = node.querySelector(':scope > .widget-label');
    const t = node.querySelector('.noUi-target') || node.querySelector('.slider-container');
    return {label: l ? l.textContent.trim() : '', track: t ? Math.round(t.getBoundingClientRect().width) : null};
  });
  const cutLabels = Array.from(el.querySelectorAll('.widget-label')).filter((l) => l.scrollWidth > l.clientWidth + 1)
    .map((l) => l.textContent.trim());
  const plots = Array.from(el.querySelectorAll('.js-plotly-plot')).map((p) => {
    const svg = p.querySelector('svg.main-svg');
    const svgBox = (svg || p).getBoundingClientRect();
    const left = Math.max(svgBox.left, outBox.left), right = Math.min(svgBox.right, outBox.right);
    const top = svgBox.top, bottom = svgBox.bottom;
    const outside = [];
    let minFont = null;
    for (const t of p.querySelectorAll('svg text')) {
      const text = t.textContent.trim();
      if (!text) continue;
      const b = t.getBoundingClientRect();
      if (b.width === 0) continue;
      if (b.right > right + 2 || b.left < left - 2 || b.top < top - 2 || b.bottom > bottom + 2) outside.push(text.slice(0, 80));
      const size = parseFloat(t.style.fontSize || getComputedStyle(t).fontSize);
      if (size && (minFont === null || size < minFont)) minFont = size;
    }
    for (const r of p.querySelectorAll('.draglayer .nsewdrag, .legend .bg')) {
      const b = r.getBoundingClientRect();
      if (b.width && (b.right > right + 2 || b.left < left - 2)) outside.push(r.closest('.legend') ? '(the legend box)' : '(a plot area)');
    }
    const labels = Array.from(p.querySelectorAll('.gtitle, .annotation-text, .g-xtitle text, .g-ytitle text, [class^="g-x"][class$="title"] text'))
      .filter((t) => t.textContent.trim()).map((t) => [t.textContent.trim().slice(0, 60), t.getBoundingClientRect()]);
    const overlaps = [];
    for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
      const [a, A] = labels[i], [c, C] = labels[j];
      const w = Math.min(A.right, C.right) - Math.max(A.left, C.left), h = Math.min(A.bottom, C.bottom) - Math.max(A.top, C.top);
      if (w > 2 && h > 2) overlaps.push([a, c]);
    }
    return {width: Math.round(svgBox.width), overflow: Math.round(svgBox.right - outBox.right), outside, overlaps, minFont};
  });
  return {outputWidth: Math.round(outBox.width), tracks, cutLabels, plots};
}
"""


_PLOTS_DRAWN_JS = """(el) => Array.from(el.querySelectorAll('.js-plotly-plot'))
  .filter((p) => p.data && p.data.length && p._fullLayout && p.querySelector('svg.main-svg')).length"""


def widget_output(page: Page, dom_class: str, *, min_plots: int = 0, timeout: float = 60.0) -> Locator:
    """The rendered widget carrying ``dom_class`` (``widget.add_class``: the element exists once its view
    rendered), with at least ``min_plots`` plotly figures drawn in it (a FigureWidget draws after its view
    renders, once on screen)."""
    widget = page.locator(f".{dom_class}")
    deadline = time.monotonic() + timeout
    drawn = 0
    while time.monotonic() < deadline:
        if widget.count() == 1:
            widget.first.scroll_into_view_if_needed()
            drawn = widget.first.evaluate(_PLOTS_DRAWN_JS)
            if drawn >= min_plots:
                return widget.first
        elif page.get_by_text("Error displaying widget").count():
            raise WidgetRenderError(f"'Error displaying widget' on the page while waiting for .{dom_class}")
        time.sleep(0.2)
    raise WidgetRenderError(f"the widget .{dom_class} did not render within {timeout:.0f} s "
                            f"({widget.count()} found, {drawn} plots drawn of {min_plots})")


def type_into_slider(page: Page, widget: Locator, description: str, text: str) -> None:
    """Type ``text`` into the readout of the slider described ``description`` and press Enter."""
    slider = widget.locator(".widget-slider", has=page.locator(
        ":scope > .widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$")))
    if slider.count() != 1:
        raise WidgetRenderError(f"expected one slider described {description!r}, found {slider.count()}")
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    readout.blur()


def step_slider(page: Page, widget: Locator, description: str, text: str, *, max_steps: int = 30) -> None:
    """Move the slider described ``description`` with the arrow keys until its readout shows ``text`` (a
    SelectionSlider's readout cannot be typed into): focus its handle, then ArrowRight (or ArrowLeft once
    the right end is reached without meeting ``text``)."""
    slider = widget.locator(".widget-slider", has=page.locator(
        ":scope > .widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$")))
    if slider.count() != 1:
        raise WidgetRenderError(f"expected one slider described {description!r}, found {slider.count()}")
    handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")
    handle.focus()
    shown, previous, key = None, None, "ArrowRight"
    for _ in range(max_steps):
        shown = " ".join(readout.text_content().split())
        if shown == text:
            return
        if shown == previous and key == "ArrowRight":
            key = "ArrowLeft"  # at the right end: go back down
        previous = shown
        page.keyboard.press(key)
        time.sleep(0.1)
    raise SliderDidNotMove(f"stepped the {description!r} slider {max_steps} times, it shows {shown!r}, not {text!r}")


def select_dropdown(page: Page, widget: Locator, description: str, option: str) -> None:
    """Pick ``option`` (its label) in the dropdown described ``description``."""
    dropdown = widget.locator(".widget-dropdown", has=page.locator(
        ":scope > .widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$")))
    if dropdown.count() != 1:
        raise WidgetRenderError(f"expected one dropdown described {description!r}, found {dropdown.count()}")
    dropdown.locator("select").select_option(label=option)
