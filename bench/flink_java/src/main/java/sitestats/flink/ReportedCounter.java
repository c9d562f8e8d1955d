package sitestats.flink;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;

/**
 * A counter seen two ways: as a Flink metric while the job runs (the REST API, the Prometheus reporter) and as a
 * job accumulator once it has finished ({@code /jobs/<id>/accumulators}, summed over the subtasks). Metrics
 * vanish with the tasks that report them, so the benchmark reads a finished job's figures from its accumulators.
 */
final class ReportedCounter implements Counter {
  private final LongCounter total = new LongCounter();

  static ReportedCounter register(RuntimeContext context, MetricGroup metrics, String name) {
    ReportedCounter counter = new ReportedCounter();
    context.addAccumulator(name, counter.total);
    metrics.counter(name, counter);
    return counter;
  }

  @Override
  public void inc() {
    total.add(1L);
  }

  @Override
  public void inc(long n) {
    total.add(n);
  }

  @Override
  public void dec() {
    total.add(-1L);
  }

  @Override
  public void dec(long n) {
    total.add(-n);
  }

  @Override
  public long getCount() {
    return total.getLocalValuePrimitive();
  }
}
