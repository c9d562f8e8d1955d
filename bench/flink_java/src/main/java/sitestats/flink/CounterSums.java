package sitestats.flink;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A bundle's increments summed per (date, site_id), so that each key gets one UPDATE per bundle. A sum that would
 * pass the 64-bit range of an increment is closed and a new one begun: the key is then written in parts.
 */
public final class CounterSums {
  /** One counter UPDATE: what to add to the views and clicks of (date, site_id). */
  public static final class CounterWrite {
    public final int epochDay;
    public final int siteId;
    public final long views;
    public final long clicks;

    CounterWrite(long key, long views, long clicks) {
      this.epochDay = (int) (key >> 32);
      this.siteId = (int) key;
      this.views = views;
      this.clicks = clicks;
    }
  }

  // (epochDay << 32 | siteId) -> {views, clicks}; site ids are never negative, so the key is unambiguous.
  private final Map<Long, long[]> sums = new HashMap<>();
  private final List<CounterWrite> closed = new ArrayList<>();
  private long increments;

  public void add(SiteIncrement increment) {
    long key = (long) increment.epochDay << 32 | increment.siteId;
    long[] sum = sums.get(key);
    if (sum == null) {
      sums.put(key, new long[] {increment.views, increment.clicks});
    } else if (sum[0] > SiteEventContract.MAX_COUNT - increment.views
        || sum[1] > SiteEventContract.MAX_COUNT - increment.clicks) {
      closed.add(new CounterWrite(key, sum[0], sum[1]));
      sum[0] = increment.views;
      sum[1] = increment.clicks;
    } else {
      sum[0] += increment.views;
      sum[1] += increment.clicks;
    }
    increments++;
  }

  /** How many increments were added since the last drain. */
  public long increments() {
    return increments;
  }

  public boolean isEmpty() {
    return increments == 0;
  }

  /** The writes that add up every increment since the last drain; starts a new bundle. */
  public List<CounterWrite> drain() {
    List<CounterWrite> writes = new ArrayList<>(closed.size() + sums.size());
    writes.addAll(closed);
    sums.forEach((key, sum) -> writes.add(new CounterWrite(key, sum[0], sum[1])));
    closed.clear();
    sums.clear();
    increments = 0;
    return writes;
  }
}
