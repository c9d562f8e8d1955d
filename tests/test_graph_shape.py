"""A streaming read commits its offsets when the runner finalizes its bundle, which waits for the stages fused with
the read: between the read and every stage that must be durable first (the counter write, the dead letters) lies
no shuffle, so runners fuse them (io/kafka/read.py). A shuffle added between them would let offsets be committed
before their messages are counted; this fails first."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns

from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.pipeline import build_graph

_SHUFFLES = {common_urns.primitives.GROUP_BY_KEY.urn, common_urns.composites.RESHUFFLE.urn}


def _leaves_reached_without_a_shuffle(components, source_pcollection: str) -> set:
  """The unique names of the leaf transforms that consume, directly or through other leaves, ``source_pcollection``
  with no shuffle on the way."""
  transforms = components.transforms
  leaves = {tid: t for tid, t in transforms.items() if not t.subtransforms}
  consumers = {}
  for tid, transform in leaves.items():
    for pcollection in transform.inputs.values():
      consumers.setdefault(pcollection, []).append(tid)
  shuffling = {tid for tid, t in transforms.items() if t.spec.urn in _SHUFFLES}
  inside_shuffle = {leaf for parent in shuffling for leaf in _leaves_under(transforms, parent)}
  reached, frontier = set(), [source_pcollection]
  while frontier:
    for tid in consumers.get(frontier.pop(), ()):
      if tid in reached or tid in inside_shuffle:
        continue
      reached.add(tid)
      frontier.extend(leaves[tid].outputs.values())
  return {transforms[tid].unique_name for tid in reached}


def _leaves_under(transforms, tid):
  children = transforms[tid].subtransforms
  if not children:
    return {tid}
  return set().union(*(_leaves_under(transforms, child) for child in children))


@pytest.mark.parametrize('dates', [[], ['--dates', '2017-02-04']], ids=['every_date', 'keep_dates'])
def test_every_stage_the_streaming_commit_waits_for_is_fused_with_the_read(dates):
  options = PipelineOptions(['--topic', 'site-events', '--keyspace', 'stats', '--consumer_group', 'site-stats',
                             '--dead_letter_path', '/tmp/dead-letters', *dates])
  pipeline = beam.Pipeline(options=options)
  build_graph(pipeline, options.view_as(SiteStatsOptions))
  components = pipeline.to_runner_api().components
  read = next(t for t in components.transforms.values() if t.unique_name == 'ReadFromKafka/ReadPartitions')
  reached = _leaves_reached_without_a_shuffle(components, *read.outputs.values())
  must_be_durable = ['ParseJson/', 'Validate/', 'CassandraCounterWrite/', 'WriteDeadLetters/']
  for stage in must_be_durable:
    assert any(name.startswith(stage) for name in reached), f'{stage} is not fused with the read'
  every_stage = {t.unique_name.split('/')[0] for t in components.transforms.values() if '/' in t.unique_name}
  assert {stage.rstrip('/') for stage in must_be_durable} <= every_stage
