"""What the tests and the benchmark share, on the real local services: starting them, fresh topics and keyspaces,
known datasets, running the job, and reading back what it did.

    services.py  the local Kafka + Cassandra pairs and Flink, started when needed; what a run left running
    datasets.py  fresh topics and keyspaces, and a known dataset produced into a topic
    jobs.py      the job's arguments; bounded runs in this process, streaming runs as a child process
    topics.py    what a topic holds and what a consumer group has committed on it (or is made to have)
    outages.py   the fault cases' service outages: their length, a session that must come back
    counters.py  the counters a dataset should give, the ones Cassandra holds, the ones Flink shows

Not used by the pipeline itself (a contract in .importlinter says so).
"""
