"""trainers: build, train, sculpt and export the networks modgraph analyses (PyTorch side).

Map of the package::

    task spec ──modgraph.tasks──► truth table + ground truth
              ──model──► MaskedMLP (a stack of S masked MLPs trained together)
              ──sculpt─► unit search, edge search, (Pu, Pe) grid  (uses prune's pure mask functions)
              ──export─► network.h5 + network.onnx + config.json

- :mod:`trainers.tasks` — the shipped Boolean tasks (``data/tasks``), ``load_task``, ``list_tasks``; the
  spec language and ground truth are :mod:`modgraph.tasks` (graph side).
- :mod:`trainers.model` — ``MaskedMLP``; :mod:`trainers.train` — ``train``, ``evaluate``.
- :mod:`trainers.prune` — ``unit_saliency``, ``unit_masks``, ``edge_masks``.
- :mod:`trainers.sculpt` — ``SculptConfig``, ``search``, ``sculpt_from_dense`` (the search both the Boolean
  and the MNIST pipelines run), ``sculpt_grid``.
- :mod:`trainers.export` — ``to_network``, ``export_run``.
- :mod:`trainers.config` — ``task_train_config``: a run's lr / batch / epochs: the authors' own for a
  published run (``data/neural-sculpting-runs.csv``), else the task's per depth (and width).
- :mod:`trainers.cli` — the ``modgraph-train`` command (a registry of subcommands); :mod:`trainers.cli_args`
  what the subcommands share (``UsageError``, option checks).
- Also: :mod:`trainers.demo` (``make demo``), :mod:`trainers.study` (many sculpted cells),
  :mod:`trainers.tasks.mnist` and :mod:`trainers.clusterability` (MNIST tasks and the
  clusterability papers' MLP), :mod:`trainers.cnn` and :mod:`trainers.cnn_train` (their small
  CNN and 13-conv VGG: masked models, MNIST training + pruning, random-init networks, ONNX export;
  :mod:`trainers.cnn_dag` the same networks as a ``DagNetwork`` for modgraph HDF5; the
  ``mnist-cnn`` and ``random-cnn`` subcommands in :mod:`trainers.cnn_cli`; :mod:`trainers.device` where
  they train: ``cpu``, ``cuda`` or ``auto``, CUDA's deterministic settings).

Method: Patil, Michael, Dovrolis, *Neural Sculpting*, NeurIPS 2023, arXiv 2305.18402.
"""
