package tierflight;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.arrow.flight.AsyncPutListener;
import org.apache.arrow.flight.Criteria;
import org.apache.arrow.flight.FlightClient;
import org.apache.arrow.flight.FlightRuntimeException;
import org.apache.arrow.flight.FlightStatusCode;
import org.apache.arrow.flight.grpc.CredentialCallOption;
import org.apache.arrow.flight.FlightDescriptor;
import org.apache.arrow.flight.FlightEndpoint;
import org.apache.arrow.flight.FlightInfo;
import org.apache.arrow.flight.FlightStream;
import org.apache.arrow.flight.Location;
import org.apache.arrow.flight.PutResult;
import org.apache.arrow.flight.SyncPutListener;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.*;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.MapVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.complex.UnionVector;
import org.apache.arrow.vector.complex.impl.UnionFixedSizeListWriter;
import org.apache.arrow.vector.complex.impl.UnionLargeListWriter;
import org.apache.arrow.vector.complex.impl.UnionListWriter;
import org.apache.arrow.vector.complex.impl.UnionMapWriter;
import org.apache.arrow.vector.dictionary.Dictionary;
import org.apache.arrow.vector.dictionary.DictionaryProvider;
import org.apache.arrow.vector.holders.NullableBigIntHolder;
import org.apache.arrow.vector.holders.NullableIntHolder;
import org.apache.arrow.vector.types.DateUnit;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.IntervalUnit;
import org.apache.arrow.vector.types.TimeUnit;
import org.apache.arrow.vector.types.Types.MinorType;
import org.apache.arrow.vector.types.UnionMode;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.DictionaryEncoding;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Tierflight's Java test client: Arrow Java's FlightClient puts every type family it
 * supports (with a dictionary, per-batch app_metadata whose acknowledgements it checks,
 * zero-row and many-batch flights) and reads every endpoint back, comparing each batch.
 *
 * <p>Usage: {@code FlightCheck HOST PORT}. Prints one JSON object: per case, ok or the error.
 */
public final class FlightCheck {
  private static final long DICT_ID = 7L;

  interface Filler {
    void fill(VectorSchemaRoot root, int batch, int rows);
  }

  record Case(String name, List<Field> fields, int batches, int rows, Filler filler, boolean dictionary) {}

  static Field f(String name, ArrowType type, Field... children) {
    return new Field(name, FieldType.nullable(type), Arrays.asList(children));
  }

  static boolean isNull(int row) {
    return row % 3 == 1;
  }

