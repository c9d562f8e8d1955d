"""The graph, wired in one place. Each stage's file is named after it:

    ReadFromKafka -> ParseJson -> Validate [-> KeepDates] -> CassandraCounterWrite | ReconcileCounters
         |               \\            \\
         |                +------------+--> WriteDeadLetters (Kafka, files), one branch per stage
         +-- planned reads --> CommitOffsets (bounded catch-up only; side inputs: every writing stage)

    ReadFromKafka          io/kafka/read.py          CassandraCounterWrite  io/cassandra/counter_write.py
    ParseJson              transforms/parse.py       ReconcileCounters      io/cassandra/reconcile.py
    Validate               transforms/validate.py    WriteDeadLetters       io/dead_letters.py
    KeepDates              transforms/dates.py       CommitOffsets          io/kafka/commit.py

How a run is checked, started, followed and summarised is ``launch/run.py``.
"""

import os
import socket
import uuid
from typing import Optional

import apache_beam as beam

from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite
from beam_pipeline.io.cassandra.reconcile import ReconcileCounters
from beam_pipeline.io.dead_letters import WriteDeadLetters
from beam_pipeline.io.kafka.commit import CommitPlannedOffsets
from beam_pipeline.io.kafka.placement import ReaderPlacement
from beam_pipeline.io.kafka.read import ReadFromKafka
from beam_pipeline.options import configs
from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.transforms.dates import KeepDates
from beam_pipeline.transforms.parse import ParseJson
from beam_pipeline.transforms.validate import Validate


def build_graph(pipeline: beam.Pipeline, site: SiteStatsOptions, group_member: Optional[str] = None,
                reader_placement: Optional[ReaderPlacement] = None) -> None:
  """``group_member``: the address of the copy's member of the consumer group (a local streaming run);
  ``reader_placement``: how the runner places the reads on its parallel readers, when it does so by a hash."""
  read_config = configs.read_config(site, group_member, reader_placement)
  connection = configs.cassandra_connection(site)
  read = pipeline | 'ReadFromKafka' >> ReadFromKafka(read_config)
  parsed = read.records | 'ParseJson' >> ParseJson()
  valid = parsed.parsed | 'Validate' >> Validate()
  increments, dates = valid.valid, configs.requested_dates(site)
  if dates:
    increments = increments | 'KeepDates' >> KeepDates(dates)
  dead_letters = {'ParseJson': parsed.dead_letters, 'Validate': valid.dead_letters}
  durable = []  # the outputs of the stages that must be durable before a catch-up commits its offsets
  if site.sink_mode == 'reconcile':
    _ = increments | 'ReconcileCounters' >> ReconcileCounters(
        connection, site.keyspace, site.table, dates, site.report_only, _lease_owner(), site.lease_ttl_s,
        allow_emptying=site.force_window)
  else:
    written = increments | 'CassandraCounterWrite' >> CassandraCounterWrite(
        connection, site.keyspace, site.table, site.max_concurrent_writes, site.statements_per_batch,
        counted_once=configs.counts_once(site), claims_whole_batches=not dates)
    durable.append(written)
  topic, directory = configs.dead_letter_outputs(site)
  if topic or directory:
    published = dead_letters | 'WriteDeadLetters' >> WriteDeadLetters(
        site.bootstrap_servers, topic, directory, configs.kafka_security(site), site.kafka_client)
    durable += published.values()
  if read_config.commits_at_end:
    _ = pipeline | 'CommitOffsets' >> CommitPlannedOffsets(read_config, read.planned, durable)


def _lease_owner() -> str:
  return f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}'
