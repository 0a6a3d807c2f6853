"""The ``modgraph-train`` console script: Ctrl-C while torch is imported is one line and exit code 130
(:func:`modgraph.console.run`)."""
from modgraph.console import run


def main() -> int:
    """The ``modgraph-train`` command."""
    return run("modgraph-train", "trainers.cli:main")
