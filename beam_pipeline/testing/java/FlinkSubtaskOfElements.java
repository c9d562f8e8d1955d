import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.beam.runners.flink.translation.wrappers.streaming.FlinkKeyUtils;
import org.apache.beam.sdk.coders.ByteArrayCoder;
import org.apache.beam.sdk.coders.LengthPrefixCoder;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * For each line "parallelism maxParallelism hex" on stdin (maxParallelism 0: Flink's default), prints the subtask
 * that a streaming job of Beam's Flink runner gives an element the Python SDK encodes as those bytes: the key
 * the runner makes of it (the element length-prefixed, as Java sees a coder it does not know) and Flink's own
 * key-group assignment.
 */
public class FlinkSubtaskOfElements {
  public static void main(String[] args) throws Exception {
    BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    for (String line = lines.readLine(); line != null; line = lines.readLine()) {
      String[] fields = line.trim().split(" ");
      int parallelism = Integer.parseInt(fields[0]);
      int maxParallelism = Integer.parseInt(fields[1]);
      if (maxParallelism == 0) {
        maxParallelism = KeyGroupRangeAssignment.computeDefaultMaxParallelism(parallelism);
      }
      ByteBuffer key = FlinkKeyUtils.encodeKey(hex(fields[2]), LengthPrefixCoder.of(ByteArrayCoder.of()));
      out.append(KeyGroupRangeAssignment.assignKeyToParallelOperator(key, maxParallelism, parallelism)).append('\n');
    }
    System.out.print(out);
  }

  private static byte[] hex(String text) {
    byte[] bytes = new byte[text.length() / 2];
    for (int i = 0; i < bytes.length; i++) {
      bytes[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
    }
    return bytes;
  }
}
