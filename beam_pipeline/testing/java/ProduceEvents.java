/*
 * Sends records to Kafka with Kafka's own Java producer, so that tests read batches exactly as Java clients write
 * them, compressed with any codec Kafka has.
 *
 *   java -cp '<kafka jars dir>/*' ProduceEvents.java --bootstrap-servers HOST:PORT --topic TOPIC \
 *       [--compression none|gzip|snappy|lz4|zstd] [--keys]
 *
 * Reads one record per line on stdin: the value's bytes as they are (any byte but a newline). With --keys, a line
 * is the key, a tab, then the value; a key alone (no tab) sends a null value. Sends with acks=all, then prints one
 * "partition offset" line per record, in input order. Exits 1 if any record was not acknowledged, 2 on bad
 * arguments.
 */

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ProduceEvents {

  private static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");

  public static void main(String[] args) throws IOException, InterruptedException {
    // The acknowledgements are this program's only output: whatever the client logs (log4j's default console
    // appender writes to stdout) goes to stderr.
    PrintStream out = System.out;
    System.setOut(System.err);
    Map<String, String> options = parse(args);
    String bootstrapServers = options.get("--bootstrap-servers");
    String topic = options.get("--topic");
    String compression = options.getOrDefault("--compression", "none");
    boolean keyed = options.containsKey("--keys");
    if (bootstrapServers == null || topic == null || !CODECS.contains(compression)) {
      usage("--bootstrap-servers and --topic are required; --compression is one of " + CODECS);
    }
    List<byte[]> lines = lines(System.in);

    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    config.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    // Batches of many records, as a busy Java producer writes them: that is what a reader must decompress.
    config.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    config.put(ProducerConfig.BATCH_SIZE_CONFIG, Integer.toString(256 * 1024));
    // A broker that does not answer fails the run within a test's patience, not after the default two minutes.
    config.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

    List<Future<RecordMetadata>> sent = new ArrayList<>(lines.size());
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
      for (byte[] line : lines) {
        sent.add(producer.send(record(topic, line, keyed)));
      }
      producer.flush();
    } catch (KafkaException error) {
      // Raised by send itself (no metadata for the topic in time, a bad setting) rather than through a future.
      System.err.println("error: sending to " + topic + " failed: " + error);
      System.exit(1);
    }
    StringBuilder acknowledged = new StringBuilder();
    for (int i = 0; i < sent.size(); i++) {
      try {
        RecordMetadata metadata = sent.get(i).get();
        acknowledged.append(metadata.partition()).append(' ').append(metadata.offset()).append('\n');
      } catch (ExecutionException error) {
        System.err.println("error: record " + i + " of " + sent.size() + " was not acknowledged by " + topic + ": "
            + error.getCause());
        System.exit(1);
      }
    }
    out.print(acknowledged);
    out.flush();
  }

  private static ProducerRecord<byte[], byte[]> record(String topic, byte[] line, boolean keyed) {
    if (!keyed) {
      return new ProducerRecord<>(topic, null, line);
    }
    int tab = indexOf(line, (byte) '\t');
    if (tab < 0) {
      return new ProducerRecord<>(topic, line, null);
    }
    return new ProducerRecord<>(topic, Arrays.copyOfRange(line, 0, tab),
        Arrays.copyOfRange(line, tab + 1, line.length));
  }

  /** The input split at newlines; a last newline ends the last record rather than starting an empty one. */
  private static List<byte[]> lines(InputStream in) throws IOException {
    byte[] all = in.readAllBytes();
    List<byte[]> lines = new ArrayList<>();
    ByteArrayOutputStream current = new ByteArrayOutputStream();
    for (byte b : all) {
      if (b == '\n') {
        lines.add(current.toByteArray());
        current.reset();
      } else {
        current.write(b);
      }
    }
    if (current.size() > 0) {
      lines.add(current.toByteArray());
    }
    return lines;
  }

  private static int indexOf(byte[] bytes, byte wanted) {
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == wanted) {
        return i;
      }
    }
    return -1;
  }

  private static Map<String, String> parse(String[] args) {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--keys")) {
        options.put(args[i], "");
      } else if (args[i].startsWith("--") && i + 1 < args.length) {
        options.put(args[i], args[++i]);
      } else {
        usage("unexpected argument " + args[i]);
      }
    }
    return options;
  }

  private static void usage(String problem) {
    System.err.println("error: " + problem + "\nusage: java -cp '<kafka jars>/*' ProduceEvents.java "
        + "--bootstrap-servers HOST:PORT --topic TOPIC [--compression none|gzip|snappy|lz4|zstd] [--keys]");
    System.exit(2);
  }
}
