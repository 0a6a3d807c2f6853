"""A short readable summary of an analysis, and the comparative table across files and methods."""
from __future__ import annotations

__all__ = ["format_analysis", "format_table", "format_groups", "format_truth_vs_found", "short_list"]

#: Lists longer than this are shown as ``first … last (n noun)``.
MAX_LISTED = 32


def short_list(names, noun: str = "units", *, limit: int = MAX_LISTED) -> str:
    """``x1,x2,x3``, or ``x13 … x780 (702 inputs)`` when there are more than ``limit`` names."""
    names = list(names)
    if len(names) <= limit:
        return ",".join(names)
    return f"{names[0]} … {names[-1]} ({len(names)} {noun})"


def format_groups(groups, names) -> str:
    """``[[0, 1], [2]]`` with names x1.. → ``{x1,x2} {x3}``."""
    return " ".join("{" + ",".join(names[i] for i in g) + "}" for g in groups) or "-"


def _units(m, ins, outs) -> str:
    parts = []
    for layer, idx in m["units"].items():
        l = int(layer)
        if l == 0:
            parts.append("{" + short_list([ins[i] for i in idx], "inputs") + "}")
        elif int(layer) == m["_last"]:
            parts.append("{" + short_list([outs[i] for i in idx], "outputs") + "}")
        else:
            parts.append(f"h{l}:{len(idx)}")
    return " ".join(parts)


def format_analysis(d: dict) -> str:
    """The text printed by ``modgraph analyze`` for one analysis dict (``Analysis.to_dict()``)."""
    if "view" in d:
        return _format_dag_analysis(d)
    ins, outs = d["input_names"], d["output_names"]
    net, cond, p, dag = d["network"], d["condensed"], d["partition"], d["dag"]
    lines = [f"{d['name']}  [{d['source_format']}]  widths {'-'.join(map(str, net['widths']))}, "
             f"{net['n_edges']} edges  →  condensed {'-'.join(map(str, cond['widths']))}, {cond['n_edges']} edges",
             f"method {p['method']} (seed {p['seed']}): {p['n_modules']} modules"
             + (", module DAG has cycles" if not dag["acyclic"] else "")]
    lines += [f"  assumed: {a}" for a in d.get("assumed", ())]
    last = dag["n_layers"] - 1
    for m in dag["modules"]:
        m = dict(m, _last=last)
        computes = ("on inputs " + (short_list([ins[i] for i in m["input_support"]], "inputs") or "-")
                    + " → " + ("outputs " + short_list([outs[i] for i in m["drives"]], "outputs")
                               if m["drives"] else "no output"))
        feeds = ",".join(f"M{t}" for t in m["feeds"]) or "-"
        lines.append(f"  M{m['id']:<2} level {m['level']}  [{_units(m, ins, outs)}]  {computes};  "
                     f"feeds {feeds} (reuse {m['reuse']})")
    if dag["edges"]:
        lines.append("  connections: " + ", ".join(f"M{e['source']}→M{e['target']} ({e['n_edges']})"
                                                   for e in dag["edges"]))
    gt, s = d.get("ground_truth"), d.get("scores")
    if gt:
        lines.append(f"ground truth {gt['task']}: input groups {format_groups(gt['input_groups'], ins)}; "
                     f"output groups {format_groups(gt['output_groups'], outs)}")
    if s:
        for name, res in s["criteria"].items():
            ev = res["evidence"]
            extra = f" (found {format_groups(ev['found'], ins if name == 'input_separability' else outs)})" \
                if "found" in ev else ""
            lines.append(f"  {'✓' if res['success'] else '✗'} {name}{extra}")
        lines.append(f"  input NMI {_num(s['input']['nmi'])}, ARI {_num(s['input']['ari'])}; "
                     f"output NMI {_num(s['output']['nmi'])}, ARI {_num(s['output']['ari'])}")
        if s["success"] is not None:
            lines.append(f"  success ({' + '.join(s['success_criteria'])}): {'yes' if s['success'] else 'no'}")
    elif not gt:
        lines.append("no ground truth (none in the file's metadata and no --truth): structure only, no scores")
    return "\n".join(lines)


