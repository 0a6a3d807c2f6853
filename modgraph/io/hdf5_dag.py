"""modgraph HDF5 format version 2: a :class:`~modgraph.dag.DagNetwork` as its list of builder steps.

Layout (``docs/format.md``)::

    / attrs: format="modgraph", format_version="2.0", network="dag", n_steps, outputs int64[],
             metadata_json (JSON string)
    /steps/0000 ... /steps/{n-1}   attrs: op, inputs int64[] (earlier step numbers), group (name or ""),
                                          params_json (the op's scalar parameters)
        weight, bias, scale, shift      float datasets, where the op has them

Reading replays the steps through :class:`~modgraph.dag_builder.DagBuilder`, so a file is checked
exactly as a reader's calls are; every defect raises :class:`~modgraph.errors.FormatError` naming
the file and the step. Chains are written as version 1 (``modgraph.io.hdf5.save`` decides).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from modgraph.dag_builder import DagBuilder
>>> b = DagBuilder()
>>> x = b.input("x", channels=1, spatial=(3, 3))
>>> net = b.build(outputs=[b.activation(b.conv("c", x, np.ones((2, 1, 2, 2))), "relu")])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "dag.h5"
>>> with h5py.File(path, "w") as f:
...     write_dag(f, net, "{}")
>>> with h5py.File(path, "r") as f:
...     back = read_dag(f, path)
>>> back.unit_names(), back.group("c").activation
(['x:0', 'c:0', 'c:1'], 'relu')
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import FormatError
from modgraph.io.limits import SizeGuard

__all__ = ["write_dag", "read_dag", "DAG_FORMAT_VERSION"]

DAG_FORMAT_VERSION = "2.0"
_ARRAYS = ("weight", "bias", "scale", "shift")
_MAX_STEPS = 1_000_000


def write_dag(f: h5py.File, net: DagNetwork, meta_json: str) -> None:
    """Write ``net``'s steps into the open file ``f`` (the caller makes the write atomic)."""
    f.attrs.update(format="modgraph", format_version=DAG_FORMAT_VERSION, network="dag",
                   n_steps=len(net.steps), outputs=np.asarray(net.outputs, np.int64), metadata_json=meta_json)
    steps = f.create_group("steps")
    for i, s in enumerate(net.steps):
        h = steps.create_group(f"{i:04d}")
        grp = net.groups[s.group] if s.group >= 0 else None
        params = {k: v for k, v in s.params.items() if not isinstance(v, np.ndarray)}
        arrays = {k: v for k, v in s.params.items() if isinstance(v, np.ndarray)}
        if grp is not None:
            arrays.update({k: getattr(grp, k) for k in ("weight", "bias") if getattr(grp, k) is not None})
            if sp.issparse(arrays.get("weight")):       # a dense layer read from a sparse initializer
                arrays["weight"] = arrays["weight"].toarray()
            if s.op == "input":
                m = net.tensor_maps[i]
                params = {"channels": m.n_channels, "spatial": list(m.spatial) if m.spatial else None}
        h.attrs.update(op=s.op, inputs=np.asarray(s.inputs, np.int64), group=grp.name if grp else "",
                       params_json=json.dumps(params))
        for k, v in arrays.items():
            h.create_dataset(k, data=v)


_REPLAY = {
    "input": lambda b, n, xs, p, a: b.input(n, channels=p["channels"], spatial=p["spatial"]),
    "dense": lambda b, n, xs, p, a: b.dense(n, xs[0], a["weight"], a.get("bias")),
    "conv": lambda b, n, xs, p, a: b.conv(n, xs[0], a["weight"], a.get("bias"), **p),
    "conv_transpose": lambda b, n, xs, p, a: b.conv_transpose(n, xs[0], a["weight"], a.get("bias"), **p),
    "add": lambda b, n, xs, p, a: b.add(n, xs),
    "mul": lambda b, n, xs, p, a: b.mul(n, *xs),
    "activation": lambda b, n, xs, p, a: b.activation(xs[0], p["name"], alpha=p["alpha"],
                                                      assumed=p.get("assumed", False)),
    "affine": lambda b, n, xs, p, a: b.affine(xs[0], a["scale"], a["shift"]),
    "max_pool": lambda b, n, xs, p, a: b.max_pool(xs[0], p["kernel"], strides=p["strides"], pads=p["pads"],
                                                  dilations=p["dilations"], ceil_mode=p.get("ceil_mode", False)),
    "avg_pool": lambda b, n, xs, p, a: b.avg_pool(xs[0], p["kernel"], strides=p["strides"], pads=p["pads"],
                                                  count_include_pad=p["count_include_pad"],
                                                  ceil_mode=p.get("ceil_mode", False)),
    "global_avg_pool": lambda b, n, xs, p, a: b.global_avg_pool(xs[0]),
    "global_max_pool": lambda b, n, xs, p, a: b.global_max_pool(xs[0]),
    "pad": lambda b, n, xs, p, a: b.pad(xs[0], p["pads"], value=p["value"], mode=p["mode"]),
    "concat": lambda b, n, xs, p, a: b.concat(xs),
    "slice": lambda b, n, xs, p, a: b.slice(xs[0], p["start"], p["stop"]),
    "pad_channels": lambda b, n, xs, p, a: b.pad_channels(xs[0], *p["channels"]),
    "flatten": lambda b, n, xs, p, a: b.flatten(xs[0], p["order"]),
}


