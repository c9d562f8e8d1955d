package sitestats.flink;

import java.time.Duration;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.ChainingStrategy;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Sums each subtask's increments per (date, site_id) over a bundle, then adds each sum to the counter table with
 * one UPDATE. A bundle ends after {@code maxRecordsPerBundle} increments or {@code maxBundleTime} after its first,
 * before each checkpoint's barrier and at the end of the input; the last two also wait until Cassandra has
 * acknowledged every UPDATE, so a checkpoint (and the end of a bounded run) means the counters are written.
 *
 * <p>An operator rather than a sink: a sink's writer sees no accumulators, which report the job's figures once it
 * has finished. It is chained to the source and the validation, so the job is one vertex, as the Python
 * pipeline's reading stage is on Flink.
 */
final class CassandraCounterWrite extends AbstractStreamOperator<Void>
    implements OneInputStreamOperator<SiteIncrement, Void>, BoundedOneInput {
  private static final long serialVersionUID = 1L;
  static final String CASSANDRA_WRITES = "cassandra_writes";

  private final CounterUpdates.Target target;
  private final int maxRecordsPerBundle;
  private final long maxBundleMillis;
  private final int maxInFlight;

  private transient CounterSums sums;
  private transient CounterUpdates updates;
  private transient ReportedCounter writes;
  private transient long bundle;

  CassandraCounterWrite(
      CounterUpdates.Target target, int maxRecordsPerBundle, Duration maxBundleTime, int maxInFlight) {
    this.target = target;
    this.maxRecordsPerBundle = maxRecordsPerBundle;
    this.maxBundleMillis = maxBundleTime.toMillis();
    this.maxInFlight = maxInFlight;
    setChainingStrategy(ChainingStrategy.ALWAYS);
  }

  @Override
  public void open() throws Exception {
    super.open();
    writes = ReportedCounter.register(getRuntimeContext(), getMetricGroup(), CASSANDRA_WRITES);
    sums = new CounterSums();
    updates = new CounterUpdates(target, maxInFlight);
  }

  @Override
  public void processElement(StreamRecord<SiteIncrement> element) throws Exception {
    if (sums.isEmpty()) {
      long thisBundle = bundle;
      long deadline = getProcessingTimeService().getCurrentProcessingTime() + maxBundleMillis;
      getProcessingTimeService()
          .registerTimer(
              deadline,
              now -> {
                if (bundle == thisBundle) {
                  writeBundle();
                }
              });
    }
    sums.add(element.getValue());
    if (sums.increments() >= maxRecordsPerBundle) {
      writeBundle();
    }
  }

  private void writeBundle() throws Exception {
    bundle++;
    for (CounterSums.CounterWrite write : sums.drain()) {
      updates.send(write);
    }
    // Counted here, on the task's thread: the acknowledgements arrive on the driver's.
    writes.inc(updates.takeAcknowledged());
  }

  private void writeBundleAndWait() throws Exception {
    writeBundle();
    updates.awaitAll();
    writes.inc(updates.takeAcknowledged());
  }

  @Override
  public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
    writeBundleAndWait();
  }

  @Override
  public void endInput() throws Exception {
    writeBundleAndWait();
  }

  @Override
  public void close() throws Exception {
    try {
      if (updates != null) {
        updates.close();
      }
    } finally {
      super.close();
    }
  }
}
