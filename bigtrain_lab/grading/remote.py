"""The grader's side of a learner's kernel: stand-ins for the learner's function and objects.

``RemoteFunction`` stands for the function a notebook passed to ``check``: calling it writes the
arguments to a blob (``wire``), runs the agent in the kernel, and reads back the output as data; an
exception the candidate raised is raised again here as the built-in exception it derives from (so that
"should raise ValueError" is judged here). An output that is not data stays in the kernel and comes
back as a ``RemoteObject``, on which the runners' ``probe`` operations run remotely.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bigtrain_lab.grading import wire
from bigtrain_lab.grading.check import CallerLost
from bigtrain_lab.grading.registry import Case, InputModified

_SOURCES = ("wire", "probe", "agent")


class RemoteTimeout(Exception):
    """The candidate did not answer within its time limit (the kernel was interrupted)."""


class KernelLost(CallerLost):
    """The kernel died or stopped answering: nothing more can be graded in it."""


def agent_sources() -> dict[str, str]:
    """The source text of the modules the kernel-side agent runs (read from this installed package)."""
    here = Path(__file__).parent
    return {name: (here / f"{name}.py").read_text(encoding="utf-8") for name in _SOURCES}


def install_code(agent_name: str) -> str:
    """Code that builds the agent in the kernel under the global ``agent_name`` (fresh module objects)."""
    return (
        "def _bigtrain_install(sources):\n"
        "    import types\n"
        "    mods = {}\n"
        "    for name in ('wire', 'probe', 'agent'):\n"
        "        m = types.ModuleType('bigtrain_grader_' + name)\n"
        "        exec(compile(sources[name], '<bigtrain-grader:' + name + '>', 'exec'), m.__dict__)\n"
        "        mods[name] = m\n"
        "    mods['agent'].wire, mods['agent'].probe = mods['wire'], mods['probe']\n"
        "    return mods['agent']\n"
        f"globals()[{agent_name!r}] = _bigtrain_install({agent_sources()!r})\n"
        "del _bigtrain_install\n"
    )


#: run(code, limit_seconds) -> bool: executes code in the kernel; False when the time limit stopped it.
Runner = Callable[[str, float], bool]


@dataclass
class CaseContext:
    """The case being graded: objects of its arguments that are not data are sent by reference."""

    exercise_id: str
    seed: int
    index: int
    case: Case


def _find(target: Any, value: Any, path: tuple = (), depth: int = 0) -> tuple | None:
    if value is target:
        return path
    if depth > 6:
        return None
    if isinstance(value, list | tuple):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return None
    for key, item in items:
        found = _find(target, item, (*path, key), depth + 1)
        if found is not None:
            return found
    return None


class KernelSession:
    """Requests to the agent in one learner's kernel, through files in its scratch folder."""

    def __init__(self, run: Runner, workdir: Path) -> None:
        self.run, self.workdir = run, workdir
        self.agent = "_bigtrain_agent_" + secrets.token_hex(8)
        self.context: CaseContext | None = None
        self.lost = ""
        self._count = 0

    def install(self, limit: float = 60.0) -> None:
        """Send the agent's code (once per session, after the notebook ran)."""
        if not self.run(install_code(self.agent), limit):
            raise KernelLost("the kernel did not accept the grader's agent")

    def _after_timeout(self) -> None:
        """The kernel was interrupted; one that does not answer a trivial request afterwards (a candidate
        that swallows KeyboardInterrupt) is given up: nothing more is graded in it."""
        try:
            alive = self.run("pass", 10.0)
        except Exception:  # noqa: BLE001 - the kernel died
            alive = False
        if not alive:
            self.lost = "the candidate kept running after its time limit and the interrupt; the kernel was given up"

    def _fallback(self, obj: Any) -> tuple[str, Any] | None:
        ctx = self.context
        if ctx is None:
            return None
        path = _find(obj, (ctx.case.args, ctx.case.kwargs))
        if path is None:
            return None
        return "case_arg", {"exercise": ctx.exercise_id, "seed": ctx.seed, "case": ctx.index, "path": list(path)}

    def request(self, payload: dict, limit: float) -> dict:
        """Send one request; returns the agent's answer (a dict of data)."""
        if self.lost:
            raise KernelLost(self.lost)
        self._count += 1
        req = self.workdir / f".bigtrain-request-{self._count}.npz"
        resp = self.workdir / f".bigtrain-answer-{self._count}.npz"
        req.write_bytes(wire.encode(payload, strict=True, fallback=self._fallback))
        try:
            try:
                finished = self.run(f"{self.agent}.serve({str(req)!r}, {str(resp)!r}, get_ipython().user_ns)",
                                    limit)
            except Exception as exc:  # the kernel died or a limit stopped it
                self.lost = f"the kernel stopped: {exc}"
                raise KernelLost(self.lost) from None
            if not finished:
                self._after_timeout()
                raise RemoteTimeout(f"took longer than the time limit of {limit:g} s")
            if not resp.exists():
                self.lost = "the kernel stopped answering the grader (its agent wrote no answer)"
                raise KernelLost(self.lost)
            answer = wire.decode(resp.read_bytes())
        finally:
            req.unlink(missing_ok=True)
            resp.unlink(missing_ok=True)
        if not isinstance(answer, dict) or "ok" not in answer:
            raise KernelLost("the kernel's agent sent a malformed answer")
        return answer


