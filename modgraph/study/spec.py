"""The study spec: a TOML file naming inputs, methods, seeds, views and significance settings.

:func:`read_spec` parses and validates the file once (every mistake is a
:class:`~modgraph.errors.FormatError` naming the spec and the key); :func:`plan_runs` expands it
into one :class:`Run` per (file, method, options, seed, view, edge norm). A run's ``run_id``
(relative path, method, options, seed, view, edge norm) names it; its ``key`` (file SHA-256,
method, options, seed, view, edge norm, ground truth, modgraph version) says whether a stored
result still holds. Seeds are derived from (study seed, network, method, i), never the clock.
The format is documented in ``docs/study.md``.

Examples
--------
>>> derive_seed(0, "runs/a/network.h5", "sbm", 0) == derive_seed(0, "runs/a/network.h5", "sbm", 0)
True
>>> derive_seed(0, "runs/a/network.h5", "sbm", 0) != derive_seed(0, "runs/a/network.h5", "sbm", 1)
True
"""
from __future__ import annotations

import glob
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from modgraph.errors import FormatError

__all__ = ["StudySpec", "Run", "read_spec", "parse_spec", "plan_runs", "derive_seed", "file_sha256",
           "RESERVED_COLUMNS"]

#: Columns of ``runs.csv`` that a tag may not take.
RESERVED_COLUMNS = ("run_id", "path", "relpath", "kind", "method", "label", "options", "seed", "view",
                    "edge_norm", "status", "error", "key", "file", "source_format", "units", "edges",
                    "modules", "success", "graph_sha", "labels_sha", "network")
_TOP = {"study", "inputs", "methods", "significance"}
_STUDY = {"name", "seed", "seeds", "root", "views", "edge_norms", "truth", "pictures", "criterion"}
_INPUT = {"path", "paths", "framework", "network", "truth", "tags"}
_METHOD = {"name", "label", "options"}
_SIG = {"methods", "null", "shuffles", "options"}


