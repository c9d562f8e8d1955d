"""Which command-line flags the job knows: Beam drops unknown ones with only a warning, so the launchers refuse
them first."""

from beam_pipeline.compat.beam import declared_option_strings


def unknown_options(argv) -> list:
  """Flags that no registered PipelineOptions class declares, as Beam reads them (Beam drops these with only a
  warning). Flags are compared as spelled: ``--experiment`` and ``--no_use_public_ips`` are known though the
  options they set are named differently."""
  spellings = declared_option_strings()
  flags = (arg.split('=', 1)[0] for arg in argv if arg.startswith('--'))
  return [flag for flag in flags if flag not in spellings]
