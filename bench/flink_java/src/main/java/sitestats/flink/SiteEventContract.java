package sitestats.flink;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.Month;
import java.time.Year;

/**
 * The data contract of docs/data-contract.md, as the Python pipeline applies it (beam_pipeline/transforms/parse.py
 * and validate.py):
 *
 * <ul>
 *   <li>the value is UTF-8 text holding one JSON object ({@code NaN} and {@code Infinity} are not JSON);
 *   <li>{@code date}: required string {@code YYYY-MM-DD} naming a real calendar day;
 *   <li>{@code site_id}: required JSON integer, 0 to 2147483647;
 *   <li>{@code views}, {@code clicks}: JSON integers, 0 to 9223372036854775807, absent means 0; null, strings,
 *       floats and booleans are refused;
 *   <li>unknown fields are ignored; of a field given twice, the last one counts (as in a Python dict).
 * </ul>
 *
 * <p>One instance per thread: it reuses its buffers.
 */
public final class SiteEventContract {
  public static final long MAX_SITE_ID = Integer.MAX_VALUE;
  public static final long MAX_COUNT = Long.MAX_VALUE;
  // Python refuses to read an integer of more digits, so the pipeline refuses the whole document.
  private static final int MAX_INTEGER_DIGITS = 4300;
  private static final int DATE_LENGTH = "YYYY-MM-DD".length();

