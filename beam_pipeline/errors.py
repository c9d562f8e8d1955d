"""The errors the job raises on purpose, each with a message that says what to fix.

They live apart from the code that raises them so that the launcher (``launch/failures.py``) can recognise them,
also inside a worker's remote traceback, without importing the stages, and the runners without importing options.
"""


class OptionError(ValueError):
  """An option's value cannot work; the message names the option and says what to use instead."""


class PreflightError(RuntimeError):
  """Something the job needs is missing or unreachable; the message says what to fix and how."""
  exit_code = 1


class ServiceUnreachable(PreflightError):
  exit_code = 1


class BadSetting(PreflightError):
  """An option names a topic, keyspace or table that is not there or not usable, or credentials that fail."""
  exit_code = 2


class StageError(RuntimeError):
  """A stage cannot go on; raised on a worker, it fails the bundle (and the runner retries or fails the job)."""


class KafkaReadError(StageError):
  """The source cannot be read: no broker at the address, or no such topic."""


class DeadLetterPublishError(StageError):
  """The dead-letter topic is missing or did not acknowledge; the bundle fails rather than lose them."""


class CassandraWriteError(StageError):
  """A bundle's writes did not all succeed; the runner will retry the bundle."""


class ReconcileLeaseError(StageError):
  """Another reconcile holds the lease of a date."""


class ReconcileWindowError(StageError):
  """The window holds no message of a date that has counters."""


# The stage errors a launcher recognises by name in a worker's traceback.
STAGE_ERRORS = (KafkaReadError, DeadLetterPublishError, CassandraWriteError, ReconcileLeaseError,
                ReconcileWindowError)
