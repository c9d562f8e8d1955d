"""Local TCP ports: taken from the environment, found free, probed."""

import os
import socket


def port_from_environment(variable: str, default: int) -> int:
  """The TCP port in environment variable ``variable``, else ``default``."""
  value = os.environ.get(variable, str(default))
  if not value.isdigit() or not 0 < int(value) < 65536:
    raise ValueError(f'{variable}={value!r} is not a TCP port (1-65535)')
  return int(value)



def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]



def port_open(port: int) -> bool:
  try:
    with socket.create_connection(('127.0.0.1', port), timeout=1):
      return True
  except OSError:
    return False
