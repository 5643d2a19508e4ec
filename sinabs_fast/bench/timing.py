"""Timing: median and interquartile range of repeated calls, measured so that all the
implementations of one case see the same machine.

* CPU (:class:`CpuTimer`): ``time.perf_counter`` around each call. The calls of one case (ours and
  every peer's) are interleaved round-robin in one process, so a slow phase of a shared machine
  (another job, a frequency change) hits all of them alike. In each round a call repeats about
  ``slice_s`` worth of times (at least once), so a 1 ms layer and a 400 ms one both get their
  repetitions within the same rounds; rounds go on until ``budget_s`` is spent and every call
  has ``min_reps`` (or all have ``max_reps``).
* CUDA (:class:`CudaTimer`): CUDA events around each call, after a write of ``flush_bytes`` that
  evicts the L2 cache and a device synchronisation (so the host-side cost of a call counts, as a
  user would see it); the calls of a case run one after the other.

Each call is a :class:`Call`: an untimed ``setup`` (state reset, gradients cleared) before
every timed ``run``. Warm-up calls (``warmup``, at least one) are not recorded; they include the
first call's one-off costs (allocation, compilation, autotuning).
"""

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch


@dataclass
class Call:
    """A timed ``run`` and the untimed ``setup`` run before each repetition."""

    run: Callable[[], object]
    setup: Optional[Callable[[], object]] = None

    def prepare(self) -> None:
        if self.setup is not None:
            self.setup()


def median_iqr(times_ms: Sequence[float]) -> Tuple[float, float]:
    """Median and interquartile range (Q3 - Q1; quartiles interpolated linearly between the
    sorted values, as numpy's default) of ``times_ms``."""
    if not times_ms:
        raise ValueError("times_ms is empty: nothing was timed")
    if len(times_ms) == 1:
        return float(times_ms[0]), 0.0
    q1, q2, q3 = statistics.quantiles(times_ms, n=4, method="inclusive")
    return float(q2), float(q3 - q1)


@dataclass
class Budget:
    """How long to time one case: at least ``min_reps`` of every call and about ``budget_s``
    seconds in all, at most ``max_reps`` of any call, ``warmup`` untimed calls first."""

    budget_s: float = 2.0
    min_reps: int = 5
    max_reps: int = 1000
    warmup: int = 2
    slice_s: float = 0.05

    @classmethod
    def quick(cls) -> "Budget":
        return cls(budget_s=0.6, min_reps=3, max_reps=200, warmup=1, slice_s=0.03)


def _timed(call: Call) -> float:
    call.prepare()
    start = time.perf_counter()
    result = call.run()  # kept past the clock: freeing an autograd graph is not the call's time
    elapsed = time.perf_counter() - start
    del result
    return elapsed * 1e3


OnError = Optional[Callable[[str, Exception], None]]


def warm_up(calls: Dict[str, Call], timed: Callable[[Call], float], warmup: int,
            on_error: OnError) -> Dict[str, float]:
    """Runs each call ``warmup`` times (at least once), untimed for the results; returns the
    fastest of those times per call, the estimate that sizes its repetitions. A call that
    raises is left out and passed to ``on_error(name, error)`` when given (else it raises)."""
    estimates = {}
    for name, call in calls.items():
        try:
            estimates[name] = min(timed(call) for _ in range(max(1, warmup)))
        except Exception as error:  # noqa: BLE001 (a failing peer is reported, not fatal)
            if on_error is None:
                raise
            on_error(name, error)
    return estimates


class CpuTimer:
    """Round-robin interleaved host timing (see the module's docstring)."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def measure(self, calls: Dict[str, Call], on_error: OnError = None) -> Dict[str, List[float]]:
        """Times every call of ``calls``, interleaved; returns the times (ms) of each (see
        :func:`warm_up` for ``on_error``)."""
        b = self.budget
        estimate = warm_up(calls, _timed, b.warmup, on_error)
        calls = {name: calls[name] for name in estimate}
        times: Dict[str, List[float]] = {name: [] for name in calls}
        if not calls:
            return times
        start = time.perf_counter()
        while True:
            for name, call in calls.items():
                repeat = max(1, int(b.slice_s * 1e3 / max(estimate[name], 1e-3)))
                repeat = min(repeat, b.max_reps - len(times[name]))
                times[name].extend(_timed(call) for _ in range(repeat))
            spent = time.perf_counter() - start
            fewest = min(len(t) for t in times.values())
            if fewest >= b.max_reps or (fewest >= b.min_reps and spent >= b.budget_s):
                return times


class CudaTimer:
    """CUDA-event timing with an L2 flush before each call (see the module's docstring)."""

    def __init__(self, budget: Budget, device: str = "cuda", flush_bytes: int = 256 << 20):
        self.budget = budget
        self.device = device
        self.flush = torch.empty(flush_bytes // 4, dtype=torch.float32, device=device)

    def _once(self, call: Call) -> Tuple[torch.cuda.Event, torch.cuda.Event]:
        call.prepare()
        self.flush.zero_()
        torch.cuda.synchronize(self.device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        result = call.run()
        end.record()
        del result
        return start, end

    def _timed(self, call: Call) -> float:
        start, end = self._once(call)
        end.synchronize()
        return start.elapsed_time(end)

    def measure(self, calls: Dict[str, Call], on_error: OnError = None) -> Dict[str, List[float]]:
        """Times each call of ``calls`` in turn; returns the times (ms) of each (see
        :func:`warm_up` for ``on_error``)."""
        b = self.budget
        estimates = warm_up(calls, self._timed, b.warmup, on_error)
        times: Dict[str, List[float]] = {}
        share = b.budget_s / max(1, len(estimates))
        for name, estimate in estimates.items():
            call = calls[name]
            reps = int(min(b.max_reps, max(b.min_reps, share * 1e3 / max(estimate, 1e-3))))
            events = []
            for _ in range(reps):
                events.append(self._once(call))
            torch.cuda.synchronize(self.device)
            times[name] = [s.elapsed_time(e) for s, e in events]
        return times


def make_timer(device: str, budget: Budget):
    """The timer for ``device`` ("cpu" or "cuda")."""
    return CudaTimer(budget) if device == "cuda" else CpuTimer(budget)
