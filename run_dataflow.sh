#!/usr/bin/env bash
# Launches the pipeline on Google Cloud Dataflow from the Flex template in templates/.
set -euo pipefail
echo "error: the Dataflow launcher is not built yet; run the job locally with ./run_local.sh" >&2
exit 2
