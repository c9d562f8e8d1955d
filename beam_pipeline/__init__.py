"""Kafka -> Apache Beam -> Cassandra counters for web-traffic events."""
