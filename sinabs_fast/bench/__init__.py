"""The benchmark suite behind ``sinabs-fast bench``: sinabs_fast against sinabs and the other
spiking-network runtimes, on the CPU and on CUDA, with one result format.

Modules, one concern each:

* ``cases``: the shapes, layers, modes and dtypes a run is made of;
* ``peers``: one adapter per runtime (``peers.base`` defines what an adapter is), and the
  semantics gate every adapter passes before it is timed.
"""