def _group_units(m: dict) -> str:
    """``conv1:12 add1:3 …``: units per group of a DAG module (at most MAX_LISTED groups named)."""
    parts = [f"{name}:{len(idx)}" for name, idx in m["units"].items()]
    if len(parts) > MAX_LISTED:
        return " ".join(parts[:MAX_LISTED - 1]) + f" … {parts[-1]} ({len(parts)} groups)"
    return " ".join(parts)


def _format_dag_analysis(d: dict) -> str:
    net, cond, p, dag = d["network"], d["condensed"], d["partition"], d["dag"]
    by_type = ", ".join(f"{t} {n}" for t, n in net.get("edges_by_type", {}).items() if n)
    lines = [f"{d['name']}  [{d['source_format']}]  {net.get('n_groups', '?')} groups, {net['n_units']} units, "
             f"{net['n_edges']} edges ({by_type or 'none'})  →  view {d['view']}, edge norm {d['edge_norm']}: "
             f"condensed {cond['n_units']} units in {len(cond['groups'])} groups, {cond['n_edges']} edges",
             f"method {p['method']} (seed {p['seed']}): {p['n_modules']} modules"
             + (", module DAG has cycles" if not dag["acyclic"] else "")]
    for m in dag["modules"]:
        computes = ("on inputs " + (short_list(m["input_support"], "inputs") or "-") + " → "
                    + ("outputs " + short_list(m["drives"], "outputs") if m["drives"] else "no output"))
        feeds = short_list([f"M{t}" for t in m["feeds"]], "modules") or "-"
        lines.append(f"  M{m['id']:<2} level {m['level']}  [{_group_units(m)}]  {computes};  "
                     f"feeds {feeds} (reuse {m['reuse']})")
    if dag["edges"]:
        conn = [f"M{e['source']}→M{e['target']} ({e['n_edges']})" for e in dag["edges"]]
        lines.append("  connections: " + (", ".join(conn) if len(conn) <= 3 * MAX_LISTED
                                          else ", ".join(conn[:3 * MAX_LISTED]) + f", … ({len(conn)} in all)"))
    s = d.get("scores")
    if s and s.get("success") is not None:
        lines.append(f"  success ({' + '.join(s['success_criteria'])}): {'yes' if s['success'] else 'no'}")
    elif not d.get("ground_truth"):
        lines.append("no ground truth (none in the file's metadata and no --truth): structure only, no scores")
    return "\n".join(lines)


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(rows: list[dict]) -> str:
    """Aligned text table of flat rows (the union of their keys as columns)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, width))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, width)) for row in cells]
    return "\n".join(out)


def format_truth_vs_found(d: dict) -> str:
    """The ground-truth sub-functions (by level) beside the recovered modules (by level)."""
    ins, outs = d["input_names"], d["output_names"]
    gt = d.get("ground_truth") or {}
    left = ["ground truth" + (f" {gt.get('task', '')}" if gt else ": none")]
    for sf in sorted(gt.get("sub_functions", []), key=lambda s: (s.get("level", 0), s.get("name", ""))):
        left.append(f"  L{sf.get('level', '?')} {sf['name']} = {sf.get('gate', '')}({','.join(sf.get('args', []))})"
                    f" → {','.join(outs[k] for k in sf.get('outputs', [])) or '-'}")
    right = [f"recovered ({d['partition']['method']})"]
    for m in sorted(d["dag"]["modules"], key=lambda m: (m["level"], m["id"])):
        if "view" in d:                                   # a DAG: units by group, ends already named
            units, support = _group_units(m), short_list(m["input_support"], "inputs")
        else:
            units = _units(dict(m, _last=d["dag"]["n_layers"] - 1), ins, outs)
            support = short_list([ins[i] for i in m["input_support"]], "inputs")
        right.append(f"  L{m['level']} M{m['id']} [{units}] on {support or '-'}"
                     f" → {','.join(f'M{t}' for t in m['feeds']) or '-'}")
    width = max(len(s) for s in left) + 4
    rows = max(len(left), len(right))
    left += [""] * (rows - len(left))
    right += [""] * (rows - len(right))
    return "\n".join(a.ljust(width) + b for a, b in zip(left, right))
