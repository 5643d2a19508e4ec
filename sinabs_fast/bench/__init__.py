"""The benchmark suite behind ``sinabs-fast bench``: sinabs_fast against sinabs and the other
spiking-network runtimes, on the CPU and on CUDA, with one result format.

Modules, one concern each:

* ``cases``: the shapes, layers, modes and dtypes a run is made of;
* ``peers``: one adapter per runtime (``peers.base`` defines what an adapter is), and the
  semantics gate every adapter passes before it is timed;
* ``timing``: medians and interquartile ranges (CPU: interleaved host timing; CUDA: events with
  the L2 flushed);
* ``bandwidth``: the copy bandwidth and the fewest bytes per neuron-step of each mode;
* ``memory``: bytes saved for backward and peak bytes per neuron-step;
* ``end_to_end``: the seed network's training step, eager, compiled and with synops counters;
* ``run``: one run, from the peers' checks to the result;
* ``results``: the result format (validation, saving, loading);
* ``report``: markdown tables and the plot; ``pages``: the generated parts of the docs;
* ``command``: the ``sinabs-fast bench`` command line (also ``python -m sinabs_fast.bench``).
"""
