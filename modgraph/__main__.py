"""``python -m modgraph``: the ``modgraph`` command, with Ctrl-C handled from its first line as in the
console script (:mod:`modgraph.console`)."""
import sys

from modgraph.console import modgraph

if __name__ == "__main__":           # not when a tool imports every module (pkgutil.walk_packages)
    sys.exit(modgraph())
