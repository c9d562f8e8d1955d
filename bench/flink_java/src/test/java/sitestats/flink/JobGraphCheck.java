package sitestats.flink;

import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Builds the job's graph offline, with the session cluster's Flink jars, and checks that the whole job is one
 * vertex (source, validation and write chained), the vertex the benchmark times its reading phase by. Nothing
 * connects to Kafka or Cassandra. Run in Java's source-file mode:
 *
 *     java -cp ".local/bench/flink_java/site-stats-flink-java.jar:.local/jars/flink/*" \
 *         bench/flink_java/src/test/java/sitestats/flink/JobGraphCheck.java
 */
public final class JobGraphCheck {
  public static void main(String[] args) {
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
    String name = SiteStatsJob.build(env, new String[] {
        "--bootstrap_servers", "127.0.0.1:9092", "--topic", "site-events", "--consumer_group", "check",
        "--keyspace", "site_stats_check", "--parallelism", "3", "--job_name", "graph-check"});
    JobGraph graph = env.getStreamGraph().getJobGraph();
    for (JobVertex vertex : graph.getVertices()) {
      System.out.println("vertex: " + vertex.getName() + " (parallelism " + vertex.getParallelism() + ")");
    }
    JobVertex only = graph.getVerticesAsArray()[0];
    if (graph.getNumberOfVertices() != 1 || !only.getName().contains("CassandraCounterWrite")
        || only.getParallelism() != 3 || !name.equals("graph-check")) {
      System.err.println("JobGraphCheck failed: expected one vertex of parallelism 3 holding CassandraCounterWrite");
      System.exit(1);
    }
    System.out.println("JobGraphCheck: one chained vertex, as the benchmark's reading phase expects");
  }
}
