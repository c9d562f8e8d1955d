"""Apache Beam without its Google Cloud client libraries, in a process that has them installed.

``import apache_beam`` imports the Google Cloud clients of the ``gcp`` extra whenever they are installed (the
Dataflow client for the runner, Cloud Storage for ``gs://`` paths, BigQuery, Pub/Sub, google-auth), about a third
of its import time, whether or not the job uses them; Beam has no option to leave them out. Each of those imports
is optional in Beam (``try: import ... except ImportError``), so that Beam works without the extra: a finder that
refuses these modules, installed before Beam is first imported, gives the process exactly what an install without
the extra gives. It lives apart from ``beam_pipeline.compat.beam`` because it must be importable without importing
Beam. tests/test_compat.py fails when Beam changes what these imports do.
"""

import importlib.abc
import sys

from beam_pipeline.compat import require_version

BEAM_VERSION = require_version('apache-beam', ('2.77.',))

# The client libraries of Beam's gcp extra that Beam imports optionally. apitools stays visible: Beam's bundled
# BigQuery client needs it at import and logs a warning on every import without it.
GOOGLE_CLOUD_PACKAGES = ('google.cloud', 'google.api_core', 'google.auth', 'google.oauth2', 'google_auth_httplib2',
                         'googleapiclient')


class GoogleCloudRefusingFinder(importlib.abc.MetaPathFinder):
  """Answers an import of any module of GOOGLE_CLOUD_PACKAGES as if it were not installed."""

  def find_spec(self, fullname, path=None, target=None):
    if any(fullname == package or fullname.startswith(package + '.') for package in GOOGLE_CLOUD_PACKAGES):
      raise ModuleNotFoundError(f'No module named {fullname!r} (Google Cloud libraries are left out of this '
                                'process: its job neither runs on Dataflow nor uses gs://)', name=fullname)
    return None


def google_cloud_hidden() -> bool:
  return any(isinstance(finder, GoogleCloudRefusingFinder) for finder in sys.meta_path)


def hide_google_cloud_libraries() -> bool:
  """Makes the Google Cloud client libraries unimportable in this process, so that Beam, imported next, goes
  without them. Does nothing once Beam is imported (its modules have already taken the libraries, and a module
  that imports one later would fail); returns whether they are hidden."""
  if not google_cloud_hidden() and 'apache_beam' not in sys.modules:
    sys.meta_path.insert(0, GoogleCloudRefusingFinder())
  return google_cloud_hidden()
