"""Timing: median and interquartile range of repeated calls, measured so that all the
implementations of one case see the same machine.

* CPU (:class:`CpuTimer`): ``time.perf_counter`` around each call. The calls of one case (ours and
  every peer's) are interleaved round-robin in one process, so a slow phase of a shared machine
  (another job, a frequency change) hits all of them alike. In each round a call repeats about
  ``slice_s`` worth of times (at least once), so a 1 ms layer and a 400 ms one both get their
  repetitions within the same rounds; rounds go on until ``budget_s`` is spent and every call
  has ``min_reps`` (or all have ``max_reps``). The budget bounds the slow calls too: one that
  takes longer than ``budget_s`` runs only as often as fits (but at least twice, its single
  warm-up counted as the first), so sinabs' 0.4-1 s calls do not set the length of a run.
* CUDA (:class:`CudaTimer`): CUDA events around each call, after a write of ``flush_bytes`` that
  evicts the L2 cache and a device synchronisation (so the host-side cost of a call counts, as a
  user would see it); the calls of a case run one after the other.

Each call is a :class:`Call`: an untimed ``setup`` (state reset, gradients cleared) before
every timed ``run``. Warm-up calls (``warmup``, at least one) are not recorded; they include the
first call's one-off costs (allocation, compilation, autotuning).
"""

import math
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
            on_error: OnError, slow_ms: float = float("inf")) -> Dict[str, List[float]]:
    """Runs each call ``warmup`` times (at least once; only once when that first call takes
    ``slow_ms`` or more); returns the times per call. A call that raises is left out and passed
    to ``on_error(name, error)`` when given (else it raises)."""
    warm = {}
    for name, call in calls.items():
        try:
            times = [timed(call)]
            while len(times) < warmup and times[0] < slow_ms:
                times.append(timed(call))
            warm[name] = times
        except Exception as error:  # noqa: BLE001 (a failing peer is reported, not fatal)
            if on_error is None:
                raise
            on_error(name, error)
    return warm


def repetitions(estimate_ms: float, budget: Budget) -> int:
    """How many timed repetitions a call of about ``estimate_ms`` needs: ``min_reps``, or as
    many as fit in the budget when fewer do, but at least 2 (an interquartile range)."""
    fit = math.ceil(budget.budget_s * 1e3 / max(estimate_ms, 1e-3))
    return max(2, min(budget.min_reps, fit))


class CpuTimer:
    """Round-robin interleaved host timing (see the module's docstring)."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def measure(self, calls: Dict[str, Call], on_error: OnError = None) -> Dict[str, List[float]]:
        """Times every call of ``calls``, interleaved; returns the times (ms) of each (see
        :func:`warm_up` for ``on_error``)."""
        b = self.budget
        slow_ms = b.budget_s * 1e3
        warm = warm_up(calls, _timed, b.warmup, on_error, slow_ms)
        estimate = {name: min(t) for name, t in warm.items()}
        need = {name: repetitions(ms, b) for name, ms in estimate.items()}
        # A call slower than the whole budget keeps its one warm-up as a repetition: its one-off
        # costs are small next to it, and a second untimed run would double its cost.
        times = {name: (t if estimate[name] >= slow_ms else []) for name, t in warm.items()}

        def done(name: str, spent: float) -> bool:
            count = len(times[name])
            if count >= b.max_reps:
                return True
            return count >= need[name] and (spent >= b.budget_s or estimate[name] >= slow_ms)

        start = time.perf_counter()
        while True:
            active = [name for name in times if not done(name, time.perf_counter() - start)]
            if not active:
                return times
            for name in active:
                repeat = max(1, int(b.slice_s * 1e3 / max(estimate[name], 1e-3)))
                if estimate[name] >= slow_ms:  # only what it needs
                    repeat = need[name] - len(times[name])
                repeat = min(repeat, b.max_reps - len(times[name]))
                times[name].extend(_timed(calls[name]) for _ in range(repeat))


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
        warm = warm_up(calls, self._timed, b.warmup, on_error)
        times: Dict[str, List[float]] = {}
        share = b.budget_s / max(1, len(warm))
        for name, warm_times in warm.items():
            call, estimate = calls[name], min(warm_times)
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