def _rebuilt_exception(error: dict) -> BaseException:
    """The built-in exception the candidate's exception derives from, carrying its message."""
    mro = [str(n) for n in error.get("mro", [])]
    name, message = str(error.get("type", "Exception")), str(error.get("message", ""))
    for base in mro:
        cls = getattr(builtins, base, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and base != "BaseException":
            text = message if base == name else f"{name}: {message}"
            if issubclass(cls, KeyboardInterrupt | SystemExit | GeneratorExit):
                return RuntimeError(f"{name} raised by the candidate: {message}")
            try:
                return cls(text)
            except TypeError:
                return RuntimeError(f"{name}: {message}")
    return RuntimeError(f"{name}: {message}")


class _Remote:
    __bigtrain_remote__ = True

    def __init__(self, session: KernelSession, target: dict, limit: float, what: str) -> None:
        self._session, self._target, self._limit, self._what = session, target, limit, what

    def _ask(self, payload: dict) -> Any:
        answer = self._session.request({**payload, "target": self._target}, self._limit)
        if not answer["ok"]:
            error = answer.get("error", {})
            if answer.get("agent_error"):
                raise KernelLost(f"the grader's agent failed in the kernel: {error.get('type')}: "
                                 f"{error.get('message')}")
            exc = _rebuilt_exception(error)
            exc.bigtrain_where = str(error.get("where", ""))  # type: ignore[attr-defined]
            raise exc
        if answer.get("mutated"):
            raise InputModified("a tensor or array passed in was changed")
        if answer.get("kind") == "handle":
            return RemoteObject(self._session, {"handle": int(answer["handle"])}, self._limit,
                                f"{answer.get('type')}: {answer.get('repr')}")
        return answer.get("value")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask({"op": "call", "args": list(args), "kwargs": kwargs})

    def remote_op(self, name: str, *args: Any) -> Any:
        """Run the ``probe`` operation ``name`` on the kernel-side object."""
        return self._ask({"op": "probe", "name": name, "args": list(args)})

    def __repr__(self) -> str:
        return f"<{self._what} (in the learner's kernel)>"


class RemoteFunction(_Remote):
    """The learner's function (or class), named by the expression the notebook passed to ``check``."""

    def __init__(self, session: KernelSession, expression: str, limit: float) -> None:
        super().__init__(session, {"expr": expression}, limit, expression)


class RemoteObject(_Remote):
    """An object a call returned that is not data: it stays in the kernel."""