def _dataset(guard: SizeGuard, d, place):
    path = guard.path
    if not isinstance(d, h5py.Dataset) or d.dtype.kind != "f":
        raise FormatError(path, place, "a floating-point dataset", "a group" if isinstance(d, h5py.Group)
                          else f"dtype {getattr(d, 'dtype', None)}")
    guard.hdf5(d, place)                          # declared size vs stored bytes and ceilings, before reading
    return d[()]


def _step(path, h, i: int, guard: SizeGuard):
    """(op, inputs, group name, params, arrays) of step ``i``, checked."""
    place = h.name
    try:
        op, name = str(h.attrs["op"]), str(h.attrs["group"])
        inputs = [int(v) for v in np.asarray(h.attrs["inputs"]).ravel()]
        params = json.loads(h.attrs["params_json"])
    except (KeyError, ValueError, TypeError) as err:
        raise FormatError(path, place, "attributes op, inputs, group, params_json (JSON)", f"{err!r}") from err
    if op not in _REPLAY:
        raise FormatError(path, f"{place} attribute 'op'", "one of " + ", ".join(sorted(_REPLAY)), repr(op))
    if any(not 0 <= j < i for j in inputs):
        raise FormatError(path, f"{place} attribute 'inputs'", f"earlier steps (0 .. {i - 1}; a DAG has no cycle)",
                          str(inputs))
    arrays = {k: _dataset(guard, h[k], f"{place}/{k}") for k in _ARRAYS if k in h}
    return op, inputs, name, params, arrays


def read_dag(f: h5py.File, path) -> DagNetwork:
    """Read a version-2 file (already opened, tag checked) by replaying its steps."""
    try:
        n = int(f.attrs["n_steps"])
        outputs = [int(v) for v in np.asarray(f.attrs["outputs"]).ravel()]
        metadata = json.loads(f.attrs["metadata_json"])
    except (KeyError, ValueError, TypeError) as err:
        raise FormatError(path, "/", "attributes n_steps, outputs, metadata_json (JSON)", f"{err!r}") from err
    steps = f.get("steps")
    want = [f"{i:04d}" for i in range(n)]
    if not isinstance(steps, h5py.Group) or not 0 < n <= _MAX_STEPS or sorted(steps) != want:
        raise FormatError(path, "/steps", f"steps 0000 .. {n - 1:04d} (n_steps = {n})",
                          "missing" if not isinstance(steps, h5py.Group) else f"{len(steps)} entries")
    guard = SizeGuard(path)            # declared channel counts (input, pads) are bounded by the file's size
    b, tensors = DagBuilder(source=str(path), copy=False, max_units=guard.unit_budget(Path(path).stat().st_size)), []
    for i in range(n):
        op, inputs, name, params, arrays = _step(path, steps[want[i]], i, guard)
        try:
            tensors.append(_REPLAY[op](b, name, [tensors[j] for j in inputs], params, arrays))
        except FormatError as err:
            raise FormatError(path, f"/steps/{want[i]} ({err.place})", err.expected, err.found) from err
        except (KeyError, TypeError, ValueError, IndexError) as err:     # e.g. a 1-D "spatial" for a 2-D conv
            raise FormatError(path, f"/steps/{want[i]}", f"the parameters of {op!r}", f"{err!r}") from err
    if not outputs or any(not 0 <= o < n for o in outputs):
        raise FormatError(path, "/ attribute 'outputs'", f"step numbers in [0, {n})", str(outputs))
    return b.build(outputs=[tensors[o] for o in outputs], metadata=metadata, source_format="modgraph-hdf5")
