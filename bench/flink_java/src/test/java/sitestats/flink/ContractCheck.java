package sitestats.flink;

import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.List;

/**
 * Checks SiteEventContract and CounterSums on the cases of docs/data-contract.md, every invalid kind the
 * benchmark's producer makes (beam_pipeline/tools/produce.py) and the edges of each rule. No test framework: run
 * with the job's jar on the class path, in Java's source-file mode; it exits 1 on the first wrong answer.
 *
 *     java -cp .local/bench/flink_java/site-stats-flink-java.jar \
 *         bench/flink_java/src/test/java/sitestats/flink/ContractCheck.java
 */
public final class ContractCheck {
  private static final SiteEventContract CONTRACT = new SiteEventContract();
  private static int checked; // expectations met so far

  public static void main(String[] args) {
    // Valid: absent counts are 0, unknown fields ignored, whitespace around the object, escapes decoded.
    valid("{\"date\": \"2017-02-04\", \"site_id\": 3491, \"views\": 10, \"clicks\": 2}", "2017-02-04", 3491, 10, 2);
    valid("{\"site_id\": 1, \"date\": \"2017-02-04\"}", "2017-02-04", 1, 0, 0);
    valid("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": 5, \"referrer\": \"x\", \"tags\": [1, {\"a\": null}]}",
        "2017-02-04", 1, 5, 0);
    valid(" \t\r\n{\"date\":\"2016-02-29\",\"site_id\":0}\n ", "2016-02-29", 0, 0, 0);
    valid("{\"date\": \"2017\\u002d02-04\", \"site_id\": 1}", "2017-02-04", 1, 0, 0);
    valid("{\"date\": \"2017-02-04\", \"site_id\": 2147483647, \"views\": 9223372036854775807, \"clicks\": 0}",
        "2017-02-04", 2147483647, Long.MAX_VALUE, 0);
    valid("{\"date\": \"2017-02-04\", \"site_id\": -0}", "2017-02-04", 0, 0, 0);
    valid("{\"date\": \"0001-01-01\", \"site_id\": 1}", "0001-01-01", 1, 0, 0);
    valid("{\"date\": \"2017-02-04\", \"site_id\": 1, \"note\": \"caf\u00e9 \u2603\"}", "2017-02-04", 1, 0, 0);
    // The last of a repeated field counts, as in the Python dict the pipeline reads.
    valid("{\"date\": \"2017-02-04\", \"site_id\": \"x\", \"site_id\": 7}", "2017-02-04", 7, 0, 0);
    refused("{\"date\": \"2017-02-04\", \"site_id\": 7, \"site_id\": \"x\"}");
    // Numbers in unknown fields may be anything JSON allows, up to Python's 4300 digits for an integer.
    valid("{\"date\": \"2017-02-04\", \"site_id\": 1, \"x\": 1e400, \"y\": -" + "9".repeat(4300) + "}",
        "2017-02-04", 1, 0, 0);
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"y\": " + "9".repeat(4301) + "}");

