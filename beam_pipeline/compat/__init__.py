"""The one door to other libraries' private names: one module per library, each checking at import that the
installed version is one it was written for, so an upgrade fails at once with one line instead of an
AttributeError somewhere later. Everything else in the package uses public APIs only."""

from importlib import metadata


class UnsupportedVersionError(ImportError):
  """The installed version of a library is not one whose private names this package was written against."""


def require_version(distribution: str, known: tuple) -> str:
  """The installed version of ``distribution``; UnsupportedVersionError unless it starts with one of ``known``
  (each a version prefix such as ``'2.77.'``)."""
  found = metadata.version(distribution)
  if not any(found == prefix or found.startswith(prefix) for prefix in known):
    raise UnsupportedVersionError(
        f'{distribution} {found} is installed, but beam_pipeline.compat was written for {", ".join(known)}: '
        f'install a known version (pip install -e .) or check beam_pipeline/compat/ against {found} and add it')
  return found
