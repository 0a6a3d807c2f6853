"""Stand-in for ``graph_tool.all`` (benchmarks/device_stubs/README.md): importable, unusable."""


def __getattr__(name):
    raise ImportError(f"graph_tool.all.{name}: graph-tool is not installed here; benchmarks/device_stubs only "
                      "lets the trainers import modgraph (see its README.md)")
