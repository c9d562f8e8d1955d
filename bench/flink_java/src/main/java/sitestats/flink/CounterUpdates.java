package sitestats.flink;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.config.ProgrammaticDriverConfigLoaderBuilder;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.LocalDate;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;

/**
 * The counter UPDATEs of one subtask, sent through one driver session from a prepared statement, at most
 * {@code maxInFlight} at a time. Counter UPDATEs are not idempotent, and the driver's defaults resend no
 * statement not marked idempotent once it may have been applied: such a write is a failure, which fails the job.
 */
final class CounterUpdates implements AutoCloseable {
  private static final Pattern CQL_IDENTIFIER = Pattern.compile("[A-Za-z][A-Za-z0-9_]{0,47}");

  private final CqlSession session;
  private final PreparedStatement update;
  private final int maxInFlight;
  private final Semaphore inFlight;
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final AtomicLong acknowledged = new AtomicLong();

  /** Where the counters are and how they are written; serializable, so the operator carries it to its tasks. */
  static final class Target implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final String host;
    final int port;
    final String localDatacenter; // null: inferred from the node it first reaches
    final String keyspace;
    final String consistency;
    final Duration requestTimeout;

    Target(String host, int port, String localDatacenter, String keyspace, String consistency,
        Duration requestTimeout) {
      if (!CQL_IDENTIFIER.matcher(keyspace).matches()) {
        throw new IllegalArgumentException(
            "keyspace " + keyspace + " is not a CQL identifier: a letter, then up to 47 letters, digits or _");
      }
      this.host = host;
      this.port = port;
      this.localDatacenter = localDatacenter;
      this.keyspace = keyspace.toLowerCase(java.util.Locale.ROOT);
      this.consistency = consistency;
      this.requestTimeout = requestTimeout;
    }

    String incrementCql() {
      return "UPDATE " + keyspace + ".site_stats SET views = views + ?, clicks = clicks + ? "
          + "WHERE date = ? AND site_id = ?";
    }
  }

  CounterUpdates(Target target, int maxInFlight) {
    ProgrammaticDriverConfigLoaderBuilder config =
        // The driver reads its reference.conf through this class loader: inside Flink the thread's context
        // class loader need not be the job's.
        DriverConfigLoader.programmaticBuilder(CounterUpdates.class.getClassLoader())
            .withString(DefaultDriverOption.REQUEST_CONSISTENCY, target.consistency)
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, target.requestTimeout)
            // One connection to one node needs one I/O thread; the default is two per core per session.
            .withInt(DefaultDriverOption.NETTY_IO_SIZE, 1);
    if (target.localDatacenter == null) {
      config.withString(DefaultDriverOption.LOAD_BALANCING_POLICY_CLASS, "DcInferringLoadBalancingPolicy");
    }
    CqlSessionBuilder builder =
        CqlSession.builder()
            .addContactPoint(new InetSocketAddress(target.host, target.port))
            .withConfigLoader(config.build())
            .withClassLoader(CounterUpdates.class.getClassLoader());
    if (target.localDatacenter != null) {
      builder.withLocalDatacenter(target.localDatacenter);
    }
    this.session = builder.build();
    this.update = session.prepare(target.incrementCql());
    this.maxInFlight = maxInFlight;
    this.inFlight = new Semaphore(maxInFlight);
  }

  /** Sends one UPDATE, waiting while {@code maxInFlight} are unanswered; throws an earlier write's failure. */
  void send(CounterSums.CounterWrite write) throws Exception {
    throwIfFailed();
    inFlight.acquire();
    session
        .executeAsync(
            update.bind(write.views, write.clicks, LocalDate.ofEpochDay(write.epochDay), write.siteId))
        .whenComplete(
            (result, error) -> {
              if (error == null) {
                acknowledged.incrementAndGet();
              } else {
                failure.compareAndSet(null, error);
              }
              inFlight.release();
            });
  }

  /** Waits until every UPDATE sent is answered; throws if any failed. */
  void awaitAll() throws Exception {
    inFlight.acquire(maxInFlight);
    inFlight.release(maxInFlight);
    throwIfFailed();
  }

  /** How many UPDATEs Cassandra acknowledged since the last call. */
  long takeAcknowledged() {
    return acknowledged.getAndSet(0);
  }

  private void throwIfFailed() throws Exception {
    Throwable error = failure.get();
    if (error != null) {
      throw new Exception("a counter UPDATE failed; it may have been applied, so it is not resent", error);
    }
  }

  @Override
  public void close() {
    session.close();
  }
}
