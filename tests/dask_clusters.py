"""Helpers for tests that start Dask clusters: they close them and leave no process behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil

# Helpers multiprocessing starts once and keeps for the life of this process: not leaks.
_LIFELONG = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def children() -> set[int]:
    """This process's descendants, except multiprocessing's own helpers (a worker forked
    from the fork server counts: it is the server's child, not a helper)."""
    me = psutil.Process()
    helpers = {child.pid for child in me.children() if _lifelong(child)}
    return {child.pid for child in me.children(recursive=True) if child.pid not in helpers}


def _lifelong(process: psutil.Process) -> bool:
    try:
        return any(helper in " ".join(process.cmdline()) for helper in _LIFELONG)
    except psutil.Error:
        return False


def assert_no_new_processes(before: set[int], grace: float = 15) -> None:
    """Fail if processes started since `before` are still alive after `grace` seconds."""
    deadline = time.monotonic() + grace
    while True:
        alive = [pid for pid in children() - before if psutil.pid_exists(pid) and _running(pid)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind: {alive}")
        time.sleep(0.2)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_cluster(processes: list[subprocess.Popen]) -> None:
    """Stop a scheduler (the first of `processes`) and its workers: the workers first (a
    worker whose scheduler is gone first spends its connect time-out trying to reach it),
    each killed if it has not ended 30 s after it was told to."""
    scheduler, *workers = processes
    for group in (workers, [scheduler]):
        for process in group:
            process.terminate()
        for process in group:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


class RealCluster:
    """`dask scheduler` and `dask worker --preload eau2` as separate processes on 127.0.0.1,
    with or without nannies and worker names, and a client; `kill(node)` kill -9s a node's
    worker process, as the kernel's OOM killer or a lost machine would.

    `names` are the workers' `--name`s, in start order (none: workers named by address);
    `flags` are added to every worker's command line, `worker_flags[i]` to the i-th's;
    `preload_scheduler` starts the scheduler with ``--preload eau2`` too (else the first
    client registers eau2's scheduler plugin); `tls` (CA file, certificate, key) makes every
    process listen on tls:// only, and the client connect with that certificate."""

    def __init__(
        self,
        log_path,
        workers: int = 3,
        *,
        nanny: bool = True,
        named: bool = True,
        names: list[str] | None = None,
        flags: list[str] = (),
        worker_flags: list[list[str]] | None = None,
        preload_scheduler: bool = False,
        tls: tuple[str, str, str] | None = None,
    ):
        from distributed import Client, Security

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{port}"
        self.security = None
        encryption = []
        if tls:
            ca, cert, key = map(str, tls)
            self.security = Security(
                tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True
            )
            encryption = ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]
        self._before = children()
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close(), after the processes
        scheduler = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port)]
        preload = ["--preload", "eau2"] if preload_scheduler else []
        if tls:
            scheduler += ["--protocol", "tls"]
        self._processes = [self._start([*scheduler, "--no-dashboard", *preload, *encryption])]
        names = names if names is not None else [str(number) for number in range(workers)] if named else []
        for number in range(workers):
            own = ["--name", names[number]] if names else []
            self._processes.append(
                self._start(
                    ["distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nthreads", "1"]
                    + ["--no-dashboard", "--memory-limit", "2GB", "--preload", "eau2", *own, *flags]
                    + encryption
                    + (worker_flags[number] if worker_flags else [])
                    + ([] if nanny else ["--no-nanny"])
                )
            )
        self.client = Client(self.address, timeout="60s", security=self.security)
        self.client.wait_for_workers(workers, timeout=120)

    def _start(self, arguments: list[str]) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", *arguments], stdout=self._log, stderr=self._log)

    def directory(self) -> list[str | None]:
        """Each node's worker address, as the scheduler has it now."""
        import eau2_dask

        return eau2_dask.connect(self.client).transport.directory(fresh=True)

    def kill(self, node: int) -> None:
        """kill -9 the worker process of `node` (its nanny, if any, starts a new one)."""
        import os
        import signal

        address = self.directory()[node]
        pid = self.client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)

    def wait_for(self, condition, timeout: float = 60, what: str = "the cluster") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout} s")
            time.sleep(0.1)

    def close(self) -> None:
        self.client.close()
        stop_cluster(self._processes)
        self._log.close()
        assert_no_new_processes(self._before)

    def __enter__(self) -> RealCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
