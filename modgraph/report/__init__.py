"""Reports: a readable text summary and pictures (PNG/SVG) of an analysis."""
from modgraph.report.draw import draw_module_dag, draw_network
from modgraph.report.text import format_analysis, format_table

__all__ = ["draw_network", "draw_module_dag", "format_analysis", "format_table"]