  private final JsonFactory json =
      new JsonFactoryBuilder()
          // Python's parser has no limit on string or number length (integers aside, above); its nesting limit
          // is its recursion limit, about as deep as Jackson's default (1000), so that one stays.
          .streamReadConstraints(
              StreamReadConstraints.builder()
                  .maxStringLength(Integer.MAX_VALUE)
                  .maxNumberLength(Integer.MAX_VALUE)
                  .build())
          .build();
  private final CharsetDecoder utf8 =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);
  private char[] text = new char[512];

  /** The increment {@code value} carries, or null when the contract refuses it. */
  public SiteIncrement read(byte[] value) {
    int length = decode(value);
    if (length < 0) {
      return null;
    }
    // A JSON object starts with '{' after optional whitespace; checked here because Jackson would skip a
    // byte-order mark, which Python's parser refuses.
    int first = 0;
    while (first < length && isJsonWhitespace(text[first])) {
      first++;
    }
    if (first == length || text[first] != '{') {
      return null;
    }
    try (JsonParser parser = json.createParser(text, 0, length)) {
      return readObject(parser);
    } catch (IOException notJson) {
      return null;
    }
  }

  /** Decodes {@code value} into {@code text}; returns the number of chars, or -1 when it is not UTF-8. */
  private int decode(byte[] value) {
    if (text.length < value.length) {
      text = new char[Math.max(value.length, text.length * 2)];
    }
    for (int i = 0; i < value.length; i++) {
      byte b = value[i];
      if (b < 0) {
        return decodeStrictly(value);
      }
      text[i] = (char) b;
    }
    return value.length;
  }

  // Only values with non-ASCII bytes come here: the JDK's decoder refuses what Python's does (overlong forms,
  // encoded surrogates, truncated sequences).
  private int decodeStrictly(byte[] value) {
    try {
      CharBuffer chars = utf8.reset().decode(ByteBuffer.wrap(value));
      int length = chars.remaining();
      chars.get(text, 0, length);
      return length;
    } catch (CharacterCodingException notUtf8) {
      return -1;
    }
  }

  private static boolean isJsonWhitespace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }

  private SiteIncrement readObject(JsonParser parser) throws IOException {
    if (parser.nextToken() != JsonToken.START_OBJECT) {
      return null;
    }
    // Each known field's last value: VALID, REFUSED (a value of the wrong kind) or ABSENT.
    Field date = Field.ABSENT, siteId = Field.ABSENT, views = Field.ABSENT, clicks = Field.ABSENT;
    int epochDay = 0, site = 0;
    long viewCount = 0, clickCount = 0;
    int depth = 1;
    String field = null;
    JsonToken token;
    // Every token is read, so that a document Python would not parse is refused whatever its fields hold.
    while ((token = parser.nextToken()) != null) {
      if (token == JsonToken.VALUE_NUMBER_INT && integerDigits(parser) > MAX_INTEGER_DIGITS) {
        return null;
      }
      if (depth == 1 && token == JsonToken.FIELD_NAME) {
        field = parser.currentName();
        continue;
      }
      if (depth == 1 && field != null) {
        switch (field) {
          case "date":
            epochDay = epochDay(parser, token);
            date = epochDay == Integer.MIN_VALUE ? Field.REFUSED : Field.VALID;
            break;
          case "site_id":
            long siteValue = integer(parser, token, MAX_SITE_ID);
            siteId = siteValue < 0 ? Field.REFUSED : Field.VALID;
            site = (int) siteValue;
            break;
          case "views":
            viewCount = integer(parser, token, MAX_COUNT);
            views = viewCount < 0 ? Field.REFUSED : Field.VALID;
            break;
          case "clicks":
            clickCount = integer(parser, token, MAX_COUNT);
            clicks = clickCount < 0 ? Field.REFUSED : Field.VALID;
            break;
          default:
            break;
        }
        field = null;
      }
      if (token.isStructStart()) {
        depth++;
      } else if (token.isStructEnd()) {
        depth--;
        if (depth == 0) {
          break;
        }
      }
    }
    // Nothing may follow the object but whitespace.
    if (depth != 0 || parser.nextToken() != null) {
      return null;
    }
    if (date != Field.VALID || siteId != Field.VALID || views == Field.REFUSED || clicks == Field.REFUSED) {
      return null;
    }
    return new SiteIncrement(
        epochDay, site, views == Field.VALID ? viewCount : 0, clicks == Field.VALID ? clickCount : 0);
  }

  private enum Field {
    ABSENT,
    VALID,
    REFUSED
  }

  private static int integerDigits(JsonParser parser) throws IOException {
    int length = parser.getTextLength();
    return parser.getTextCharacters()[parser.getTextOffset()] == '-' ? length - 1 : length;
  }

  /** A JSON integer within 0..max, or -1: floats, strings, booleans, null and larger integers are refused. */
  private static long integer(JsonParser parser, JsonToken token, long max) throws IOException {
    if (token != JsonToken.VALUE_NUMBER_INT) {
      return -1;
    }
    JsonParser.NumberType type = parser.getNumberType();
    if (type != JsonParser.NumberType.INT && type != JsonParser.NumberType.LONG) {
      return -1; // a BigInteger: beyond the 64-bit range either way
    }
    long value = parser.getLongValue();
    return value >= 0 && value <= max ? value : -1;
  }

  /**
   * The day a {@code YYYY-MM-DD} string names, as days since 1970-01-01, or Integer.MIN_VALUE: other forms
   * ({@code 2017-2-4}, {@code 2017-02-04T00:00}), days that do not exist and year 0 (Python's dates start at
   * year 1) are refused.
   */
  private static int epochDay(JsonParser parser, JsonToken token) throws IOException {
    if (token != JsonToken.VALUE_STRING || parser.getTextLength() != DATE_LENGTH) {
      return Integer.MIN_VALUE;
    }
    char[] chars = parser.getTextCharacters();
    int at = parser.getTextOffset();
    if (chars[at + 4] != '-' || chars[at + 7] != '-') {
      return Integer.MIN_VALUE;
    }
    int year = digits(chars, at, 4), month = digits(chars, at + 5, 2), day = digits(chars, at + 8, 2);
    if (year < 1 || month < 1 || month > 12 || day < 1) {
      return Integer.MIN_VALUE; // a missing digit shows as -1
    }
    if (day > Month.of(month).length(Year.isLeap(year))) {
      return Integer.MIN_VALUE;
    }
    return (int) LocalDate.of(year, month, day).toEpochDay();
  }

  /** The number the ASCII digits at {@code chars[at..at+count)} spell, or -1 if any is not a digit. */
  private static int digits(char[] chars, int at, int count) {
    int value = 0;
    for (int i = at; i < at + count; i++) {
      char c = chars[i];
      if (c < '0' || c > '9') {
        return -1;
      }
      value = value * 10 + (c - '0');
    }
    return value;
  }
}
