"""Local Kafka and Cassandra for development and tests, run as JVM processes on loopback."""