@dataclass(frozen=True)
class Run:
    """One analysis of one file: everything a worker needs, JSON-ready."""

    run_id: str
    key: str
    path: str                       # absolute
    relpath: str                    # relative to the study root
    kind: str                       # "analysis" or "significance"
    method: str
    label: str                      # the method's name in tables (its label when given)
    options: dict
    seed: int
    view: str | None
    edge_norm: str | None
    truth: str | None               # absolute path of a task spec or ground-truth JSON
    tags: dict = field(default_factory=dict)
    significance: dict | None = None
    pictures: bool = False

    def to_task(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec (see ``docs/study.md``)."""

    source: str
    root: Path
    name: str
    seed: int
    seeds: tuple | int              # explicit detector seeds, or how many to derive
    inputs: tuple                   # ({"paths": [...], "framework": ..., "network": ..., "truth": ..., "tags": {}})
    methods: tuple                  # ({"name": ..., "label": ..., "options": {}})
    views: tuple = (None,)
    edge_norms: tuple = (None,)
    truth: str | None = None
    pictures: bool = False
    significance: dict | None = None


def _bad(source, place, expected, found) -> FormatError:
    return FormatError(source, place, expected, found)


def _check_keys(source, place, table, allowed) -> None:
    if not isinstance(table, dict):
        raise _bad(source, place, "a table", type(table).__name__)
    extra = sorted(set(table) - allowed)
    if extra:
        raise _bad(source, f"{place}.{extra[0]}", f"one of the keys {', '.join(sorted(allowed))}", repr(extra[0]))


def read_spec(path) -> StudySpec:
    """Read and validate a TOML study spec; relative paths are taken from the spec's folder."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as err:
        raise _bad(path, "file", "a readable TOML file", err.strerror or str(err)) from err
    except UnicodeDecodeError as err:
        raise _bad(path, f"byte {err.start}", "UTF-8 text", "invalid UTF-8") from err
    except tomllib.TOMLDecodeError as err:
        raise _bad(path, "TOML", "a valid TOML document", str(err)) from err
    return parse_spec(doc, source=str(path), base=path.parent)


def _input(source, i, entry, root) -> dict:
    place = f"inputs[{i}]"
    _check_keys(source, place, entry, _INPUT)
    pats = entry.get("paths", [entry["path"]] if "path" in entry else None)
    if not pats or not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise _bad(source, place, "'path' (a string) or 'paths' (a list of strings and globs)", repr(pats))
    files = []
    for pat in pats:
        full = pat if Path(pat).is_absolute() else str(root / pat)
        hits = sorted(glob.glob(full, recursive=True)) if glob.has_magic(pat) else [full]
        if not hits:
            raise _bad(source, place, f"files matching {pat!r}", "none")
        files += [str(Path(h).resolve()) for h in hits if not Path(h).is_dir()]
    tags = entry.get("tags", {})
    _check_keys(source, f"{place}.tags", tags, set(tags))
    clash = [t for t in (*tags, "framework") if t in RESERVED_COLUMNS]
    if clash:
        raise _bad(source, f"{place}.tags.{clash[0]}", "a tag name that is not a column of runs.csv "
                   "(for a training seed say e.g. train_seed)", repr(clash[0]))
    if "framework" in entry:
        tags = {"framework": str(entry["framework"]), **tags}
    return {"files": files, "network": entry.get("network"), "tags": tags,
            "truth": _truth(source, f"{place}.truth", entry.get("truth"), root)}


def _truth(source, place, value, root) -> str | None:
    """A ground truth as ``modgraph analyze --truth`` takes it: a file (relative to the study root;
    any name ending in .json is a file), else a shipped task by id (``"[4,2,4]"``), name or alias.
    Returns the absolute path of the file; an unknown task lists the shipped ones."""
    from modgraph.tasks.shipped import UnknownTaskError, task_file

    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(source, place, "a ground-truth file or a shipped task id, name or alias", repr(value))
    path = root / value
    if path.exists() or Path(value).suffix.lower() == ".json":
        return str(path.resolve())
    try:
        return str(task_file(value).resolve())
    except UnknownTaskError as err:
        raise _bad(source, place, "a ground-truth file or a shipped task", str(err)) from None


def _methods(source, methods) -> tuple:
    from modgraph.detect import DETECTORS

    if not isinstance(methods, list) or not methods:
        raise _bad(source, "methods", "a non-empty list of method names or tables", repr(methods))
    out = []
    for i, m in enumerate(methods):
        m = {"name": m} if isinstance(m, str) else m
        _check_keys(source, f"methods[{i}]", m, _METHOD)
        if m.get("name") not in DETECTORS:
            raise _bad(source, f"methods[{i}].name", f"one of {', '.join(sorted(DETECTORS))}", repr(m.get("name")))
        opts = m.get("options", {})
        _check_keys(source, f"methods[{i}].options", opts, set(opts))
        out.append({"name": m["name"], "label": str(m.get("label", m["name"])), "options": dict(opts)})
    labels = [m["label"] for m in out]
    dup = next((l for l in labels if labels.count(l) > 1), None)
    if dup:
        raise _bad(source, "methods", "a distinct label for each method entry (add label = ...)", f"{dup!r} twice")
    return tuple(out)


def _seeds(source, value) -> tuple | int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        return tuple(value)
    raise _bad(source, "study.seeds", "a positive count or a non-empty list of integers", repr(value))


def _choices(source, key, value) -> tuple:
    if value is None:
        return (None,)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _bad(source, f"study.{key}", "a non-empty list of names", repr(value))
    return tuple(value)


def _significance(source, sig, methods) -> dict | None:
    """The [significance] table, checked: its methods have a statistic and are among [[methods]]."""
    from modgraph.nulls import NULLS, STATISTICS

    if sig is None:
        return None
    _check_keys(source, "significance", sig, _SIG)
    names = sig.get("methods", ["spectral"])
    listed = {m["name"] for m in methods}
    if not isinstance(names, list) or not names:
        raise _bad(source, "significance.methods", "a non-empty list of method names", repr(names))
    for i, name in enumerate(names):
        if name not in STATISTICS:
            raise _bad(source, f"significance.methods[{i}]", f"a method with a statistic "
                       f"({', '.join(sorted(STATISTICS))})", repr(name))
        if name not in listed:
            raise _bad(source, f"significance.methods[{i}]", "the name of a [[methods]] entry "
                       f"({', '.join(sorted(listed))}): its options and seeds are used", repr(name))
    null = sig.get("null", "layer")
    if null not in NULLS:
        raise _bad(source, "significance.null", f"one of {', '.join(sorted(NULLS))}", repr(null))
    shuffles = sig.get("shuffles", 20)
    if not isinstance(shuffles, int) or isinstance(shuffles, bool) or shuffles < 1:
        raise _bad(source, "significance.shuffles", "a positive integer", repr(shuffles))
    opts = sig.get("options", {})
    _check_keys(source, "significance.options", opts, set(opts))
    return {"methods": list(names), "null": null, "shuffles": shuffles, "options": dict(opts)}


def parse_spec(doc: dict, *, source: str = "<spec>", base=".") -> StudySpec:
    """Validate a parsed spec document (``tomllib.loads`` output)."""
    _check_keys(source, "spec", doc, _TOP)
    study = doc.get("study", {})
    _check_keys(source, "study", study, _STUDY)
    root = (Path(base) / study.get("root", ".")).resolve()
    entries = doc.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise _bad(source, "inputs", "at least one [[inputs]] table", repr(entries))
    seed = study.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _bad(source, "study.seed", "an integer", repr(seed))
    methods = _methods(source, doc.get("methods", ["sculpting"]))
    sig = _significance(source, doc.get("significance"), methods)
    truth = _truth(source, "study.truth", study.get("truth"), root)
    return StudySpec(source=source, root=root, name=str(study.get("name", Path(source).stem)), seed=seed,
                     seeds=_seeds(source, study.get("seeds", 1)),
                     inputs=tuple(_input(source, i, e, root) for i, e in enumerate(entries)),
                     methods=methods,
                     views=_choices(source, "views", study.get("views")),
                     edge_norms=_choices(source, "edge_norms", study.get("edge_norms")),
                     truth=truth,
                     pictures=bool(study.get("pictures", False)), significance=sig)


def derive_seed(study_seed: int, network: str, method: str, i: int) -> int:
    """The i-th detector seed of ``method`` on ``network``: a hash, never the clock."""
    digest = hashlib.sha256(f"{study_seed}\0{network}\0{method}\0{i}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha_or_missing(path) -> str:
    try:
        return file_sha256(path)
    except OSError as err:
        return f"unreadable: {err.strerror}"      # the run itself reports the error


def _relpath(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def plan_runs(spec: StudySpec) -> list[Run]:
    """Every run of the study, in a fixed order (inputs, files, methods, views, norms, seeds)."""
    from modgraph import __version__

    runs, seen, shas = [], set(), {}
    for entry in spec.inputs:
        truth = entry["truth"] or spec.truth
        for path in entry["files"]:
            rel = _relpath(path, spec.root)
            sha = shas.setdefault(path, _sha_or_missing(path))
            net = entry["network"] or rel
            for m in spec.methods:
                kinds = ["analysis"] + (["significance"] if spec.significance
                                        and m["name"] in spec.significance["methods"] else [])
                for view in spec.views:
                    for norm in spec.edge_norms:
                        seeds = (spec.seeds if isinstance(spec.seeds, tuple)
                                 else [derive_seed(spec.seed, net, m["label"], i) for i in range(spec.seeds)])
                        for seed in seeds:
                            for kind in kinds:
                                run = _run(spec, path, rel, sha, m, seed, view, norm, truth, entry, kind,
                                           __version__)
                                if run.run_id not in seen:          # one file listed twice runs once
                                    seen.add(run.run_id)
                                    runs.append(run)
    return runs


def _run(spec, path, rel, sha, m, seed, view, norm, truth, entry, kind, version) -> Run:
    opts = json.dumps(m["options"], sort_keys=True)
    sig = spec.significance if kind == "significance" else None
    run_id = f"{rel} | {kind} | {m['label']} | {opts} | seed {seed} | view {view} | norm {norm}"
    truth_sha = _sha_or_missing(truth) if truth else None
    key = hashlib.sha256(json.dumps([sha, kind, m["name"], opts, seed, view, norm, truth_sha, sig, version],
                                    sort_keys=True).encode()).hexdigest()
    tags = {"network": entry["network"] or "", **entry["tags"]}
    return Run(run_id=run_id, key=key, path=path, relpath=rel, kind=kind, method=m["name"], label=m["label"],
               options=dict(m["options"]), seed=seed, view=view, edge_norm=norm, truth=truth, tags=tags,
               significance=sig, pictures=spec.pictures)
