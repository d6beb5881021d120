"""Wall time and peak resident memory of one child process.

`run_measured` starts the command in its own session and reaps it with
os.wait4(pid), whose rusage is that child's own (ru_maxrss = its peak RSS,
including any grandchildren it waited for), unlike RUSAGE_CHILDREN, which is
the maximum over every child this process ever reaped. On timeout the whole
process group the command started is killed (by its id) and the run is
reported as not finished.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Measured:
    command: list[str]
    seconds: float
    cpu_seconds: float       # user + system CPU of the child: less sensitive than wall time to a busy machine
    peak_rss_mb: float
    returncode: int | None   # None when killed at the timeout
    timed_out: bool
    stdout_path: str | None = None
    stderr_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 20) -> str:
        if not self.stderr_path or not Path(self.stderr_path).is_file():
            return ""
        return "\n".join(Path(self.stderr_path).read_text(errors="replace").splitlines()[-lines:])

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def run_measured(command: list[str], *, cwd: Path | str | None = None, env: dict | None = None,
                 stdout_path: Path | None = None, stderr_path: Path | None = None,
                 timeout: float | None = None, poll: float = 0.02, on_timeout=None) -> Measured:
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                timed_out = True
                if on_timeout is not None:
                    on_timeout(proc.pid)  # e.g. record where it was stuck before it is killed
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(poll)
        seconds = time.perf_counter() - started
        returncode = None if timed_out else os.waitstatus_to_exitcode(status)
        proc.returncode = returncode if returncode is not None else -9  # reaped here, not by Popen
    finally:
        for f in (out, err):
            if hasattr(f, "close"):
                f.close()
    return Measured(command=[str(c) for c in command], seconds=round(seconds, 3),
                    cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
                    peak_rss_mb=round(usage.ru_maxrss / 1024, 1), returncode=returncode, timed_out=timed_out,
                    stdout_path=str(stdout_path) if stdout_path else None,
                    stderr_path=str(stderr_path) if stderr_path else None)
