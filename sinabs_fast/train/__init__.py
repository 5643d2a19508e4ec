"""``sinabs-fast train``: trains a spiking network twice, a baseline and then with a synops
penalty, and reports accuracy and synaptic operations of both (see :mod:`sinabs_fast.train.job`).

Modules: ``models`` (the network registry), ``data`` (datasets), ``synops`` (per-layer counting
and the penalty), ``loop`` (one epoch), ``checkpoint`` (model.pt, resume), ``distributed``
(torchrun / DDP), ``report`` (tables, report.json, curves.png), ``job`` (the two runs).
"""
