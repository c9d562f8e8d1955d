"""Yes/no options, declared one way everywhere: ``--flag`` alone, or ``--flag=true|false`` as Flex templates pass
parameters. Shared by the job's options, the Flink runner's and the Cassandra security options."""

import argparse
from typing import Optional


def parse_bool(value: str) -> bool:
  """An option's true/false value, as command lines and Flex template parameters spell it."""
  if value.lower() in ('true', '1', 'yes'):
    return True
  if value.lower() in ('false', '0', 'no'):
    return False
  raise argparse.ArgumentTypeError(f'expected true or false, got {value!r}')


def add_switch(group, flag: str, default: Optional[bool], help: str) -> None:  # pylint: disable=redefined-builtin
  group.add_argument(flag, nargs='?', const=True, default=default, type=parse_bool, help=help)
