"""Kafka -> Apache Beam -> Cassandra site counters. The graph is in pipeline.py; its docstring maps each stage
to its file."""

from pathlib import Path

# The repository this package is developed in: services/ holds the poms, .local/ receives jars, data and logs.
REPO_ROOT = Path(__file__).resolve().parents[1]
