package sitestats.flink;

import java.time.Duration;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.utils.ParameterTool;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The site_stats counters as a plain Java Flink job, the benchmark's native peer of the Python pipeline: the
 * topic from its earliest offset up to the offsets it has when the job starts, the data contract, per-key sums
 * per bundle, counter UPDATEs. The benchmark runs it on the session cluster ({@code python -m bench.harness --only
 * flink_java}); by hand it is submitted as any Flink jar is, e.g. with Flink's client and the cluster's jars:
 *
 * <pre>
 * mvn -q -f bench/flink_java/pom.xml package
 * FLINK_CONF_DIR=DIR_OF_A_FLINK_CONF_YAML_NAMING_REST_ADDRESS_AND_PORT java -cp ".local/jars/flink/*" \
 *     org.apache.flink.client.cli.CliFrontend run --detached .local/bench/flink_java/site-stats-flink-java.jar \
 *     --bootstrap_servers 127.0.0.1:9092 --topic site-events --consumer_group site-stats-java \
 *     --keyspace site_stats_java
 * </pre>
 *
 * <p>Options: {@code --bootstrap_servers}, {@code --topic}, {@code --consumer_group}, {@code --keyspace}
 * (required); {@code --cassandra_host} (127.0.0.1), {@code --cassandra_port} (9042), {@code
 * --cassandra_local_dc} (inferred), {@code --write_consistency} (LOCAL_QUORUM, the pipeline's default), {@code
 * --parallelism} (the cluster's default), {@code --job_name}, {@code --max_records_per_bundle} (100000), {@code
 * --max_bundle_seconds} (1, the Flink runner's bundle time), {@code --max_concurrent_writes} (64, as the
 * pipeline), {@code --checkpoint_interval_ms} (0: none; the group's offsets are committed only on checkpoints).
 *
 * <p>It counts at least once: after a failure, what was written since the last checkpoint is counted again.
 */
public final class SiteStatsJob {
  private SiteStatsJob() {}

  public static void main(String[] args) throws Exception {
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    env.execute(build(env, args));
  }

  /** Adds the job to {@code env}; returns its name. */
  public static String build(StreamExecutionEnvironment env, String[] args) {
    ParameterTool options = ParameterTool.fromArgs(args);
    int parallelism = options.getInt("parallelism", 0);
    if (parallelism > 0) {
      env.setParallelism(parallelism);
    }
    long checkpointIntervalMs = options.getLong("checkpoint_interval_ms", 0);
    if (checkpointIntervalMs > 0) {
      env.enableCheckpointing(checkpointIntervalMs);
    }
    // The chained stages hand each record on without a copy: none of them keeps or changes a record it was given.
    env.getConfig().enableObjectReuse();

    KafkaSource<byte[]> source =
        KafkaSource.<byte[]>builder()
            .setBootstrapServers(options.getRequired("bootstrap_servers"))
            .setTopics(options.getRequired("topic"))
            .setGroupId(options.getRequired("consumer_group"))
            .setStartingOffsets(OffsetsInitializer.earliest())
            // The offsets at start end the run: a backlog's run finishes.
            .setBounded(OffsetsInitializer.latest())
            .setDeserializer(new RecordValues())
            .build();
    CounterUpdates.Target target =
        new CounterUpdates.Target(
            options.get("cassandra_host", "127.0.0.1"),
            options.getInt("cassandra_port", 9042),
            options.get("cassandra_local_dc"),
            options.getRequired("keyspace"),
            options.get("write_consistency", "LOCAL_QUORUM"),
            Duration.ofSeconds(30));
    int maxRecordsPerBundle = positive(options, "max_records_per_bundle", 100_000);
    Duration maxBundleTime = Duration.ofMillis(Math.round(options.getDouble("max_bundle_seconds", 1.0) * 1000));
    if (maxBundleTime.toMillis() < 1) {
      throw new IllegalArgumentException("--max_bundle_seconds must be at least 0.001");
    }
    int maxConcurrentWrites = positive(options, "max_concurrent_writes", 64);

    env.fromSource(source, WatermarkStrategy.noWatermarks(), "KafkaSource")
        .flatMap(new ValidateEvents())
        .name("ValidateEvents")
        .transform(
            "CassandraCounterWrite",
            Types.VOID,
            new CassandraCounterWrite(target, maxRecordsPerBundle, maxBundleTime, maxConcurrentWrites));
    return options.get("job_name", "site-stats-flink-java");
  }

  private static int positive(ParameterTool options, String name, int otherwise) {
    int value = options.getInt(name, otherwise);
    if (value < 1) {
      throw new IllegalArgumentException("--" + name + " must be at least 1, got " + value);
    }
    return value;
  }

  /**
   * Each record's value as it is; a tombstone (no value) becomes an empty one, which the contract refuses as it
   * refuses a null value, so that the stream holds no nulls.
   */
  static final class RecordValues implements KafkaRecordDeserializationSchema<byte[]> {
    private static final long serialVersionUID = 1L;
    private static final byte[] NO_VALUE = new byte[0];

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<byte[]> values) {
      values.collect(record.value() == null ? NO_VALUE : record.value());
    }

    @Override
    public TypeInformation<byte[]> getProducedType() {
      return PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO;
    }
  }
}
