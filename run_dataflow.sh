#!/usr/bin/env bash
# Builds the Flex template image and spec, and launches the job on Google Cloud Dataflow.
#   ./run_dataflow.sh --help        every setting (flags or environment variables)
#   ./run_dataflow.sh --dry-run     print the commands and build the job graph locally; submit nothing
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv
if ! .venv/bin/python -c 'import apache_beam.runners.dataflow.internal.apiclient' 2>/dev/null; then
  echo "installing the dataflow extra (pip install -e '.[dataflow]')" >&2
  .venv/bin/python -m pip install -q -e '.[dataflow]' >&2
fi
exec .venv/bin/python -m beam_pipeline.launch.dataflow_template "$@"
