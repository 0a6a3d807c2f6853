"""A short readable summary of an analysis, and the comparative table across files and methods."""
from __future__ import annotations

__all__ = ["format_analysis", "format_table", "format_groups", "format_truth_vs_found"]


def format_groups(groups, names) -> str:
    """``[[0, 1], [2]]`` with names x1.. → ``{x1,x2} {x3}``."""
    return " ".join("{" + ",".join(names[i] for i in g) + "}" for g in groups) or "-"


def _units(m, ins, outs) -> str:
    parts = []
    for layer, idx in m["units"].items():
        l = int(layer)
        if l == 0:
            parts.append("{" + ",".join(ins[i] for i in idx) + "}")
        elif int(layer) == m["_last"]:
            parts.append("{" + ",".join(outs[i] for i in idx) + "}")
        else:
            parts.append(f"h{l}:{len(idx)}")
    return " ".join(parts)


def format_analysis(d: dict) -> str:
    """The text printed by ``modgraph analyze`` for one analysis dict (``Analysis.to_dict()``)."""
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
        computes = ("on inputs " + (",".join(ins[i] for i in m["input_support"]) or "-")
                    + " → " + ("outputs " + ",".join(outs[i] for i in m["drives"]) if m["drives"] else "no output"))
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
        units = _units(dict(m, _last=d["dag"]["n_layers"] - 1), ins, outs)
        right.append(f"  L{m['level']} M{m['id']} [{units}] on {','.join(ins[i] for i in m['input_support']) or '-'}"
                     f" → {','.join(f'M{t}' for t in m['feeds']) or '-'}")
    width = max(len(s) for s in left) + 4
    rows = max(len(left), len(right))
    left += [""] * (rows - len(left))
    right += [""] * (rows - len(right))
    return "\n".join(a.ljust(width) + b for a, b in zip(left, right))
