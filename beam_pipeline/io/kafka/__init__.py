"""The Kafka source in pure Python (kafka-python, or librdkafka's Python binding), so the same graph runs without
a JVM on every runner.

    config.py    KafkaReadConfig: what to read, and the consumers it makes
    consumer_settings.py  --kafka_consumer_config: kafka-python settings passed through, checked and typed
    metadata.py  topics and partitions as the brokers report them
    planning.py  one PartitionRead per partition, with offsets resolved at job start
    placement.py  the reads spread evenly over the runner's parallel readers
    restriction.py  a partition's offset range; the positions reached in a pattern's new topics
    growth.py    partitions and (with a pattern) topics created while a streaming job runs
    read.py      ReadFromKafka, the splittable DoFn that reads the partitions
    fetch.py     what the reader asks of a client; fetch_kafka_python.py and fetch_librdkafka.py answer it
    commit.py    CommitPlannedOffsets, a bounded catch-up's commit after every write is durable
    admin.py     topic creation and deletion (the dead-letter topic, the tools)
""" 
