"""Flex template entry point: builds the job from the template's parameters and submits it without waiting."""

import logging

from beam_pipeline.pipeline import run

if __name__ == '__main__':
  logging.getLogger().setLevel(logging.INFO)
  run(wait=False)
