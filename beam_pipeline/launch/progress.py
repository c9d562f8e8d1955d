"""A bounded run's progress, shown by its launcher: messages read of the total planned, the rate, the time left.

On a terminal it is a tqdm bar; otherwise (a scheduler's log) one log line every ``--progress_interval_s``. The
local runner feeds it after each bundle; on Flink or Dataflow the launcher polls the job's metrics.
"""

import contextlib
import logging
import sys
import threading
import time

from apache_beam.runners.runner import PipelineState

from beam_pipeline import metrics
from beam_pipeline.compat.beam import fresh_metrics

_LOGGER = logging.getLogger(__name__)


class ReadProgress:
  """Counts messages read against the total planned; thread-safe, so a runner's threads may report."""

  def __init__(self, total: int, interval_s: float, stream=None):
    self._total = total
    self._interval_s = interval_s
    self._stream = stream if stream is not None else sys.stderr
    self._read = 0
    self._started = self._logged_at = time.monotonic()
    self._lock = threading.Lock()
    self._bar = None
    self._closed = False
    self._logs_above_bar = contextlib.nullcontext()
    if self._stream.isatty():
      from tqdm import tqdm
      from tqdm.contrib.logging import logging_redirect_tqdm
      self._bar = tqdm(total=total, unit='msg', unit_scale=True, desc='read', file=self._stream,
                       mininterval=1.0, dynamic_ncols=True)
      # Log lines printed while the bar is drawn would break it: they are written above it instead.
      self._logs_above_bar = logging_redirect_tqdm(tqdm_class=tqdm)
    self._logs_above_bar.__enter__()  # pylint: disable=unnecessary-dunder-call

  @property
  def read(self) -> int:
    return self._read

  def add(self, count: int) -> None:
    with self._lock:
      self._read += count
      self._show()

  def set(self, read: int) -> None:
    """For a runner that reports the running total."""
    with self._lock:
      self._read = max(self._read, read)
      self._show()

  def _show(self) -> None:
    if self._closed:
      return
    if self._bar is not None:
      self._bar.update(self._read - self._bar.n)
      return
    now = time.monotonic()
    if now - self._logged_at >= self._interval_s:
      self._logged_at = now
      _LOGGER.info('%s', self.line(now - self._started))

  def line(self, elapsed_s: float) -> str:
    rate = self._read / elapsed_s if elapsed_s > 0 else 0.0
    share = f' ({self._read / self._total:.0%})' if self._total else ''
    left = max(self._total - self._read, 0)
    eta = f'about {left / rate:,.0f}s left' if rate > 0 else 'time left unknown'
    return f'progress: read {self._read:,} of {self._total:,}{share}, {rate:,.0f} msgs/s, {eta}'

  def close(self) -> None:
    with self._lock:
      if self._closed:
        return
      self._closed = True
      self._logs_above_bar.__exit__(None, None, None)
      if self._bar is not None:
        self._bar.close()
        self._bar = None


def messages_read_in(bundle_response) -> int:
  """The messages_read counter of one bundle's response (the local runner's)."""
  from apache_beam.metrics import monitoring_infos
  total = 0
  for info in bundle_response.process_bundle.monitoring_infos:
    if (monitoring_infos.is_user_monitoring_info(info) and monitoring_infos.is_counter(info) and
        monitoring_infos.parse_namespace_and_name(info) == (metrics.NAMESPACE, metrics.MESSAGES_READ)):
      total += monitoring_infos.extract_counter_value(info)
  return total


def follow(result, progress: ReadProgress, interval_s: float) -> None:
  """Until a remote job ends, feeds ``progress`` from its metrics (the values attempted so far). Progress is a
  courtesy: a runner that cannot answer now is asked again later, and never fails the run."""
  from apache_beam.metrics.metric import MetricsFilter
  wanted = MetricsFilter().with_namespace(metrics.NAMESPACE).with_name(metrics.MESSAGES_READ)
  while True:
    time.sleep(interval_s)
    try:
      if PipelineState.is_terminal(result.state):
        return
      counters = fresh_metrics(result).query(wanted)['counters']
    except Exception:  # pylint: disable=broad-except
      continue
    progress.set(sum(counter.attempted or 0 for counter in counters))
