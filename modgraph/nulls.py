"""Null models (per-layer weight shuffles) and the significance of a detector's statistic.

The clusterability papers' test (arXiv 2003.04881, 2103.03386; ``clusterability.md`` §4):
clean the graph, score it with a detector, then score N shuffled copies. Each shuffle acts
on every layer's weight block independently, **after** cleaning, and the shuffled graph
is **cleaned again** before detection.

- ``layer``: all entries of the block move to random positions (zeros included), so the
  multiset of values and the number of edges per layer are kept, the mask is not.
- ``layer_nonzero``: the edges' values are permuted among the existing edges, so the
  exact mask and the multiset of edge values are kept.

On a DAG view (``graph.is_dag``) a block is the set of edges between one source group and one
target group (FC's rule for channel graphs): every (source group, target group) pair that has
an edge is shuffled on its own, in (source, target) order, with the edge type of the block kept.
The chain's blocks are exactly its layer pairs (l, l + 1), so a chain is shuffled as before, bit
for bit.

The statistic of a method is read from ``Partition.stats`` (see :data:`STATISTICS`):
``ncut`` for ``spectral`` and ``description_length`` for ``sbm``/``nested-sbm`` (lower =
more modular), ``modularity`` for ``modularity`` (higher = more modular).
``p = (1 + #{null < true}) / (N + 1)`` for lower-is-modular statistics and
``(1 + #{null > true}) / (N + 1)`` for higher-is-modular ones (ties do not count);
``z = (true − mean) / sd`` with the population sd (``None`` when the null has sd 0);
*significant* ⇔ ``p = 1/(N + 1)``: no shuffle beats the truth.
Shuffle i draws from ``SeedSequence([seed, i])``, so the same seed gives the same p and z
whatever the number of worker processes.

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> from modgraph.graph import build_unit_graph
>>> net = LayeredNetwork([Layer.from_dense(np.kron(np.eye(2), np.ones((3, 3))))] * 2)
>>> res = significance(build_unit_graph(net), method="spectral", options={"k": 2}, n_shuffles=5, seed=0)
>>> res.true_value, res.p == 1 / 6, res.significant
(0.0, True, True)
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

import numpy as np

from modgraph.dag import DagNetwork
from modgraph.graph import UnitGraph, build_unit_graph, condense, drop_isolated
from modgraph.io.atomic import atomic_path
from modgraph.network import LayeredNetwork

__all__ = ["NULLS", "STATISTICS", "CLEANERS", "shuffle_graph", "significance", "SignificanceResult"]

#: method -> (key in Partition.stats, "lower" or "higher" = the more modular direction)
STATISTICS = {"spectral": ("ncut", "lower"), "sbm": ("description_length", "lower"),
              "nested-sbm": ("description_length", "lower"), "modularity": ("modularity", "higher")}
#: cleaning name -> function(UnitGraph) -> UnitGraph
CLEANERS = {"drop_isolated": drop_isolated, "condense": condense, "none": lambda g: g}
_DEFAULT_CLEAN = {"spectral": "drop_isolated"}          # the others condense, as their detectors do


def _block_edges(graph: UnitGraph, l: int):
    """Edges from layer l to l + 1 as (position in the (n_{l+1}, n_l) block, value), plus shapes."""
    rows, cols = graph.units_in_layer(l + 1), graph.units_in_layer(l)
    pos = np.full(graph.n_units, -1)
    pos[rows], pos[cols] = np.arange(rows.size), np.arange(cols.size)
    sel = np.flatnonzero(graph.layer[graph.src] == l)
    return pos[graph.dst[sel]] * cols.size + pos[graph.src[sel]], graph.value[sel], rows, cols


def _shuffle_layer(flat, values, size, rng):
    return rng.choice(size, size=flat.size, replace=False), values


def _shuffle_layer_nonzero(flat, values, size, rng):
    return flat, values[rng.permutation(values.size)]


#: null name -> function(block positions, values, block size, rng) -> (positions, values)
NULLS = {"layer": _shuffle_layer, "layer_nonzero": _shuffle_layer_nonzero}


def shuffle_graph(graph: UnitGraph, null: str = "layer", *, seed) -> UnitGraph:
    """A copy of ``graph`` with every layer block shuffled by ``null`` (units unchanged).

    ``seed`` is an int or a :class:`numpy.random.SeedSequence`.

    Examples
    --------
    >>> from modgraph.network import Layer, LayeredNetwork
    >>> g = build_unit_graph(LayeredNetwork([Layer.from_dense(np.array([[1.0, 0.0], [0.0, 2.0]]))]))
    >>> sorted(shuffle_graph(g, "layer", seed=3).value.tolist())
    [1.0, 2.0]
    """
    if null not in NULLS:
        raise ValueError(f"unknown null {null!r}; choose one of {', '.join(sorted(NULLS))}")
    rng = np.random.default_rng(seed)
    if graph.is_dag:
        return _shuffle_blocks(graph, null, rng)
    src, dst, val = [], [], []
    for l in range(graph.n_layers - 1):
        flat, values, rows, cols = _block_edges(graph, l)
        if rows.size == 0 or cols.size == 0:
            continue
        flat, values = NULLS[null](flat, values, rows.size * cols.size, rng)
        src.append(cols[flat % cols.size])
        dst.append(rows[flat // cols.size])
        val.append(values)
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.array([], dt))
    return UnitGraph(graph.layer, graph.index, cat(src, np.int64), cat(dst, np.int64), cat(val, np.float64),
                     graph.widths)


def _shuffle_blocks(graph: UnitGraph, null: str, rng) -> UnitGraph:
    """Shuffle every (source group, target group) block of a DAG view on its own."""
    grp = graph.group
    n_groups = len(graph.group_names)
    key = grp[graph.src].astype(np.int64) * n_groups + grp[graph.dst]
    order = np.argsort(key, kind="stable")
    blocks, first = np.unique(key[order], return_index=True)
    bounds = np.append(first, order.size)
    pos = np.empty(graph.n_units, np.int64)
    for g in range(n_groups):
        members = np.flatnonzero(grp == g)
        pos[members] = np.arange(members.size)
    src, dst, val, typ = [], [], [], []
    for b, (lo, hi) in zip(blocks.tolist(), zip(bounds[:-1], bounds[1:])):
        sel = order[lo:hi]
        cols, rows = np.flatnonzero(grp == b // n_groups), np.flatnonzero(grp == b % n_groups)
        flat = pos[graph.dst[sel]] * cols.size + pos[graph.src[sel]]
        flat, values = NULLS[null](flat, graph.value[sel], rows.size * cols.size, rng)
        src.append(cols[flat % cols.size])
        dst.append(rows[flat // cols.size])
        val.append(values)
        typ.append(np.full(flat.size, graph.edge_type[sel[0]], np.int8))
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.array([], dt))
    return graph.with_edges(cat(src, np.int64), cat(dst, np.int64), cat(val, np.float64), cat(typ, np.int8))


@dataclass
class SignificanceResult:
    """The true statistic, its null distribution and the summary numbers (JSON-ready)."""

    method: str
    statistic: str
    direction: str
    null: str
    clean: str
    n_shuffles: int
    seed: int
    options: dict
    true_value: float
    null_values: list
    null_mean: float
    null_sd: float
    p: float
    z: float | None
    significant: bool
    seconds: float
    n_units: int = 0
    true_stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def save_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))

    def save_histogram(self, path) -> None:
        """A PNG histogram of the null with the true value marked, written atomically."""
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.6))
        ax = fig.add_subplot()
        ax.hist(self.null_values, bins=min(30, max(5, self.n_shuffles // 3)), color="0.7",
                label=f"{self.null} null (N = {self.n_shuffles})")
        ax.axvline(self.true_value, color="crimson", lw=2, label=f"true {self.true_value:.4g}")
        ax.set_xlabel(f"{self.statistic} ({self.method}, {self.direction} = more modular)")
        ax.set_ylabel("shuffles")
        z = "n/a" if self.z is None else f"{self.z:.2f}"
        ax.set_title(f"p = {self.p:.4f}, z = {z}" + (", significant" if self.significant else ""))
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)

    def table(self) -> str:
        """A small text table of the result."""
        z = "n/a" if self.z is None else f"{self.z:.3f}"
        rows = [("method", self.method), ("statistic", f"{self.statistic} ({self.direction} = more modular)"),
                ("options", json.dumps(self.options, sort_keys=True)), ("null", f"{self.null} (cleaning: {self.clean})"),
                ("shuffles", str(self.n_shuffles)), ("seed", str(self.seed)),
                ("true", f"{self.true_value:.6g}"), ("null mean ± sd", f"{self.null_mean:.6g} ± {self.null_sd:.3g}"),
                ("null range", f"{min(self.null_values):.6g} .. {max(self.null_values):.6g}"),
                ("p", f"{self.p:.4f} (min {1 / (self.n_shuffles + 1):.4f})"), ("z", z),
                ("significant", "yes (beats every shuffle)" if self.significant else "no"),
                ("seconds", f"{self.seconds:.1f}")]
        return "\n".join(f"{k:>15}  {v}" for k, v in rows)


def _score(graph: UnitGraph, method: str, seed: int, options: dict) -> tuple[float, dict]:
    from modgraph.detect import detect

    part = detect(graph, method=method, seed=seed, **options)
    key = STATISTICS[method][0]
    if key not in part.stats:
        raise KeyError(f"detector {method!r} did not report stats[{key!r}]; it reported {sorted(part.stats)}")
    return float(part.stats[key]), part.stats


def _one_shuffle(graph, method, null, clean, seed, i, options) -> float:
    ss = np.random.SeedSequence([seed, i])
    shuffle_seq, detect_seq = ss.spawn(2)
    shuffled = CLEANERS[clean](shuffle_graph(graph, null, seed=shuffle_seq))
    return _score(shuffled, method, int(detect_seq.generate_state(1)[0] >> 1), options)[0]


def _init_worker() -> None:
    try:                                         # one BLAS thread per worker: the workers are the parallelism
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


def _run_shuffles(graph, method, null, clean, seed, n, options, n_jobs, progress) -> list[float]:
    from tqdm import tqdm

    bar = tqdm(total=n, desc=f"{null} shuffles", disable=not progress, mininterval=2)
    if n_jobs <= 1:
        out = []
        for i in range(n):
            out.append(_one_shuffle(graph, method, null, clean, seed, i, options))
            bar.update(1)
        bar.close()
        return out
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = [pool.submit(_one_shuffle, graph, method, null, clean, seed, i, options) for i in range(n)]
        for f in futures:
            f.add_done_callback(lambda _: bar.update(1))
        out = [f.result() for f in futures]
    bar.close()
    return out


def significance(network_or_graph, *, method: str = "spectral", null: str = "layer", n_shuffles: int = 50,
                 seed: int = 0, clean: str | None = None, options: dict | None = None, n_jobs: int = 1,
                 progress: bool = False, view: str = "split", edge_norm: str | None = None) -> SignificanceResult:
    """Score a network (or unit graph) with ``method`` against ``n_shuffles`` shuffles of ``null``.

    Parameters
    ----------
    network_or_graph : LayeredNetwork, DagNetwork or UnitGraph
        A network is made a unit graph with ``build_unit_graph(net, view=view, edge_norm=edge_norm)``.
    method : str
        A detector with a statistic in :data:`STATISTICS`.
    null : str
        One of :data:`NULLS`.
    n_shuffles : int
    seed : int
        Seeds the true detection and, through ``(seed, i)``, shuffle i and its detection.
    clean : str, optional
        One of :data:`CLEANERS`; default ``drop_isolated`` for ``spectral`` (the papers'
        cleaning), ``condense`` for the others.
    options : dict, optional
        Passed to the detector (e.g. ``{"k": 12}`` for spectral).
    n_jobs : int
        Worker processes (1 = in this process). The result does not depend on it.
    progress : bool
        Show a tqdm bar.
    view, edge_norm : str
        The unit graph of a network (see :func:`modgraph.graph.build_unit_graph`); ignored for a UnitGraph.
    """
    if method not in STATISTICS:
        raise ValueError(f"no statistic known for method {method!r}; choose one of {', '.join(sorted(STATISTICS))}")
    if null not in NULLS:
        raise ValueError(f"unknown null {null!r}; choose one of {', '.join(sorted(NULLS))}")
    clean = clean or _DEFAULT_CLEAN.get(method, "condense")
    if clean not in CLEANERS:
        raise ValueError(f"unknown cleaning {clean!r}; choose one of {', '.join(sorted(CLEANERS))}")
    if isinstance(n_shuffles, bool) or not isinstance(n_shuffles, (int, np.integer)) or n_shuffles < 1:
        raise ValueError(f"n_shuffles must be an int >= 1, got {n_shuffles!r}")
    options = dict(options or {})
    if isinstance(network_or_graph, (LayeredNetwork, DagNetwork)):
        graph = build_unit_graph(network_or_graph, view=view, edge_norm=edge_norm)
    else:
        graph = network_or_graph
    t0 = time.perf_counter()
    graph = CLEANERS[clean](graph)
    true_value, true_stats = _score(graph, method, int(seed), options)
    null_values = _run_shuffles(graph, method, null, clean, int(seed), int(n_shuffles), options,
                                max(1, min(int(n_jobs), int(n_shuffles), os.cpu_count() or 1)), progress)
    return _summarise(method, null, clean, int(seed), options, true_value, null_values, true_stats,
                      time.perf_counter() - t0, graph.n_units)


def _summarise(method, null, clean, seed, options, true_value, null_values, true_stats, seconds, n_units):
    key, direction = STATISTICS[method]
    nv = np.asarray(null_values, dtype=np.float64)
    beats = nv < true_value if direction == "lower" else nv > true_value
    n = nv.size
    p = (1 + int(beats.sum())) / (n + 1)
    mean, sd = float(nv.mean()), float(nv.std())
    z = (true_value - mean) / sd if sd > 0 else None
    return SignificanceResult(method, key, direction, null, clean, n, seed, options, float(true_value),
                              nv.tolist(), mean, sd, p, z, p == 1 / (n + 1), seconds, n_units,
                              {k: v for k, v in true_stats.items() if k != "eigenvalues"})
