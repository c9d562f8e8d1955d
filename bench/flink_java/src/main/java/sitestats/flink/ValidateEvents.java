package sitestats.flink;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.util.Collector;

/**
 * Message values in, one SiteIncrement per valid message out. Invalid messages are counted
 * ({@code messages_invalid}) and dropped: this job writes no dead letters.
 */
final class ValidateEvents extends RichFlatMapFunction<byte[], SiteIncrement> {
  private static final long serialVersionUID = 1L;
  static final String MESSAGES_READ = "messages_read";
  static final String MESSAGES_INVALID = "messages_invalid";

  private transient SiteEventContract contract;
  private transient ReportedCounter read;
  private transient ReportedCounter invalid;

  @Override
  public void open(OpenContext openContext) {
    contract = new SiteEventContract();
    read = ReportedCounter.register(getRuntimeContext(), getRuntimeContext().getMetricGroup(), MESSAGES_READ);
    invalid =
        ReportedCounter.register(getRuntimeContext(), getRuntimeContext().getMetricGroup(), MESSAGES_INVALID);
  }

  @Override
  public void flatMap(byte[] value, Collector<SiteIncrement> valid) {
    read.inc();
    SiteIncrement increment = contract.read(value);
    if (increment == null) {
      invalid.inc();
    } else {
      valid.collect(increment);
    }
  }
}
