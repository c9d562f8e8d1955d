package sitestats.flink;

/** One valid event: what it adds to the counters of (date, site_id). A POJO, so Flink can type the stream. */
public class SiteIncrement {
  /** The event's date as days since 1970-01-01, the form Cassandra's {@code date} is built from. */
  public int epochDay;
  public int siteId;
  public long views;
  public long clicks;

  public SiteIncrement() {}

  public SiteIncrement(int epochDay, int siteId, long views, long clicks) {
    this.epochDay = epochDay;
    this.siteId = siteId;
    this.views = views;
    this.clicks = clicks;
  }

  @Override
  public String toString() {
    return java.time.LocalDate.ofEpochDay(epochDay) + "/" + siteId + ": views +" + views + ", clicks +" + clicks;
  }
}
