"""Stand-in for ``graph_tool`` where it is not installed (benchmarks/device_stubs/README.md): importable, unusable."""


def __getattr__(name):
    raise ImportError(f"graph_tool.{name}: graph_tool is not installed here; benchmarks/device_stubs only lets the trainers "
                      "import modgraph (see its README.md)")