    // The producer's invalid kinds.
    refused(new byte[] {(byte) 0xff, (byte) 0xfe, '{', '}'});
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1");
    refused("[{\"date\": \"2017-02-04\", \"site_id\": 1}]");
    refused("\"2017-02-04\"");
    refused("");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": NaN}");
    refused("{\"site_id\": 1, \"views\": 1}");
    refused("{\"date\": \"2017-02-04\", \"views\": 1}");
    refused("{\"date\": \"2017-02-30\", \"site_id\": 1}");
    refused("{\"date\": \"2017-2-4\", \"site_id\": 1}");
    refused("{\"date\": \"2017-02-04T00:00\", \"site_id\": 1}");
    refused("{\"date\": 20170204, \"site_id\": 1}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": \"3491\"}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": -1}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 2147483648}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": 1.5}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": 1e3}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": null}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": true}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": \"10\"}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"clicks\": -3}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": 9223372036854775808}");

    // More edges of each rule.
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1.0}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"clicks\": 1.0}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"clicks\": false}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"clicks\": {}}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": -9223372036854775808}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"views\": Infinity}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 01}");
    refused("{\"date\": null, \"site_id\": 1}");
    refused("{\"date\": \"2017-02-04 \", \"site_id\": 1}");
    refused("{\"date\": \"2019-02-29\", \"site_id\": 1}");
    refused("{\"date\": \"2017-13-01\", \"site_id\": 1}");
    refused("{\"date\": \"2017-00-10\", \"site_id\": 1}");
    refused("{\"date\": \"2017-01-00\", \"site_id\": 1}");
    refused("{\"date\": \"0000-01-01\", \"site_id\": 1}");
    refused("{\"date\": \"\u0662017-02-04\", \"site_id\": 1}"); // an Arabic-Indic digit is not [0-9]
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1}{}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1} x");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1,}");
    refused("{'date': '2017-02-04', 'site_id': 1}");
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1, \"x\": \"tab\there\"}"); // a raw control character
    refused("\f{\"date\": \"2017-02-04\", \"site_id\": 1}"); // form feed is not JSON whitespace
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1 /* note */}");
    refused("\ufeff{\"date\": \"2017-02-04\", \"site_id\": 1}"); // a byte-order mark
    refused("null");
    refused("1");
    // Not UTF-8: an encoded surrogate, an overlong '/', a sequence cut short.
    refused(bytes("{\"date\": \"2017-02-04\", \"site_id\": 1, \"x\": \"", 0xed, 0xa0, 0x80, '"', '}'));
    refused(bytes("{\"date\": \"2017-02-04\", \"site_id\": 1, \"x\": \"", 0xc0, 0xaf, '"', '}'));
    refused(bytes("{\"date\": \"2017-02-04\", \"site_id\": 1, \"x\": \"", 0xe2, 0x98, '"', '}'));
    // UTF-16 would be detected by Jackson from its zero bytes; Python reads the bytes as UTF-8 and refuses them.
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1}".getBytes(StandardCharsets.UTF_16LE));
    refused("{\"date\": \"2017-02-04\", \"site_id\": 1}".getBytes(StandardCharsets.UTF_16BE));

    // A long value after a short one: the buffer grows, and what an earlier value left in it does not count.
    valid("{\"date\": \"2017-02-04\", \"site_id\": 1, \"pad\": \"" + "p".repeat(5000) + "\"}", "2017-02-04", 1, 0, 0);
    refused(new byte[] {(byte) 0xff});

    checkSums();
    System.out.println("ContractCheck: all " + checked + " checks passed");
  }

  private static void checkSums() {
    CounterSums sums = new CounterSums();
    int day = (int) LocalDate.parse("2017-02-04").toEpochDay();
    sums.add(new SiteIncrement(day, 1, 3, 1));
    sums.add(new SiteIncrement(day, 1, 4, 0));
    sums.add(new SiteIncrement(day, 2, 0, 0));
    sums.add(new SiteIncrement(day + 1, 1, 1, 1));
    List<CounterSums.CounterWrite> writes = sums.drain();
    expect(writes.size() == 3, "three keys make three writes, got " + writes.size());
    long views = 0, clicks = 0;
    for (CounterSums.CounterWrite write : writes) {
      views += write.views;
      clicks += write.clicks;
      if (write.epochDay == day && write.siteId == 1) {
        expect(write.views == 7 && write.clicks == 1, "day 1 site 1 sums to 7 views and 1 click");
      }
      if (write.siteId == 2) {
        expect(write.views == 0 && write.clicks == 0, "a key of zero counts is still written, so its row exists");
      }
    }
    expect(views == 8 && clicks == 2, "the writes add up to every increment");
    expect(sums.isEmpty() && sums.drain().isEmpty(), "a drain starts a new bundle");
    // A sum past the 64-bit range of an increment is written in parts.
    sums.add(new SiteIncrement(day, 9, Long.MAX_VALUE, 0));
    sums.add(new SiteIncrement(day, 9, 5, 2));
    writes = sums.drain();
    expect(writes.size() == 2, "a key whose sum passes 2^63-1 is written in two parts, got " + writes.size());
    expect(writes.get(0).views == Long.MAX_VALUE && writes.get(1).views == 5 && writes.get(1).clicks == 2,
        "the parts hold the increments in order");
    expect(writes.get(0).epochDay == day && writes.get(0).siteId == 9, "a part keeps its key");
  }

  private static void valid(String json, String day, int siteId, long views, long clicks) {
    SiteIncrement increment = CONTRACT.read(json.getBytes(StandardCharsets.UTF_8));
    expect(increment != null, "refused a valid message: " + shorten(json));
    expect(increment.epochDay == LocalDate.parse(day).toEpochDay() && increment.siteId == siteId
            && increment.views == views && increment.clicks == clicks,
        "read " + increment + " from " + shorten(json));
  }

  private static void refused(String json) {
    refused(json.getBytes(StandardCharsets.UTF_8));
  }

  private static void refused(byte[] value) {
    SiteIncrement increment = CONTRACT.read(value);
    expect(increment == null,
        "accepted an invalid message as " + increment + ": " + shorten(new String(value, StandardCharsets.UTF_8)));
  }

  private static byte[] bytes(String start, int... rest) {
    byte[] head = start.getBytes(StandardCharsets.UTF_8);
    byte[] value = java.util.Arrays.copyOf(head, head.length + rest.length);
    for (int i = 0; i < rest.length; i++) {
      value[head.length + i] = (byte) rest[i];
    }
    return value;
  }

  private static String shorten(String text) {
    return text.length() > 120 ? text.substring(0, 120) + "..." : text;
  }

  private static void expect(boolean condition, String message) {
    checked++;
    if (!condition) {
      System.err.println("ContractCheck failed: " + message);
      System.exit(1);
    }
  }
}
