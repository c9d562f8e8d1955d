"""Flex template entry point: builds the job from the template's parameters and submits it without waiting."""

import sys

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.launch import failures
from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.launch.run import run

if __name__ == '__main__':
  verbose = failures.configure_logging(PipelineOptions(sys.argv[1:]).view_as(SiteStatsOptions))
  try:
    run(wait=False)
  except Exception as error:  # pylint: disable=broad-except
    sys.exit(failures.report(error, verbose)[1])
