"""Apache Beam's private names that the job relies on, each with the reason no public API does the job.

Checked against the Beam version that setup.py pins; tests/test_compat.py fails when Beam changes any of them.
"""

from apache_beam.options import pipeline_options

from beam_pipeline.compat import require_version

BEAM_VERSION = require_version('apache-beam', ('2.77.',))


def declared_option_strings() -> set:
  """Every flag spelling that Beam's own parser accepts, built as Beam builds it (every direct PipelineOptions
  subclass, once): Beam has no public list of its flags, and drops unknown ones with only a warning."""
  parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)  # pylint: disable=protected-access
  for cls in {str(cls): cls for cls in pipeline_options.PipelineOptions.__subclasses__()}.values():
    cls._add_argparse_args(parser)  # pylint: disable=protected-access
  return {spelling for action in parser._actions for spelling in action.option_strings}  # pylint: disable=protected-access


def add_declared_arguments(options_class, parser) -> None:
  """Declares ``options_class``'s flags on an argparse parser, for a ``--help`` that lists only the job's own."""
  options_class._add_argparse_args(parser)  # pylint: disable=protected-access


def fresh_metrics(result):
  """The job's metrics as of now: Beam's portable result (Flink) caches its first answer in ``_metrics`` and
  has no public way to ask again, so the cache is dropped first."""
  if hasattr(result, '_metrics'):
    result._metrics = None  # pylint: disable=protected-access
  return result.metrics()
