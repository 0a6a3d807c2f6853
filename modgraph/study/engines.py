"""Where the runs of a study execute: in this process, a local process pool, or a Dask cluster.

Every engine has one method, ``map(fn, tasks)``, yielding ``(index, result)`` as each task
finishes (in completion order), so the driver can store each result at once. A process pool is
the default and needs no dependency; :class:`DaskEngine` takes any ``distributed.Client``
(a ``LocalCluster``, a scheduler address, ``dask_jobqueue.SLURMCluster``,
``dask_kubernetes.operator.KubeCluster``: see ``docs/study.md``).

Examples
--------
>>> sorted(InlineEngine().map(abs, [-2, 3]))
[(0, 2), (1, 3)]
"""
from __future__ import annotations

import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

__all__ = ["InlineEngine", "PoolEngine", "DaskEngine", "make_engine", "local_cluster_client"]


class InlineEngine:
    """Run every task in the calling process, one after the other."""

    name = "inline"

    def map(self, fn, tasks):
        for i, t in enumerate(tasks):
            yield i, fn(t)

    def close(self) -> None:
        pass


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the driver's to handle


class PoolEngine:
    """A local process pool (``concurrent.futures``), one OpenMP thread per worker.

    At most ``2 * workers`` tasks are in flight, so an interrupt loses little queued work.
    """

    name = "pool"

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, initializer=_init_worker)

    def map(self, fn, tasks):
        tasks, pending, nxt = list(tasks), {}, 0
        while nxt < len(tasks) or pending:
            while nxt < len(tasks) and len(pending) < 2 * self.workers:
                pending[self._pool.submit(fn, tasks[nxt])] = nxt
                nxt += 1
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine:
    """Tasks on a Dask cluster through ``client`` (a ``distributed.Client``), in completion order."""

    name = "dask"

    def __init__(self, client, *, own: bool = False):
        self.client, self._own = client, own

    def map(self, fn, tasks):
        from distributed import as_completed

        futures = self.client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                yield index[fut.key], fut.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        if self._own:
            cluster = getattr(self.client, "cluster", None)
            self.client.close()
            if cluster is not None:
                cluster.close()


def local_cluster_client(*, workers: int = 2):
    """A ``distributed.Client`` on a loopback ``LocalCluster``: processes, one thread each, no dashboard."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs the dask extra: pip install 'modgraph[dask]'") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
    return Client(cluster)


def make_engine(*, workers: int = 1, dask: str | None = None, client=None):
    """The engine for ``client`` (a Dask client), ``dask`` ('local' or 'tcp://host:port'), else a pool."""
    if client is not None:
        return DaskEngine(client)
    if dask == "local":
        return DaskEngine(local_cluster_client(workers=max(workers, 2)), own=True)
    if dask:
        if not dask.startswith(("tcp://", "tls://")):
            raise ValueError(f"--dask expects 'local' or a scheduler address tcp://host:port, got {dask!r}")
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--dask needs the dask extra: pip install 'modgraph[dask]'") from None
        return DaskEngine(Client(dask, timeout="10s"), own=True)
    return PoolEngine(workers) if workers > 1 else InlineEngine()
