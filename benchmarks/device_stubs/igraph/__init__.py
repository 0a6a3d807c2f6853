"""Stand-in for ``igraph`` where it is not installed (benchmarks/device_stubs/README.md): importable, unusable."""


def __getattr__(name):
    raise ImportError(f"igraph.{name}: igraph is not installed here; benchmarks/device_stubs only lets the trainers "
                      "import modgraph (see its README.md)")