  static int value(int batch, int row) {
    return batch * 1000 + row * 7 - 50;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** Fills every scalar column of the root, with a null in every third row. */
  static void fillScalars(VectorSchemaRoot root, int batch, int rows) {
    for (FieldVector v : root.getFieldVectors()) {
      v.allocateNew();
      for (int i = 0; i < rows; i++) {
        if (isNull(i)) {
          if (!(v instanceof NullVector)) v.setNull(i);
          continue;
        }
        int x = value(batch, i);
        if (v instanceof TinyIntVector t) t.setSafe(i, (byte) x);
        else if (v instanceof SmallIntVector t) t.setSafe(i, (short) x);
        else if (v instanceof IntVector t) t.setSafe(i, x);
        else if (v instanceof BigIntVector t) t.setSafe(i, (long) x * 1_000_000_007L);
        else if (v instanceof UInt1Vector t) t.setSafe(i, x & 0xff);
        else if (v instanceof UInt2Vector t) t.setSafe(i, (char) (x & 0xffff));
        else if (v instanceof UInt4Vector t) t.setSafe(i, x);
        else if (v instanceof UInt8Vector t) t.setSafe(i, (long) x);
        else if (v instanceof Float4Vector t) t.setSafe(i, x / 4f);
        else if (v instanceof Float8Vector t) t.setSafe(i, x / 3.0);
        else if (v instanceof BitVector t) t.setSafe(i, x & 1);
        else if (v instanceof VarCharVector t) t.setSafe(i, utf8("héllo " + x));
        else if (v instanceof LargeVarCharVector t) t.setSafe(i, utf8("wörld " + x));
        else if (v instanceof ViewVarCharVector t) t.setSafe(i, utf8("a view value longer than twelve bytes " + x));
        else if (v instanceof VarBinaryVector t) t.setSafe(i, new byte[] {(byte) x, 0, (byte) i});
        else if (v instanceof LargeVarBinaryVector t) t.setSafe(i, new byte[] {1, (byte) x});
        else if (v instanceof FixedSizeBinaryVector t) t.setSafe(i, new byte[] {(byte) x, (byte) i, 9});
        else if (v instanceof DateDayVector t) t.setSafe(i, 19000 + x);
        else if (v instanceof DateMilliVector t) t.setSafe(i, 86_400_000L * (19000 + x));
        else if (v instanceof TimeMilliVector t) t.setSafe(i, 3_600_000 + x);
        else if (v instanceof TimeNanoVector t) t.setSafe(i, 3_600_000_000_000L + x);
        else if (v instanceof TimeStampMicroTZVector t) t.setSafe(i, 1_700_000_000_000_000L + x);
        else if (v instanceof DurationVector t) t.setSafe(i, (long) x);
        else if (v instanceof IntervalYearVector t) t.setSafe(i, x);
        else if (v instanceof IntervalDayVector t) t.setSafe(i, x, 2 * x);
        else if (v instanceof IntervalMonthDayNanoVector t) t.setSafe(i, x, 2, 3L * x);
        else if (v instanceof DecimalVector t) t.setSafe(i, BigDecimal.valueOf(x * 100L + 25, 2));
        else if (v instanceof Decimal256Vector t) t.setSafe(i, new BigDecimal("123456789012345678901234567890." + Math.abs(x) % 100000).setScale(5));
        else if (!(v instanceof NullVector)) throw new IllegalStateException("no filler for " + v.getClass());
      }
      v.setValueCount(rows);
    }
    root.setRowCount(rows);
  }

  static void fillNested(VectorSchemaRoot root, int batch, int rows) {
    ListVector list = (ListVector) root.getVector("l");
    LargeListVector large = (LargeListVector) root.getVector("ll");
    FixedSizeListVector fixed = (FixedSizeListVector) root.getVector("fsl");
    StructVector struct = (StructVector) root.getVector("st");
    MapVector map = (MapVector) root.getVector("m");
    for (FieldVector v : root.getFieldVectors()) v.allocateNew();
    UnionListWriter lw = list.getWriter();
    UnionLargeListWriter llw = large.getWriter();
    UnionFixedSizeListWriter fw = fixed.getWriter();
    UnionMapWriter mw = map.getWriter();
    IntVector a = struct.getChild("a", IntVector.class);
    VarCharVector b = struct.getChild("b", VarCharVector.class);
    for (int i = 0; i < rows; i++) {
      int x = value(batch, i);
      if (isNull(i)) {
        list.setNull(i);
        large.setNull(i);
        fixed.setNull(i);
        struct.setNull(i);
        map.setNull(i);
        continue;
      }
      lw.setPosition(i);
      lw.startList();
      for (int k = 0; k < i % 4; k++) lw.integer().writeInt(x + k);
      lw.endList();
      llw.setPosition(i);
      llw.startList();
      for (int k = 0; k < 2; k++) llw.bigInt().writeBigInt(x * 10L + k);
      llw.endList();
      fw.setPosition(i);
      fw.startList();
      fw.integer().writeInt(x);
      fw.integer().writeInt(-x);
      fw.endList();
      struct.setIndexDefined(i);
      a.setSafe(i, x);
      b.setSafe(i, utf8("s" + x));
      mw.setPosition(i);
      mw.startMap();
      for (int k = 0; k < i % 3; k++) {
        mw.startEntry();
        mw.key().integer().writeInt(k);
        mw.value().bigInt().writeBigInt(x * 3L + k);
        mw.endEntry();
      }
      mw.endMap();
    }
    for (FieldVector v : root.getFieldVectors()) v.setValueCount(rows);
    root.setRowCount(rows);
  }

  static void fillUnion(VectorSchemaRoot root, int batch, int rows) {
    UnionVector u = (UnionVector) root.getVector("u");
    u.allocateNew();
    for (int i = 0; i < rows; i++) {
      int x = value(batch, i);
      if (i % 2 == 0) {
        NullableIntHolder h = new NullableIntHolder();
        h.isSet = 1;
        h.value = x;
        u.setType(i, MinorType.INT);
        u.setSafe(i, h);
      } else {
        NullableBigIntHolder h = new NullableBigIntHolder();
        h.isSet = 1;
        h.value = x * 100_000_000_000L;
        u.setType(i, MinorType.BIGINT);
        u.setSafe(i, h);
      }
    }
    u.setValueCount(rows);
    root.setRowCount(rows);
  }

  static void fillDictionary(VectorSchemaRoot root, int batch, int rows) {
    SmallIntVector indices = (SmallIntVector) root.getVector("d");
    IntVector n = (IntVector) root.getVector("n");
    indices.allocateNew();
    n.allocateNew();
    for (int i = 0; i < rows; i++) {
      if (isNull(i)) indices.setNull(i);
      else indices.setSafe(i, (batch + i) % 3);
      n.setSafe(i, value(batch, i));
    }
    indices.setValueCount(rows);
    n.setValueCount(rows);
    root.setRowCount(rows);
  }

  static Field dictField() {
    return new Field("d", new FieldType(true, new ArrowType.Int(16, true), new DictionaryEncoding(DICT_ID, false, new ArrowType.Int(16, true))), List.of());
  }

  static List<Case> cases() {
    ArrowType utf8 = ArrowType.Utf8.INSTANCE;
    List<Case> out = new ArrayList<>();
    out.add(new Case("integers", List.of(f("i8", new ArrowType.Int(8, true)), f("i16", new ArrowType.Int(16, true)),
        f("i32", new ArrowType.Int(32, true)), f("i64", new ArrowType.Int(64, true)), f("u8", new ArrowType.Int(8, false)),
        f("u16", new ArrowType.Int(16, false)), f("u32", new ArrowType.Int(32, false)), f("u64", new ArrowType.Int(64, false))),
        3, 10, FlightCheck::fillScalars, false));
    out.add(new Case("floats-and-bool", List.of(f("f32", new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE)),
        f("f64", new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE)), f("b", ArrowType.Bool.INSTANCE), f("z", ArrowType.Null.INSTANCE)),
        2, 9, FlightCheck::fillScalars, false));
    out.add(new Case("strings-and-binary", List.of(f("s", utf8), f("ls", ArrowType.LargeUtf8.INSTANCE),
        f("sv", ArrowType.Utf8View.INSTANCE), f("b", ArrowType.Binary.INSTANCE), f("lb", ArrowType.LargeBinary.INSTANCE),
        f("fsb", new ArrowType.FixedSizeBinary(3))), 2, 8, FlightCheck::fillScalars, false));
    out.add(new Case("temporal", List.of(f("dd", new ArrowType.Date(DateUnit.DAY)), f("dm", new ArrowType.Date(DateUnit.MILLISECOND)),
        f("tm", new ArrowType.Time(TimeUnit.MILLISECOND, 32)), f("tn", new ArrowType.Time(TimeUnit.NANOSECOND, 64)),
        f("ts", new ArrowType.Timestamp(TimeUnit.MICROSECOND, "UTC")), f("du", new ArrowType.Duration(TimeUnit.MILLISECOND)),
        f("iy", new ArrowType.Interval(IntervalUnit.YEAR_MONTH)), f("id", new ArrowType.Interval(IntervalUnit.DAY_TIME)),
        f("imdn", new ArrowType.Interval(IntervalUnit.MONTH_DAY_NANO))), 2, 7, FlightCheck::fillScalars, false));
    out.add(new Case("decimals", List.of(f("d128", new ArrowType.Decimal(10, 2, 128)), f("d256", new ArrowType.Decimal(40, 5, 256))),
        2, 6, FlightCheck::fillScalars, false));
    out.add(new Case("nested", List.of(f("l", new ArrowType.List(), f("$data$", new ArrowType.Int(32, true))),
        f("ll", new ArrowType.LargeList(), f("$data$", new ArrowType.Int(64, true))),
        f("fsl", new ArrowType.FixedSizeList(2), f("$data$", new ArrowType.Int(32, true))),
        f("st", ArrowType.Struct.INSTANCE, f("a", new ArrowType.Int(32, true)), f("b", utf8)),
        new Field("m", FieldType.nullable(new ArrowType.Map(false)), List.of(new Field("entries", FieldType.notNullable(ArrowType.Struct.INSTANCE),
            List.of(new Field("key", FieldType.notNullable(new ArrowType.Int(32, true)), List.of()), f("value", new ArrowType.Int(64, true))))))),
        3, 9, FlightCheck::fillNested, false));
    out.add(new Case("union", List.of(f("u", new ArrowType.Union(UnionMode.Sparse, new int[] {MinorType.INT.ordinal(), MinorType.BIGINT.ordinal()}),
        f("int", new ArrowType.Int(32, true)), f("bigint", new ArrowType.Int(64, true)))), 2, 6, FlightCheck::fillUnion, false));
    out.add(new Case("dictionary", List.of(dictField(), f("n", new ArrowType.Int(32, true))), 3, 8, FlightCheck::fillDictionary, true));
    out.add(new Case("zero-rows", List.of(f("i32", new ArrowType.Int(32, true))), 0, 0, FlightCheck::fillScalars, false));
    out.add(new Case("empty-batches", List.of(f("i32", new ArrowType.Int(32, true))), 3, 0, FlightCheck::fillScalars, false));
    out.add(new Case("many-batches", List.of(f("i64", new ArrowType.Int(64, true)), f("s", utf8)), 300, 20, FlightCheck::fillScalars, false));
    return out;
  }

  static DictionaryProvider.MapDictionaryProvider dictionaries(BufferAllocator allocator) {
    VarCharVector values = new VarCharVector("dict", allocator);
    values.allocateNew();
    String[] words = {"apple", "pear", "fig"};
    for (int i = 0; i < words.length; i++) values.setSafe(i, utf8(words[i]));
    values.setValueCount(words.length);
    DictionaryProvider.MapDictionaryProvider provider = new DictionaryProvider.MapDictionaryProvider();
    provider.put(new Dictionary(values, new DictionaryEncoding(DICT_ID, false, new ArrowType.Int(16, true))));
    return provider;
  }

  static String meta(Case c, int batch) {
    return c.name() + ":" + batch;
  }

  /** Puts the case, checking each acknowledgement, then reads every endpoint and compares. */
  static String roundtrip(FlightClient client, BufferAllocator allocator, Case c) throws Exception {
    Schema schema = new Schema(c.fields());
    FlightDescriptor descriptor = FlightDescriptor.path("java", c.name());
    DictionaryProvider.MapDictionaryProvider provider = c.dictionary() ? dictionaries(allocator) : new DictionaryProvider.MapDictionaryProvider();
    try (VectorSchemaRoot root = VectorSchemaRoot.create(schema, allocator)) {
      SyncPutListener listener = new SyncPutListener();
      FlightClient.ClientStreamListener put = client.startPut(descriptor, root, provider, listener);
      for (int b = 0; b < c.batches(); b++) {
        c.filler().fill(root, b, c.rows());
        byte[] m = utf8(meta(c, b));
        ArrowBuf buf = allocator.buffer(m.length);
        buf.writeBytes(m);
        put.putNext(buf);
        try (PutResult ack = listener.read()) {
          if (ack == null) return "no acknowledgement for batch " + b;
          byte[] got = new byte[(int) ack.getApplicationMetadata().readableBytes()];
          ack.getApplicationMetadata().getBytes(0, got);
          if (!Arrays.equals(got, m)) return "acknowledgement " + b + " carries " + new String(got, StandardCharsets.UTF_8);
        }
      }
      put.completed();
      put.getResult();
      try (PutResult extra = listener.read()) {
        if (extra != null) return "an acknowledgement too many";
      }
    }
    FlightInfo info = client.getInfo(descriptor);
    int batch = 0;
    try (VectorSchemaRoot expected = VectorSchemaRoot.create(schema, allocator)) {
      for (FlightEndpoint endpoint : info.getEndpoints()) {
        try (FlightStream stream = client.getStream(endpoint.getTicket())) {
          while (stream.next()) {
            VectorSchemaRoot got = stream.getRoot();
            c.filler().fill(expected, batch, c.rows());
            if (!got.getSchema().equals(schema)) return "batch " + batch + " schema " + got.getSchema();
            if (!expected.equals(got)) return "batch " + batch + " differs:\n" + got.contentToTSVString();
            ArrowBuf m = stream.getLatestMetadata();
            byte[] bytes = new byte[m == null ? 0 : (int) m.readableBytes()];
            if (m != null) m.getBytes(0, bytes);
            if (!new String(bytes, StandardCharsets.UTF_8).equals(meta(c, batch))) return "batch " + batch + " app_metadata differs";
            if (c.dictionary()) {
              ValueVector want = provider.lookup(DICT_ID).getVector();
              ValueVector have = stream.getDictionaryProvider().lookup(DICT_ID).getVector();
              // Compared by value: the received dictionary vector has another name.
              if (want.getValueCount() != have.getValueCount()) return "the dictionary has " + have.getValueCount() + " values";
              for (int i = 0; i < want.getValueCount(); i++) {
                if (!want.getObject(i).equals(have.getObject(i))) return "dictionary value " + i + " is " + have.getObject(i);
              }
            }
            batch++;
          }
        }
      }
    } finally {
      for (long id : provider.getDictionaryIds()) provider.lookup(id).getVector().close();
    }
    if (batch != c.batches()) return "read " + batch + " batches, sent " + c.batches();
    return null;
  }

  /**
   * Authentication with Arrow Java's own helper: refused without a token, authenticateBasicToken
   * for a bearer token, a put and read under tenant1 with it, PERMISSION_DENIED (UNAUTHORIZED
   * in Java's terms) under tenant2.
   */
  static String auth(FlightClient client, BufferAllocator allocator, String user, String password) throws Exception {
    try {
      client.listFlights(Criteria.ALL).forEach(f -> {});
      return "listed flights without a token";
    } catch (FlightRuntimeException e) {
      if (e.status().code() != FlightStatusCode.UNAUTHENTICATED) return "without a token: " + e.status();
    }
    Optional<CredentialCallOption> token = client.authenticateBasicToken(user, password);
    if (token.isEmpty()) return "Handshake gave no bearer token";
    Schema schema = new Schema(List.of(Field.nullable("v", new ArrowType.Int(32, true))));
    FlightDescriptor mine = FlightDescriptor.path("tenant1", "java");
    try (VectorSchemaRoot root = VectorSchemaRoot.create(schema, allocator)) {
      IntVector v = (IntVector) root.getVector("v");
      v.allocateNew(3);
      for (int i = 0; i < 3; i++) v.set(i, i + 1);
      root.setRowCount(3);
      FlightClient.ClientStreamListener put = client.startPut(mine, root, new AsyncPutListener(), token.get());
      put.putNext();
      put.completed();
      put.getResult();
    }
    FlightInfo info = client.getInfo(mine, token.get());
    long rows = 0;
    try (FlightStream stream = client.getStream(info.getEndpoints().get(0).getTicket(), token.get())) {
      while (stream.next()) rows += stream.getRoot().getRowCount();
    }
    if (rows != 3) return "read " + rows + " rows back, put 3";
    try {
      client.getInfo(FlightDescriptor.path("tenant2", "x"), token.get());
      return "read tenant2 without permission";
    } catch (FlightRuntimeException e) {
      if (e.status().code() != FlightStatusCode.UNAUTHORIZED) return "tenant2: " + e.status();
    }
    return null;
  }

  static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 2 && args.length != 4) {
      System.err.println("usage: FlightCheck HOST PORT [USER PASSWORD]");
      System.exit(2);
    }
    Map<String, String> results = new LinkedHashMap<>();
    if (args.length == 4) {
      try (BufferAllocator allocator = new RootAllocator();
          FlightClient client = FlightClient.builder(allocator, Location.forGrpcInsecure(args[0], Integer.parseInt(args[1]))).build()) {
        String error = auth(client, allocator, args[2], args[3]);
        System.out.println("{\"auth\":" + (error == null ? "{\"ok\":true}" : "{\"ok\":false,\"error\":" + json(error) + "}") + "}");
      }
      return;
    }
    try (BufferAllocator allocator = new RootAllocator();
        FlightClient client = FlightClient.builder(allocator, Location.forGrpcInsecure(args[0], Integer.parseInt(args[1]))).build()) {
      for (Case c : cases()) {
        String error;
        try {
          error = roundtrip(client, allocator, c);
        } catch (Exception e) {
          error = e.toString();
        }
        results.put(c.name(), error == null ? "{\"ok\":true}" : "{\"ok\":false,\"error\":" + json(error) + "}");
      }
    }
    StringBuilder out = new StringBuilder("{");
    results.forEach((k, v) -> out.append(out.length() > 1 ? "," : "").append(json(k)).append(':').append(v));
    System.out.println(out.append('}'));
  }
}
