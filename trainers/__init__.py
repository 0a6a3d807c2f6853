"""trainers: build, train, sculpt and export the networks modgraph analyses (PyTorch side).

Map of the package::

    task spec ──tasks──► truth table + ground truth
              ──model──► MaskedMLP (a stack of S masked MLPs trained together)
              ──sculpt─► unit search, edge search, (Pu, Pe) grid  (uses prune's pure mask functions)
              ──export─► network.h5 + network.onnx + config.json

- :mod:`trainers.tasks` — Boolean task specs (``data/tasks``), ``load_task``, ``list_tasks``.
- :mod:`trainers.model` — ``MaskedMLP``, ``train``, ``evaluate``.
- :mod:`trainers.prune` — ``unit_saliency``, ``unit_masks``, ``edge_masks``.
- :mod:`trainers.sculpt` — ``SculptConfig``, ``search``, ``sculpt_grid``.
- :mod:`trainers.export` — ``to_network``, ``export_run``.
- :mod:`trainers.cli` — the ``modgraph-train`` command.

Method: Patil, Michael, Dovrolis, *Neural Sculpting*, NeurIPS 2023, arXiv 2305.18402.
"""
