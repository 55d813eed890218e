"""pyarrow.flight client used by Tierflight's end-to-end tests.

Each subcommand talks to a running server and prints one JSON document on stdout, so the
vitest side asserts on what a real pyarrow user would see.
"""
import argparse
import datetime
import decimal
import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl


def with_nulls(values, typ):
    """The values with a null in every third slot."""
    return pa.array([None if i % 3 == 1 else v for i, v in enumerate(values)], type=typ)


def type_cases():
    """One table per Arrow type family, each with nulls."""
    n = 7
    ints = list(range(-3, n - 3))
    cases = {}
    for t in [pa.int8(), pa.int16(), pa.int32(), pa.int64()]:
        cases[f"int/{t}"] = pa.table({"v": with_nulls(ints, t)})
    for t in [pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]:
        cases[f"uint/{t}"] = pa.table({"v": with_nulls(list(range(n)), t)})
    cases["float/halffloat"] = pa.table({"v": pa.array(np.array([0.5, 1.5, -2.0, 0, 3, 4, 5], dtype=np.float16),
                                                       mask=np.array([False, True, False, False, True, False, False]))})
    cases["float/float32"] = pa.table({"v": with_nulls([1.5, -0.0, float("inf"), float("-inf"), 2, 3, 4], pa.float32())})
    # NaN never equals itself, so this case is compared bit for bit only.
    cases["float/nan"] = pa.table({"v": with_nulls([float("nan"), 1.0, -float("nan"), 2, 3, 4, 5], pa.float64())})
    cases["float/float64"] = pa.table({"v": with_nulls([1e300, -1e-300, 0.1, 2, 3, 4, 5], pa.float64())})
    cases["bool"] = pa.table({"v": with_nulls([True, False, True, True, False, False, True], pa.bool_())})
    words = ["", "a", "héllo", "wörld" * 20, "x", "yy", "zzz"]
    cases["string/utf8"] = pa.table({"v": with_nulls(words, pa.string())})
    cases["string/large"] = pa.table({"v": with_nulls(words, pa.large_string())})
    cases["string/view"] = pa.table({"v": with_nulls(words, pa.string_view())})
    blobs = [b"", b"\x00\x01", b"abc" * 10, b"\xff", b"q", b"rr", b"s"]
    cases["binary/binary"] = pa.table({"v": with_nulls(blobs, pa.binary())})
    cases["binary/large"] = pa.table({"v": with_nulls(blobs, pa.large_binary())})
    cases["binary/view"] = pa.table({"v": with_nulls(blobs, pa.binary_view())})
    cases["binary/fixed"] = pa.table({"v": with_nulls([bytes([i] * 4) for i in range(n)], pa.binary(4))})
    cases["decimal/128"] = pa.table({"v": with_nulls([decimal.Decimal(f"{i}.25") for i in ints], pa.decimal128(10, 2))})
    cases["decimal/256"] = pa.table({"v": with_nulls([decimal.Decimal(f"1{i % 10}" * 15 + ".12345") for i in range(n)],
                                                     pa.decimal256(40, 5))})
    days = [datetime.date(2020, 1, 1) + datetime.timedelta(days=i * 400) for i in range(n)]
    cases["temporal/date32"] = pa.table({"v": with_nulls(days, pa.date32())})
    cases["temporal/date64"] = pa.table({"v": with_nulls(days, pa.date64())})
    cases["temporal/times"] = pa.table({
        "s": with_nulls(list(range(n)), pa.time32("s")),
        "ms": with_nulls(list(range(n)), pa.time32("ms")),
        "us": with_nulls(list(range(n)), pa.time64("us")),
        "ns": with_nulls(list(range(n)), pa.time64("ns")),
    })
    stamps = [1_700_000_000 + i * 3600 for i in range(n)]
    cases["temporal/timestamps"] = pa.table({
        "naive_s": with_nulls(stamps, pa.timestamp("s")),
        "utc_ms": with_nulls([s * 1000 for s in stamps], pa.timestamp("ms", tz="UTC")),
        "ny_us": with_nulls([s * 10**6 for s in stamps], pa.timestamp("us", tz="America/New_York")),
        "offset_ns": with_nulls([s * 10**9 for s in stamps], pa.timestamp("ns", tz="+05:30")),
    })
    cases["temporal/durations"] = pa.table({u: with_nulls(ints, pa.duration(u)) for u in ["s", "ms", "us", "ns"]})
    cases["temporal/intervals"] = pa.table({
        "mdn": with_nulls([pa.MonthDayNano([i, i * 2, i * 1000]) for i in range(n)], pa.month_day_nano_interval()),
    })
    lists = [[1, 2], [], None, [3], [4, None, 5], [6], [7, 8, 9]]
    cases["nested/list"] = pa.table({"v": pa.array(lists, pa.list_(pa.int32()))})
    cases["nested/large_list"] = pa.table({"v": pa.array([None if l is None else [str(x) for x in l] for l in lists],
                                                         pa.large_list(pa.string()))})
    cases["nested/fixed_size_list"] = pa.table({"v": with_nulls([[float(i), i + 0.5, -i] for i in range(n)],
                                                                 pa.list_(pa.float32(), 3))})
    cases["nested/list_view"] = pa.table({"v": pa.array(lists, pa.list_view(pa.int32()))})
    st = pa.struct([("a", pa.int32()), ("b", pa.string()), ("c", pa.struct([("d", pa.bool_())]))])
    cases["nested/struct"] = pa.table({"v": pa.array(
        [None if i % 3 == 1 else {"a": i, "b": str(i) if i % 2 else None, "c": {"d": i % 2 == 0}} for i in range(n)], st)})
    cases["nested/map"] = pa.table({"v": pa.array(
        [None if i % 3 == 1 else [(f"k{j}", j if j % 2 else None) for j in range(i)] for i in range(n)],
        pa.map_(pa.string(), pa.int64()))})
    cases["union/sparse"] = pa.table({"v": pa.UnionArray.from_sparse(
        pa.array([0, 1, 0, 1, 0, 1, 0], pa.int8()),
        [with_nulls(ints, pa.int64()), with_nulls(words, pa.string())], ["i", "s"])})
    cases["union/dense"] = pa.table({"v": pa.UnionArray.from_dense(
        pa.array([0, 1, 0, 1, 0, 1, 0], pa.int8()), pa.array([0, 0, 1, 1, 2, 2, 3], pa.int32()),
        [with_nulls([1, 2, 3, 4], pa.int64()), with_nulls(["a", "b", "c"], pa.string())], ["i", "s"])})
    cases["dictionary/flat"] = pa.table({"v": with_nulls(["a", "b", "a", "c", "b", "a", "c"], pa.string()).dictionary_encode()})
    cases["dictionary/int8_index"] = pa.table({"v": pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 2, 0, 1, 2], pa.int8()), pa.array(["x", "y", "z"]))})
    dict_list = pa.ListArray.from_arrays(pa.array([0, 2, 2, 5, 7], pa.int32()),
                                         with_nulls(["p", "q", "p", "r", "q", "p", "r"], pa.string()).dictionary_encode())
    cases["dictionary/in_list"] = pa.table({"v": dict_list})
    cases["dictionary/in_struct"] = pa.table({"v": pa.StructArray.from_arrays(
        [with_nulls(["u", "v", "u", "w", "v", "u", "w"], pa.string()).dictionary_encode(), with_nulls(ints, pa.int16())],
        ["d", "n"])})
    cases["null"] = pa.table({"v": pa.nulls(n), "w": with_nulls(ints, pa.int32())})
    cases["run_end_encoded"] = pa.table({"v": pa.RunEndEncodedArray.from_arrays(
        pa.array([2, 5, 7], pa.int32()), pa.array(["a", None, "b"]))})
    schema = pa.schema([pa.field("v", pa.int32(), metadata={"unit": "ms", "ü": "ß"}),
                        pa.field("w", pa.string(), nullable=False)],
                       metadata={"origin": "tierflight-test", "empty": ""})
    cases["metadata"] = pa.table({"v": with_nulls(ints, pa.int32()), "w": pa.array(words)}, schema=schema)
    return cases


def split(table, parts=3):
    """Several batches, so multi-batch replay and per-batch metadata are exercised."""
    n = table.num_rows
    step = max(1, -(-n // parts))
    return [b for b in table.to_batches(max_chunksize=step)] or [pa.record_batch([], schema=table.schema)]


def put(client, path, schema, batches, options=None, sleep=0):
    writer, reader = client.do_put(fl.FlightDescriptor.for_path(*path.split("/")), schema, options=options)
    acks = []
    for i, batch in enumerate(batches):
        if sleep:
            time.sleep(sleep)
        meta = f"batch-{i}".encode()
        writer.write_with_metadata(batch, meta)
        buf = reader.read()
        acks.append(buf.to_pybytes() if buf is not None else None)
    writer.close()
    return acks


def read_chunks(reader, batches, metas):
    """Every batch of a DoGet stream, and each one's app_metadata (None when it has none)."""
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            return
        batches.append(chunk.data)
        metas.append(chunk.app_metadata.to_pybytes() if chunk.app_metadata is not None else None)


def fetch(client, location, path):
    """GetFlightInfo, then DoGet from the returned endpoint (its location if it names one)."""
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")))
    batches, metas = [], []
    for endpoint in info.endpoints:
        target = fl.connect(endpoint.locations[0]) if endpoint.locations else client
        reader = target.do_get(endpoint.ticket)
        schema = reader.schema
        read_chunks(reader, batches, metas)
    return info, schema, batches, metas


def roundtrip(client, location, path, table, batches=None, options=None, bits_only=False):
    batches = batches if batches is not None else split(table)
    acks = put(client, path, table.schema, batches, options=options)
    info, schema, got, metas = fetch(client, location, path)
    problems = []
    expected_meta = [f"batch-{i}".encode() for i in range(len(batches))]
    if acks != expected_meta:
        problems.append(f"PutResult acks {acks[:3]}... != sent metadata")
    if not schema.equals(table.schema, check_metadata=True):
        problems.append(f"schema differs: {schema} vs {table.schema}")
    if not info.schema.equals(table.schema, check_metadata=True):
        problems.append("FlightInfo schema differs")
    if info.total_records != table.num_rows:
        problems.append(f"total_records {info.total_records} != {table.num_rows}")
    if len(got) != len(batches):
        problems.append(f"{len(got)} batches back, {len(batches)} sent")
    for i, (a, b) in enumerate(zip(batches, got)):
        if not bits_only and not a.equals(b, check_metadata=True):
            problems.append(f"batch {i} differs")
            break
        if a.serialize() != b.serialize():
            problems.append(f"batch {i} is not bit-exact")
            break
    if metas != expected_meta:
        problems.append(f"app_metadata back {metas[:3]}... != sent")
    back = pa.Table.from_batches(got, schema=schema)
    if not bits_only and not back.equals(table, check_metadata=True):
        problems.append("table differs")
    return {"ok": not problems, "problems": problems, "rows": table.num_rows, "batches": len(got),
            "total_bytes": info.total_bytes}


def cmd_types(client, args):
    out = {}
    for name, table in type_cases().items():
        try:
            out[name] = roundtrip(client, args.location, f"types/{name}", table, bits_only=name == "float/nan")
        except Exception as e:  # report per case so one failure does not hide the others
            out[name] = {"ok": False, "problems": [f"{type(e).__name__}: {e}"]}
    return out


def cmd_special(client, args):
    out = {}
    t = type_cases()["int/int64"]
    out["zero_rows"] = roundtrip(client, args.location, "special/zero_rows", t.slice(0, 0),
                                 batches=[pa.record_batch([pa.array([], pa.int64())], schema=t.schema)])
    out["schema_only"] = roundtrip(client, args.location, "special/schema_only", t.slice(0, 0), batches=[])
    # Each batch adds dictionary entries, so the writer emits delta dictionaries.
    delta_batches = []
    for k in range(1, 4):
        arr = pa.array([f"w{j}" for j in range(k * 3)]).dictionary_encode()
        delta_batches.append(pa.record_batch([arr], names=["v"]))
    opts = fl.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True))
    delta_table = pa.Table.from_batches(delta_batches)
    out["delta_dictionary"] = roundtrip(client, args.location, "special/delta", delta_table, batches=delta_batches,
                                        options=opts)
    # Dictionaries that change between batches (replacement, not delta).
    repl = [pa.record_batch([pa.array(v).dictionary_encode()], names=["v"]) for v in (["a", "b"], ["c", "d", "c"])]
    out["dictionary_replacement"] = roundtrip(client, args.location, "special/replacement",
                                              pa.Table.from_batches(repl), batches=repl)
    return out


def cmd_many(client, args):
    n = args.batches
    schema = pa.schema([("i", pa.int32()), ("s", pa.string())])
    batches = [pa.record_batch([pa.array([i], pa.int32()), pa.array([f"r{i}"])], schema=schema) for i in range(n)]
    return roundtrip(client, args.location, "special/many", pa.Table.from_batches(batches), batches=batches)


def cmd_large(client, args):
    rows_per_batch = 1 << 20  # 8 MiB of int64 per batch
    count = (args.mib << 20) // (8 * rows_per_batch)
    batches = [pa.record_batch([pa.array(np.arange(i * rows_per_batch, (i + 1) * rows_per_batch, dtype=np.int64))],
                               names=["v"]) for i in range(count)]
    table = pa.Table.from_batches(batches)
    start = time.time()
    result = roundtrip(client, args.location, "special/large", table, batches=batches)
    result["seconds"] = time.time() - start
    result["bytes"] = table.nbytes
    return result


def cmd_bad_paths(client, args):
    out = {}
    schema = pa.schema([("v", pa.int32())])
    for name, path in {"empty_segment": ["a", "", "b"], "dotdot": ["a", "..", "b"], "dot": ["."],
                       "control": ["a\x01b"], "nul": ["a\x00b"], "too_long": ["x" * 1025],
                       "trailing_slash": ["a/"]}.items():
        try:
            w, _ = client.do_put(fl.FlightDescriptor.for_path(*path), schema)
            w.write_batch(pa.record_batch([pa.array([1], pa.int32())], schema=schema))
            w.close()
            out[name] = {"error": None}
        except fl.FlightError as e:
            out[name] = {"error": type(e).__name__, "message": str(e)}
        except pa.ArrowException as e:
            out[name] = {"error": type(e).__name__, "message": str(e)}
    return out


def cmd_put_then_die(client, args):
    """Starts a put, sends some batches, then exits without closing (the test kills us)."""
    schema = pa.schema([("v", pa.int64())])
    w, _ = client.do_put(fl.FlightDescriptor.for_path(*args.path.split("/")), schema)
    batch = pa.record_batch([pa.array(np.arange(1 << 16, dtype=np.int64))], schema=schema)
    for _ in range(args.batches):
        w.write_batch(batch)
    print(json.dumps({"sent": args.batches}), flush=True)
    time.sleep(600)


def cmd_get_partial(client, args):
    """Reads one chunk of a flight, then drops the stream."""
    reader = client.do_get(fl.Ticket(args.path.encode()))
    chunk = reader.read_chunk()
    rows = chunk.data.num_rows
    reader.cancel()
    return {"rows": rows}


def cmd_range(client, args):
    """A batch-range ticket replays the dictionaries the range needs, then its batches."""
    batches = [pa.record_batch([pa.array([f"w{j}" for j in range(k * 2)]).dictionary_encode(),
                                pa.array(range(k * 2), pa.int32())], names=["d", "n"]) for k in range(1, 5)]
    opts = fl.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True))
    put(client, "range/f", batches[0].schema, batches, options=opts)
    out = {}
    for lo, hi in [(0, 4), (1, 3), (3, 4), (2, 2)]:
        ticket = fl.Ticket(json.dumps({"path": "range/f", "from": lo, "to": hi}).encode())
        table = client.do_get(ticket).read_all()
        want = pa.Table.from_batches(batches[lo:hi], schema=batches[0].schema)
        out[f"{lo}-{hi}"] = {"rows": table.num_rows, "equal": table.equals(want)}
    return out


def cmd_oversize_no_acks(client, args):
    """Puts batches with app_metadata without reading the acknowledgements, then one batch
    over the server's message size limit, then more; counts the errors each put ends with
    (a put the server never answers ends with the 10 s deadline)."""
    small = pa.record_batch([pa.array(range(1000), pa.int32())], names=["v"])
    big = pa.record_batch([pa.array(range(600_000), pa.int32())], names=["v"])
    # --mib N: instead of one batch over the message size, N MiB of batches under it
    # (to overrun the server's capacity rather than its message size limit).
    under = pa.record_batch([pa.array(range(200_000), pa.int32())], names=["v"])
    outcomes = {}
    for i in range(args.batches):
        try:
            w, _ = client.do_put(fl.FlightDescriptor.for_path(f"{args.path}/{i}"), small.schema,
                                 options=fl.FlightCallOptions(timeout=10))
            for k in range(3):
                w.write_with_metadata(small, f"m{k}".encode())
            if args.mib == 1024:
                w.write_with_metadata(big, b"big")
            else:
                for k in range(args.mib * 1024 * 1024 // under.nbytes + 1):
                    w.write_with_metadata(under, f"u{k}".encode())
            for k in range(3):
                w.write_with_metadata(small, f"n{k}".encode())
            w.close()
            key = "ok"
        except Exception as e:
            key = f"{type(e).__name__}: {str(e)[:120]}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def cmd_replaced(client, args):
    """Reads the first endpoint of a multi-endpoint flight, replaces the flight, then reads
    the other endpoints of the old FlightInfo: they read the old version until their
    expiration_time, never the new one, and answer NOT_FOUND after it."""
    def version(k):
        schema = pa.schema([("v", pa.int64()), ("k", pa.int64())])
        return [pa.record_batch([pa.array(np.arange(b * 65536, (b + 1) * 65536) + k * 10**9),
                                 pa.array(np.full(65536, k))], schema=schema) for b in range(6)]
    put(client, "rep/f", version(1)[0].schema, version(1))
    info = client.get_flight_info(fl.FlightDescriptor.for_path("rep/f"))
    out = {"endpoints": len(info.endpoints)}
    first = client.do_get(info.endpoints[0].ticket).read_all()
    out["first_version"] = sorted(set(first.column("k").to_pylist()))
    put(client, "rep/f", version(2)[0].schema, version(2))
    rest = []
    for endpoint in info.endpoints[1:]:
        try:
            t = client.do_get(endpoint.ticket).read_all()
            rest.append({"rows": t.num_rows, "versions": sorted(set(t.column("k").to_pylist()))})
        except Exception as e:
            rest.append(error_of(e))
    out["rest"] = rest
    expiration = info.endpoints[0].expiration_time
    out["expires_in"] = (expiration.as_py() - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    time.sleep(max(0.0, out["expires_in"]) + 0.2)
    late = []
    for endpoint in info.endpoints[1:]:
        try:
            client.do_get(endpoint.ticket).read_all()
            late.append("read")
        except Exception as e:
            late.append(error_of(e))
    out["late"] = late
    fresh = client.get_flight_info(fl.FlightDescriptor.for_path("rep/f"))
    tables = [client.do_get(e.ticket).read_all() for e in fresh.endpoints]
    out["fresh"] = {"rows": sum(t.num_rows for t in tables),
                    "versions": sorted({k for t in tables for k in t.column("k").to_pylist()})}
    ticket = json.loads(fresh.endpoints[0].ticket.ticket)
    for name, lo, hi in [("past_end", 5, 9), ("inverted", 3, 2)]:
        try:
            client.do_get(fl.Ticket(json.dumps({**ticket, "from": lo, "to": hi}).encode())).read_all()
            out[name] = "read"
        except Exception as e:
            out[name] = error_of(e)
    return out


def cmd_actions(client, args):
    schema = pa.schema([("v", pa.int32())])
    for path in ["act/a/1", "act/a/2", "act/ab", "act/b"]:
        put(client, path, schema, [pa.record_batch([pa.array([1, 2], pa.int32())], schema=schema)])
    body = lambda r: json.loads(bytes(r.body.to_pybytes()))
    listed = lambda prefix: sorted("/".join(p.decode() for p in f.descriptor.path)
                                   for f in client.list_flights(prefix.encode()))
    out = {"types": sorted(a.type for a in client.list_actions())}
    out["list_act_a"] = listed("act/a")
    out["stats_before"] = [body(r) for r in client.do_action(fl.Action("stats", b""))][0]["classes"]
    out["delete"] = [body(r) for r in client.do_action(fl.Action("delete", b'{"path": "act/b"}'))]
    out["delete_again"] = [body(r) for r in client.do_action(fl.Action("delete", b'{"path": "act/b"}'))]
    out["delete_prefix"] = [body(r) for r in client.do_action(fl.Action("delete-prefix", b'{"prefix": "act/a"}'))]
    for name, raw in [("everything_refused", b'{"prefix": ""}'), ("slash_refused", b'{"prefix": "/"}')]:
        try:
            list(client.do_action(fl.Action("delete-prefix", raw)))
            out[name] = "deleted"
        except pa.ArrowException as e:
            out[name] = str(e)
    out["left"] = listed("act")
    try:
        list(client.do_action(fl.Action("bogus", b"")))
        out["bogus"] = None
    except pa.ArrowException as e:
        out["bogus"] = str(e)
    try:
        list(client.do_action(fl.Action("delete", b"not json")))
        out["bad_body"] = None
    except pa.ArrowException as e:
        out["bad_body"] = str(e)
    return out


def seeded_batches(seed, kib, batch_kib):
    """A deterministic flight: int64 values and a dictionary column, in batches of about batch_kib."""
    rng = np.random.default_rng(seed)
    rows = max(1, (kib << 10) // 8)
    per = max(1, (batch_kib << 10) // 8)
    values = rng.integers(-(1 << 62), 1 << 62, size=rows, dtype=np.int64)
    words = pa.array([f"w{seed % 7}-{i % 5}" for i in range(rows)]).dictionary_encode()
    table = pa.table({"v": values, "d": words})
    return table.to_batches(max_chunksize=per)


def cmd_concurrent_reads(client, args):
    """Several flights of different batch sizes, read at once by several threads, each
    result compared with what was put (catches a read buffer reused while still sent)."""
    import threading
    flights = {f"{args.path}/{i}": seeded_batches(100 + i, 16 << 10, kib)
               for i, kib in enumerate((700, 1000, 1300, 2100))}
    for path, batches in flights.items():
        put(client, path, batches[0].schema, batches)
    problems = []
    gets = [0]

    def reader(seed):
        c = fl.connect(args.location)
        rng = np.random.default_rng(seed)
        for _ in range(args.batches):
            path = list(flights)[rng.integers(len(flights))]
            got = c.do_get(fl.Ticket(path.encode())).read_all()
            gets[0] += 1
            if not got.equals(pa.Table.from_batches(flights[path])):
                problems.append(f"{path} came back different")

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"gets": gets[0], "problems": problems}


def error_of(e):
    return {"error": type(e).__name__, "message": str(e)}


def run_op(client, op, location=None):
    path = op.get("path", "")
    kind = op["op"]
    if kind == "put":
        batches = seeded_batches(op["seed"], op["kib"], op.get("batch_kib", 64))
        options = None
        if op.get("hint"):
            options = fl.FlightCallOptions(headers=[(b"x-tierflight-flight-size", str(op["hint"]).encode())])
        if op.get("codec"):
            options = fl.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(compression=op["codec"]))
        put(client, path, batches[0].schema, batches, options=options, sleep=op.get("sleep", 0))
        return {"ok": True, "batches": len(batches)}
    if kind == "check":
        batches = seeded_batches(op["seed"], op["kib"], op.get("batch_kib", 64))
        info, schema, got, metas = fetch(client, None, path)
        problems = []
        if len(got) != len(batches):
            problems.append(f"{len(got)} batches back, {len(batches)} sent")
        for i, (a, b) in enumerate(zip(batches, got)):
            if a.serialize() != b.serialize():
                problems.append(f"batch {i} is not bit-exact")
                break
        if metas != [f"batch-{i}".encode() for i in range(len(batches))]:
            problems.append("app_metadata differs")
        return {"ok": not problems, "problems": problems, "endpoints": len(info.endpoints),
                "rows": sum(b.num_rows for b in got)}
    if kind == "check-columns":
        want = pa.Table.from_batches(seeded_batches(op["seed"], op["kib"], op.get("batch_kib", 64))).select(op["columns"])
        ticket = json.dumps({"path": path, "columns": op["columns"]}).encode()
        got = client.do_get(fl.Ticket(ticket)).read_all()
        return {"ok": got.equals(want), "rows": got.num_rows}
    if kind == "put-part":
        # Partition `index` of a dataset, each batch with app_metadata naming it.
        table = dataset_part(op["seed"], op["index"])
        opts = fl.FlightCallOptions(headers=[(b"x-tierflight-partition", f"{op['index']}/{op['count']}".encode())])
        writer, _ = client.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, opts)
        for i, batch in enumerate(table.to_batches(max_chunksize=1000)):
            writer.write_with_metadata(batch, pa.py_buffer(f"p{op['index']}-b{i}".encode()))
        writer.close()
        return {"ok": True}
    if kind == "read-plain":
        # A dataset's plain path as one stream: every batch with its app_metadata.
        batches, metas = [], []
        read_chunks(client.do_get(fl.Ticket(path.encode())), batches, metas)
        want = pa.concat_tables([dataset_part(op["seed"], i) for i in range(op["count"])])
        return {"equal": pa.Table.from_batches(batches).to_pylist() == want.to_pylist(),
                "metas": [m.decode() if m is not None else None for m in metas]}
    if kind == "info":
        info = client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")))
        return {"records": info.total_records, "bytes": info.total_bytes, "endpoints": len(info.endpoints)}
    if kind == "list":
        return sorted("/".join(p.decode() for p in f.descriptor.path)
                      for f in client.list_flights(op.get("prefix", "").encode()))
    if kind == "get":
        return {"rows": client.do_get(fl.Ticket(path.encode())).read_all().num_rows}
    if kind == "get-limited":
        # Like a Go or Rust client: refuse any message over 4 MiB.
        limited = fl.connect(location, generic_options=[("grpc.max_receive_message_length", 4 << 20)])
        reader = limited.do_get(fl.Ticket(path.encode()))
        chunks = []
        while True:
            try:
                chunks.append(reader.read_chunk())
            except StopIteration:
                break
        table = pa.Table.from_batches([c.data for c in chunks])
        want = pa.Table.from_batches(seeded_batches(op["seed"], op["kib"], op.get("batch_kib", 64)))
        return {"equal": table.equals(want), "rows": table.num_rows, "batches": len(chunks),
                "metas": [c.app_metadata.to_pybytes().decode() if c.app_metadata is not None else None
                          for c in chunks][:3]}
    if kind == "action":
        body = json.dumps(op.get("body", {})).encode()
        return [json.loads(bytes(r.body.to_pybytes())) for r in client.do_action(fl.Action(op["type"], body))]
    if kind == "stats":
        body = b" " * op.get("pad", 0)  # a body stats ignores: only its size matters
        return [json.loads(bytes(r.body.to_pybytes())) for r in client.do_action(fl.Action("stats", body))][0]
    raise ValueError(f"unknown op {kind}")


def cmd_read_table(client, args):
    """Reads a flight through its endpoints (each at its location) and prints its schema and
    rows, as pyarrow decodes them (a big-endian stream comes back in native byte order)."""
    info, schema, batches, _ = fetch(client, args.location, args.path)
    table = pa.Table.from_batches(batches, schema=schema)
    return {"schema": [[f.name, str(f.type)] for f in schema], "rows": table.to_pylist(),
            "records": info.total_records}


def cmd_churn(client, args):
    """Writers replace a few paths over and over while readers read them, for
    `seconds`: by the endpoints of one GetFlightInfo (each endpoint at its location) and by
    plain path. Counts whole reads, NOT_FOUND answers for tickets before their
    expiration_time (stale tickets), reads that mixed versions, and any other error."""
    import threading
    opts = json.loads(args.script)
    paths = [f"churn/p{i}" for i in range(opts.get("paths", 3))]
    seconds, kib = opts.get("seconds", 10), opts.get("kib", 4096)
    stop = time.time() + seconds
    lock = threading.Lock()
    counts = {"puts": 0, "endpoint_reads": 0, "path_reads": 0, "stale": 0, "stale_after_expiry": 0,
              "mixed": 0, "errors": []}

    def table(version):
        rows = (kib << 10) // 16
        return pa.table({"k": pa.array(np.full(rows, version, dtype=np.int64)),
                         "v": pa.array(np.arange(rows, dtype=np.int64))})

    def writer(w):
        c = fl.connect(args.location)
        n = 0
        while time.time() < stop:
            n += 1
            path = paths[(w + n) % len(paths)]
            t = table(w * 1_000_000 + n)
            try:
                writer_, _ = c.do_put(fl.FlightDescriptor.for_path(path), t.schema)
                for b in t.to_batches(max_chunksize=16384):
                    writer_.write_batch(b)
                writer_.close()
                with lock:
                    counts["puts"] += 1
            except Exception as e:  # noqa: BLE001 - counted, the loop goes on
                with lock:
                    counts["errors"].append(f"put: {type(e).__name__}: {e}"[:300])

    def reader(r):
        c = fl.connect(args.location)
        n = 0
        while time.time() < stop:
            n += 1
            path = paths[(r + n) % len(paths)]
            try:
                if n % 4 == 0:
                    t = c.do_get(fl.Ticket(path.encode())).read_all()
                    with lock:
                        counts["path_reads"] += 1
                        if len(set(t.column("k").to_pylist())) > 1:
                            counts["mixed"] += 1
                    continue
                info = c.get_flight_info(fl.FlightDescriptor.for_path(path))
            except pa.ArrowKeyError:
                continue  # not written yet
            except fl.FlightError:
                continue
            except Exception as e:  # noqa: BLE001
                with lock:
                    counts["errors"].append(f"info: {type(e).__name__}: {e}"[:300])
                continue
            versions = set()
            for endpoint in info.endpoints:
                target = fl.connect(endpoint.locations[0]) if endpoint.locations else c
                try:
                    t = target.do_get(endpoint.ticket).read_all()
                    versions |= set(t.column("k").to_pylist())
                    with lock:
                        counts["endpoint_reads"] += 1
                except (fl.FlightError, pa.ArrowException) as e:
                    expiry = endpoint.expiration_time
                    before = expiry is None or datetime.datetime.now(datetime.timezone.utc) < expiry.as_py()
                    with lock:
                        if "was replaced" in str(e):
                            counts["stale" if before else "stale_after_expiry"] += 1
                        else:
                            counts["errors"].append(f"get: {type(e).__name__}: {e}"[:300])
            if len(versions) > 1:
                with lock:
                    counts["mixed"] += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(opts.get("writers", 3))]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(opts.get("readers", 4))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reads = counts["endpoint_reads"] + counts["stale"] + counts["stale_after_expiry"]
    counts["stale_rate"] = counts["stale"] / reads if reads else 0
    return counts


def field1(payload):
    """A protobuf message holding `payload` as its field 1 (length-delimited)."""
    n, length = len(payload), b""
    while n > 0x7F:
        length += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return b"\x0a" + length + bytes([n]) + payload


def cancel_status(body):
    """CancelFlightInfoResult's status (field 1, a varint; absent means 0)."""
    return body[1] if len(body) >= 2 and body[0] == 0x08 else 0


def cmd_std_actions(client, args):
    """The protocol's standard actions through do_action (pyarrow has no helpers for them):
    RenewFlightEndpoint and CancelFlightInfo, their bodies encoded as protobuf here."""
    import threading
    out = {"listed": sorted(a.type for a in client.list_actions() if a.type[0].isupper())}
    schema = pa.schema([("v", pa.int64())])
    put(client, "std/a", schema, [pa.record_batch([pa.array([1, 2, 3])], schema=schema)])
    info = client.get_flight_info(fl.FlightDescriptor.for_path("std/a"))
    endpoint = info.endpoints[0]
    time.sleep(1.1)
    results = list(client.do_action(fl.Action("RenewFlightEndpoint", field1(endpoint.serialize()))))
    renewed = fl.FlightEndpoint.deserialize(results[0].body.to_pybytes())
    out["renew"] = {"same_ticket": renewed.ticket == endpoint.ticket,
                    "later_by_s": (renewed.expiration_time.as_py() - endpoint.expiration_time.as_py()).total_seconds()}
    put(client, "std/a", schema, [pa.record_batch([pa.array([9])], schema=schema)])
    out["old_ticket_rows"] = client.do_get(renewed.ticket).read_all().num_rows
    cancel = lambda i: cancel_status(list(client.do_action(fl.Action("CancelFlightInfo", field1(i.serialize()))))[0]
                                     .body.to_pybytes())
    out["cancel_landed"] = cancel(info)
    action_json(client, "reserve", {"path": "std/wait", "owner": "me", "heartbeatSeconds": 30})
    waited = {}

    def waiter():
        started = time.time()
        try:
            client.get_flight_info(fl.FlightDescriptor.for_path("std/wait"),
                                   fl.FlightCallOptions(headers=[(b"x-tierflight-wait-ms", b"20000")]))
            waited["result"] = "info"
        except Exception as e:  # noqa: BLE001 - the test asserts on it
            waited["result"] = error_of(e)
        waited["seconds"] = time.time() - started

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    pending = fl.FlightInfo(schema, fl.FlightDescriptor.for_path("std/wait"), [], -1, -1)
    out["cancel_reserved"] = cancel(pending)
    t.join()
    out["waiter"] = waited
    try:
        cancel(fl.FlightInfo(schema, fl.FlightDescriptor.for_path("std/nobody"), [], -1, -1))
        out["cancel_unknown"] = "answered"
    except Exception as e:  # noqa: BLE001
        out["cancel_unknown"] = error_of(e)
    try:
        list(client.do_action(fl.Action("RenewFlightEndpoint", b"\xff\xff")))
        out["renew_garbage"] = "answered"
    except Exception as e:  # noqa: BLE001
        out["renew_garbage"] = error_of(e)
    return out


def cmd_ops(client, args):
    """Runs a JSON list of operations in one process; each answers a result or its error."""
    out = []
    for op in json.loads(args.script):
        try:
            out.append(run_op(client, op, args.location))
        except (fl.FlightError, pa.ArrowException) as e:
            out.append(error_of(e))
    return out


def cmd_put_many(client, args):
    """Puts flights one after another, printing a line per acknowledged put (the test kills
    the server at some point; every printed flight must survive)."""
    for op in json.loads(args.script):
        try:
            run_op(client, op)
        except Exception as e:  # the server went away: stop, the test knows what was acked
            print(json.dumps({"error": str(e)[:200]}), flush=True)
            return {"done": False}
        print(json.dumps({"acked": op["path"]}), flush=True)
    return {"done": True}


def cmd_ipc_objects(client, args):
    """Reads durable objects (Arrow IPC streams) with pyarrow.ipc.open_stream: rows of each."""
    out = {}
    for file in json.loads(args.script):
        with pa.OSFile(file, "rb") as f:
            out[file] = pa.ipc.open_stream(f).read_all().num_rows
    return out


def cmd_ipc_files(client, args):
    """Opens tier files with pyarrow.ipc and compares them with the type case they hold."""
    cases = type_cases()
    out = {}
    for name, (file, layout) in json.loads(args.script).items():
        try:
            with pa.OSFile(file, "rb") as f:
                reader = pa.ipc.open_file(f) if layout == "file" else pa.ipc.open_stream(f)
                table = reader.read_all()
            want = cases[name]
            same = table.equals(want, check_metadata=True) if name != "float/nan" else table.num_rows == want.num_rows
            out[name] = {"ok": same, "rows": table.num_rows, "batches": len(table.to_batches())}
        except Exception as e:
            out[name] = {"ok": False, **error_of(e)}
    return out


def cmd_read_back(client, args):
    """Reads every flight named in the file `--script` (a JSON list of paths) and checks
    that pyarrow can read and validate it; reports the ones it cannot."""
    with open(args.script) as f:
        paths = json.load(f)
    failures = {}
    rows = 0
    for path in paths:
        try:
            info = client.get_flight_info(fl.FlightDescriptor.for_path(path))
            for endpoint in info.endpoints:
                table = client.do_get(endpoint.ticket).read_all()
                table.validate()
                rows += table.num_rows
        except Exception as e:
            failures[path] = error_of(e)
    return {"read": len(paths), "rows": rows, "failures": failures}


def read_ipc_file(file):
    """An Arrow IPC stream or file (told apart by the file format's magic)."""
    with open(file, "rb") as f:
        is_file = f.read(6) == b"ARROW1"
    with pa.OSFile(file, "rb") as f:
        return (pa.ipc.open_file(f) if is_file else pa.ipc.open_stream(f)).read_all()


def cmd_ipc_rows(client, args):
    """Rows of an Arrow IPC stream or file on disk (read by pyarrow)."""
    return {"rows": read_ipc_file(args.path).num_rows}


def cmd_write_ipc(client, args):
    """Writes the herd table for `--path` as an Arrow IPC stream and file: `--script` ["x.arrows", "x.arrow"]."""
    stream_file, file_file = json.loads(args.script)
    table = herd_table(args.path)
    with pa.ipc.new_stream(stream_file, table.schema) as w:
        w.write_table(table, max_chunksize=10_000)
    with pa.ipc.new_file(file_file, table.schema) as w:
        w.write_table(table, max_chunksize=10_000)
    return {"rows": table.num_rows}


def cmd_put_ipc_file(client, args):
    """Puts the Arrow IPC stream file `--script` as flight `--path`, batch by batch."""
    table = read_ipc_file(args.script)
    writer, _ = client.do_put(fl.FlightDescriptor.for_path(*args.path.split("/")), table.schema)
    for batch in table.to_batches():
        writer.write_batch(batch)
    writer.close()
    return {"rows": table.num_rows}


def cmd_flight_equals_file(client, args):
    """Reads flight `--path` (every endpoint) and compares it, schema and values, with the IPC file `--script`."""
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*args.path.split("/")))
    got = pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])
    want = read_ipc_file(args.script)
    return {"equal": got.equals(want, check_metadata=True), "rows": got.num_rows, "endpoints": len(info.endpoints)}


def cmd_files_equal(client, args):
    """Compares two Arrow IPC stream files (`--script` is a JSON pair), schema and values."""
    a, b = json.loads(args.script)
    ta, tb = read_ipc_file(a), read_ipc_file(b)
    return {"equal": ta.equals(tb, check_metadata=True), "rows": tb.num_rows}


def action_json(client, verb, body):
    return [json.loads(bytes(r.body.to_pybytes())) for r in client.do_action(fl.Action(verb, json.dumps(body).encode()))]


def herd_table(path):
    """The flight every herd client would compute: the same for everyone, several batches and a dictionary."""
    n = 50_000
    ids = pa.array(range(n), pa.int64())
    names = pa.array([f"{path} row {i}" for i in range(n)])
    colour = pa.array(["red", "green", "blue", "red"] * (n // 4)).dictionary_encode()
    return pa.table({"id": ids, "name": names, "colour": colour}).combine_chunks()


def read_whole(client, path, options=None):
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")), options=options)
    answered = time.monotonic()
    tables = [client.do_get(e.ticket, options=options).read_all() for e in info.endpoints]
    return pa.concat_tables(tables), answered, info


def ipc_digest(table):
    import hashlib
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def cmd_herd(client, args):
    """Cache-fill coordination as clients use it (README): `--script` {"path", "clients",
    "compute_ms", "wait_ms", "locations"?}. All clients start together and reserve the
    missing path; the one that acquires computes the table (sleeps compute_ms) and puts it
    with x-tierflight-owner; the others read it with x-tierflight-wait-ms, which waits for
    the put. Clients are spread over `locations`. Reports how many computed, whether all
    read the same bytes, and how long after the owner's put returned each waiter had its answer."""
    import threading

    spec = json.loads(args.script)
    path, n = spec["path"], spec["clients"]
    locations = spec.get("locations") or [args.location]
    want = herd_table(path)
    want_digest = ipc_digest(want)
    barrier = threading.Barrier(n)
    lock = threading.Lock()
    computed, results, landed = [], [None] * n, {}

    def run(i):
        c = fl.connect(locations[i % len(locations)])
        owner = f"client-{i}"
        try:
            barrier.wait()
            r = action_json(c, "reserve", {"path": path, "owner": owner, "heartbeatSeconds": 10})[0]
            if r["status"] == "acquired":
                with lock:
                    computed.append(owner)
                time.sleep(spec["compute_ms"] / 1000)
                table = herd_table(path)
                opts = fl.FlightCallOptions(headers=[(b"x-tierflight-owner", owner.encode())])
                writer, _ = c.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, options=opts)
                writer.write_table(table, max_chunksize=10_000)
                writer.close()
                landed["at"] = time.monotonic()
                got, answered, _ = read_whole(c, path)
                results[i] = {"role": "owner", "digest": ipc_digest(got), "equal": got.equals(want)}
            else:
                opts = fl.FlightCallOptions(headers=[(b"x-tierflight-wait-ms", str(spec["wait_ms"]).encode())])
                got, answered, _ = read_whole(c, path, opts)
                results[i] = {"role": "waiter", "digest": ipc_digest(got), "equal": got.equals(want),
                              "answered": answered, "holder": r["owner"]}
        except Exception as e:
            results[i] = {"role": "failed", **error_of(e)}
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waiters = [r for r in results if r and r["role"] == "waiter"]
    lags = sorted(max(0.0, (r["answered"] - landed["at"]) * 1000) for r in waiters) if "at" in landed else []
    return {
        "clients": n,
        "computations": len(computed),
        "owners": sum(1 for r in results if r and r["role"] == "owner"),
        "waiters": len(waiters),
        "failed": [r for r in results if not r or r["role"] == "failed"],
        "same_bytes": all(r and r.get("digest") == want_digest for r in results),
        "all_equal": all(r and r.get("equal") for r in results),
        "holders": sorted({r["holder"] for r in waiters}),
        "p99_after_put_ms": lags[max(0, int(len(lags) * 0.99) - 1)] if lags else None,
        "max_after_put_ms": lags[-1] if lags else None,
    }


def cmd_owner_dies(client, args):
    """An owner reserves and dies (never puts, never heartbeats): `--script` {"path",
    "heartbeat", "wait_ms"}. A second client is held, waits, and once the reservation
    lapses (heartbeat x graceMultiplier) acquires it, computes and puts; a third reads it."""
    spec = json.loads(args.script)
    path = spec["path"]
    # With "locations": the owner dies on the first server, the others work on the last.
    elsewhere = (spec.get("locations") or [args.location])[-1]
    started = time.monotonic()
    dead = action_json(client, "reserve", {"path": path, "owner": "dies", "heartbeatSeconds": spec["heartbeat"]})[0]
    second = fl.connect(elsewhere)
    held = action_json(second, "reserve", {"path": path, "owner": "second", "heartbeatSeconds": 10})[0]
    opts = fl.FlightCallOptions(headers=[(b"x-tierflight-wait-ms", str(spec["wait_ms"]).encode())])
    try:
        read_whole(second, path, opts)
        waited = "found"
    except fl.FlightError as e:
        waited = type(e).__name__
    except pa.ArrowException as e:
        waited = type(e).__name__
    waited_s = time.monotonic() - started
    again = action_json(second, "reserve", {"path": path, "owner": "second", "heartbeatSeconds": 10})[0]
    table = herd_table(path)
    opts = fl.FlightCallOptions(headers=[(b"x-tierflight-owner", b"second")])
    writer, _ = second.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, options=opts)
    writer.write_table(table)
    writer.close()
    got, _, info = read_whole(fl.connect(elsewhere), path)
    meta = json.loads(info.app_metadata) if info.app_metadata else None
    return {
        "first": dead["status"], "held": held["status"], "held_by": held["owner"],
        "wait_ended_with": waited, "waited_s": round(waited_s, 2),
        "second_reserve": again["status"], "equal": got.equals(table), "metadata": meta,
    }


def cmd_wait_cancel(client, args):
    """A reserved path's waiter whose client gives up (a 1 s call timeout) before the flight lands:
    `--path`. Reports how the call ended."""
    spec = json.loads(args.script) if args.script != "[]" else {}
    reserver = fl.connect(spec["reserve_at"]) if "reserve_at" in spec else client
    action_json(reserver, "reserve", {"path": args.path, "owner": "slow", "heartbeatSeconds": 60})
    opts = fl.FlightCallOptions(timeout=1, headers=[(b"x-tierflight-wait-ms", b"60000")])
    started = time.monotonic()
    try:
        client.get_flight_info(fl.FlightDescriptor.for_path(*args.path.split("/")), options=opts)
        out = {"ended": "found"}
    except Exception as e:
        out = error_of(e)
    out["seconds"] = round(time.monotonic() - started, 2)
    return out


def cmd_info_metadata(client, args):
    """GetFlightInfo's app_metadata (JSON) for `--path`."""
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*args.path.split("/")))
    return json.loads(info.app_metadata)


def cmd_get_wait(client, args):
    """DoGet of a plain-path ticket with x-tierflight-wait-ms on a reserved, absent flight
    (`--path`): another client puts it as the owner 300 ms later; the DoGet gets it."""
    import threading

    path = args.path
    action_json(client, "reserve", {"path": path, "owner": "maker", "heartbeatSeconds": 30})
    table = herd_table(path)

    def make():
        time.sleep(0.3)
        c = fl.connect(args.location)
        opts = fl.FlightCallOptions(headers=[(b"x-tierflight-owner", b"maker")])
        writer, _ = c.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, options=opts)
        writer.write_table(table)
        writer.close()

    maker = threading.Thread(target=make)
    maker.start()
    started = time.monotonic()
    opts = fl.FlightCallOptions(headers=[(b"x-tierflight-wait-ms", b"20000")])
    got = client.do_get(fl.Ticket(path.encode()), options=opts).read_all()
    waited = time.monotonic() - started
    maker.join()
    return {"equal": got.equals(table), "waited_s": round(waited, 2)}


def cmd_security(client, args):
    """Authentication and permissions as pyarrow users meet them (`--script`: {"ca", "users":
    {name: password}, "ttl_s", "certs": {cn: [cert, key]}}). Each outcome is "ok", a value,
    or the exception class pyarrow raised (FlightUnauthenticatedError, FlightUnauthorizedError)."""
    spec = json.loads(args.script)
    ca = open(spec["ca"], "rb").read() if spec.get("ca") else None
    loc = args.location

    def connect(cert=None):
        kw = {"tls_root_certs": ca} if ca else {}
        if cert:
            kw["cert_chain"] = open(cert[0], "rb").read()
            kw["private_key"] = open(cert[1], "rb").read()
        return fl.connect(loc, **kw)

    def attempt(fn):
        try:
            value = fn()
            return "ok" if value is None else value
        except Exception as e:
            return {"error": type(e).__name__, "message": str(e).split("\n")[0][:300]}

    def login(name, password=None):
        c = connect()
        header = c.authenticate_basic_token(name, password or spec["users"][name])
        return c, fl.FlightCallOptions(headers=[header]), header

    def put_with(c, opts, path):
        table = pa.table({"v": pa.array([1, 2, 3], pa.int32())})
        w, _ = c.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, options=opts)
        w.write_table(table)
        w.close()

    def listed(c, opts):
        return sorted("/".join(p.decode() for p in f.descriptor.path) for f in c.list_flights(b"", options=opts))

    def act(c, opts, verb, body):
        return [json.loads(bytes(r.body.to_pybytes())) for r in c.do_action(fl.Action(verb, json.dumps(body).encode()), options=opts)]

    out = {}
    admin, aopts, _ = login("admin")
    for path in ["tenant1/a", "tenant2/b"]:
        put_with(admin, aopts, path)
    out["no_credentials"] = attempt(lambda: list(connect().list_flights()))
    out["bad_password"] = attempt(lambda: login("reader", "wrong password"))
    out["unknown_user"] = attempt(lambda: login("mallory", "whatever1"))
    reader, ropts, rheader = login("reader")
    out["token_header"] = [rheader[0].decode(), rheader[1].decode().split(" ")[0]]
    out["reader_list"] = attempt(lambda: listed(reader, ropts))
    out["reader_get"] = attempt(lambda: read_whole(reader, "tenant1/a", ropts)[0].num_rows)
    out["reader_get_other"] = attempt(lambda: read_whole(reader, "tenant2/b", ropts)[0].num_rows)
    out["reader_put"] = attempt(lambda: put_with(reader, ropts, "tenant1/x"))
    writer, wopts, _ = login("writer")
    out["writer_put"] = attempt(lambda: put_with(writer, wopts, "tenant1/w"))
    out["writer_put_other"] = attempt(lambda: put_with(writer, wopts, "tenant2/w"))
    out["writer_delete"] = attempt(lambda: act(writer, wopts, "delete", {"path": "tenant1/w"}))
    out["writer_delete_prefix"] = attempt(lambda: act(writer, wopts, "delete-prefix", {"prefix": "tenant1"}))
    out["writer_stats"] = attempt(lambda: act(writer, wopts, "stats", {}) and None)
    out["writer_reserve"] = attempt(lambda: act(writer, wopts, "reserve", {"path": "tenant1/r", "owner": "w", "heartbeatSeconds": 5})[0]["status"])
    out["admin_stats"] = attempt(lambda: act(admin, aopts, "stats", {}) and None)
    out["admin_list"] = attempt(lambda: listed(admin, aopts))
    token = rheader[1].decode()
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    out["tampered"] = attempt(lambda: list(reader.list_flights(options=fl.FlightCallOptions(headers=[(b"authorization", tampered.encode())]))))
    out["lowercase_scheme"] = attempt(lambda: len(list(reader.list_flights(options=fl.FlightCallOptions(headers=[(b"authorization", b"bearer " + token.split(" ", 1)[1].encode())])))))
    for cn, cert in (spec.get("certs") or {}).items():
        out[f"cert_{cn}"] = attempt(lambda: sorted("/".join(p.decode() for p in f.descriptor.path) for f in connect(cert).list_flights()))
    if spec.get("ttl_s"):
        time.sleep(spec["ttl_s"] + 1.5)
        out["expired"] = attempt(lambda: list(reader.list_flights(options=ropts)))
    return out


def cmd_tls_untrusted(client, args):
    """Connects with `--script` {"ca": path} as the only trusted root (or none) and lists flights."""
    spec = json.loads(args.script)
    kw = {"tls_root_certs": open(spec["ca"], "rb").read()} if spec.get("ca") else {}
    if spec.get("cert"):
        kw["cert_chain"] = open(spec["cert"][0], "rb").read()
        kw["private_key"] = open(spec["cert"][1], "rb").read()
    try:
        c = fl.connect(args.location, **kw)
        return {"listed": len(list(c.list_flights(options=fl.FlightCallOptions(timeout=5))))}
    except Exception as e:
        return error_of(e)


def tabular_table():
    n = 100_000
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "x": pa.array([i / 3 for i in range(n)], pa.float64()),
        "ok": pa.array([i % 3 == 0 for i in range(n)]),
        "s": pa.array([f"row {i}, \"quoted\"\nnewline" if i % 1000 == 0 else f"r{i}" for i in range(n)]),
    })


def cmd_write_tabular(client, args):
    """Writes a table as CSV and Parquet: `--script` ["x.csv", "x.parquet"]."""
    import pyarrow.csv as pc
    import pyarrow.parquet as pq
    csv_file, parquet_file = json.loads(args.script)
    table = tabular_table()
    pc.write_csv(table, csv_file)
    pq.write_table(table, parquet_file, row_group_size=30_000)
    return {"rows": table.num_rows}


def cmd_flight_equals_tabular(client, args):
    """Reads flight `--path` and compares it with the CSV or Parquet file `--script` as pyarrow reads it."""
    import pyarrow.csv as pc
    import pyarrow.parquet as pq
    got, _, _ = read_whole(client, args.path)
    want = pc.read_csv(args.script) if args.script.endswith(".csv") else pq.read_table(args.script)
    return {"equal": got.equals(want), "rows": got.num_rows, "schema": str(got.schema).split("\n")}


def cmd_csv_equals(client, args):
    """Compares two CSV files as pyarrow reads them: `--script` [a, b]."""
    import pyarrow.csv as pc
    a, b = json.loads(args.script)
    return {"equal": pc.read_csv(a).equals(pc.read_csv(b))}


def cmd_pty_run(client, args):
    """Runs `--script` {"argv", "cwd"} under a pseudo-terminal (as a user's shell would) and returns what it printed."""
    import os
    import pty
    import subprocess
    spec = json.loads(args.script)
    master, slave = pty.openpty()
    proc = subprocess.Popen(spec["argv"], cwd=spec.get("cwd"), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    status = proc.wait()
    os.close(master)
    return {"status": status, "output": out.decode("utf-8", "replace")}


def dataset_part(seed, index, rows=2000):
    """Partition `index` of a dataset: its own rows, two batches, a dictionary column."""
    rng = np.random.default_rng(seed * 1000 + index)
    table = pa.table({
        "part": pa.array([index] * rows, pa.int32()),
        "x": pa.array(rng.integers(0, 1 << 40, rows), pa.int64()),
        "tag": pa.array([f"t{v % 7}" for v in range(rows)]).dictionary_encode(),
    })
    return table


def put_partition(location, path, seed, index, count):
    client = fl.connect(location)
    table = dataset_part(seed, index)
    opts = fl.FlightCallOptions(headers=[(b"x-tierflight-partition", f"{index}/{count}".encode())])
    writer, _ = client.do_put(fl.FlightDescriptor.for_path(*path.split("/")), table.schema, opts)
    writer.write_table(table, max_chunksize=1000)
    writer.close()
    client.close()


def read_dataset(client, path):
    """The dataset read the way any Flight client does: every endpoint's ticket, in order."""
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")))
    tables = [client.do_get(e.ticket).read_all() for e in info.endpoints]
    return info, pa.concat_tables(tables) if tables else None


def cmd_datasets(client, args):
    """Partitioned datasets (DESIGN §9) on one node: parallel writers, all or nothing, generations."""
    import threading
    out = {}
    path, count = args.path, 8

    def write_all(seed, indexes):
        threads = [threading.Thread(target=put_partition, args=(args.location, path, seed, i, count)) for i in indexes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # 7 of 8 partitions: not visible, the missing one named.
    write_all(1, [i for i in range(count) if i != 5])
    try:
        client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")))
        out["partial"] = "visible"
    except (fl.FlightError, pa.ArrowException) as e:
        out["partial"] = error_of(e)
    # The last one lands: the whole table, partitions in order.
    write_all(1, [5])
    expected = pa.concat_tables([dataset_part(1, i) for i in range(count)])
    info, got = read_dataset(client, path)
    out["endpoints"] = len(info.endpoints)
    out["ordered"] = info.ordered
    out["records"] = info.total_records
    out["equal"] = got.equals(expected)
    out["metadata"] = json.loads(info.app_metadata.decode() or "{}")
    # DoGet of the plain path streams every partition in order.
    plain = client.do_get(fl.Ticket(path.encode())).read_all()
    out["plain_equal"] = plain.combine_chunks().equals(expected.combine_chunks())
    out["listed"] = sorted("/".join(p.decode() for p in f.descriptor.path) for f in client.list_flights(b""))
    # A new generation: readers of the old one finish on it; the new one shows once complete.
    old_ticket = info.endpoints[0].ticket
    write_all(2, range(count - 1))
    _, still = read_dataset(client, path)
    out["old_generation_while_new_pending"] = still.equals(expected)
    write_all(2, [count - 1])
    _, newer = read_dataset(client, path)
    out["new_generation"] = newer.equals(pa.concat_tables([dataset_part(2, i) for i in range(count)]))
    out["old_ticket_reads"] = client.do_get(old_ticket).read_all().equals(dataset_part(1, 0))
    # A partition with another schema is refused.
    try:
        bad = pa.table({"y": pa.array([1.5])})
        opts = fl.FlightCallOptions(headers=[(b"x-tierflight-partition", b"0/2")])
        for i in range(2):
            table = dataset_part(3, i) if i == 1 else bad
            o = fl.FlightCallOptions(headers=[(b"x-tierflight-partition", f"{i}/2".encode())])
            writer, _ = client.do_put(fl.FlightDescriptor.for_path("other", "ds"), table.schema, o)
            writer.write_table(table)
            writer.close()
        out["schema_mismatch"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as e:
        out["schema_mismatch"] = error_of(e)
    # A bad partition header.
    try:
        o = fl.FlightCallOptions(headers=[(b"x-tierflight-partition", b"8/8")])
        writer, _ = client.do_put(fl.FlightDescriptor.for_path("other", "bad"), dataset_part(1, 0).schema, o)
        writer.write_table(dataset_part(1, 0))
        writer.close()
        out["bad_header"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as e:
        out["bad_header"] = error_of(e)
    # Delete takes the dataset with its partitions.
    out["delete"] = action_json(client, "delete", {"path": path})
    try:
        client.get_flight_info(fl.FlightDescriptor.for_path(*path.split("/")))
        out["after_delete"] = "visible"
    except (fl.FlightError, pa.ArrowException) as e:
        out["after_delete"] = error_of(e)
    return out


def cmd_dataset_write(client, args):
    """Puts the 4 partitions of a dataset (seed 7) in parallel and reads it back."""
    import threading
    threads = [threading.Thread(target=put_partition, args=(args.location, args.path, 7, i, 4)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return cmd_dataset_read(client, args)


def cmd_dataset_read(client, args):
    info, got = read_dataset(client, args.path)
    expected = pa.concat_tables([dataset_part(7, i) for i in range(4)])
    listed = sorted("/".join(p.decode() for p in f.descriptor.path) for f in client.list_flights(b""))
    return {"equal": got.equals(expected), "endpoints": len(info.endpoints), "listed": listed}


def wide_tables():
    """Every type case as columns of one table per row count (NaN left out: it never equals itself)."""
    groups = {}
    for name, t in type_cases().items():
        if name == "float/nan":
            continue
        fields, arrays = groups.setdefault(t.num_rows, ([], []))
        for f, col in zip(t.schema, t.columns):
            fields.append(pa.field(f"{name}:{f.name}", f.type, f.nullable, f.metadata))
            arrays.append(col.combine_chunks())
    return [pa.Table.from_arrays(a, schema=pa.schema(f, metadata={"origin": "tierflight-test"}))
            for f, a in groups.values()]


def cmd_projection(client, args):
    """Column projection: every column alone, random subsets in random order, all columns
    reversed, of a table of every type (3 batches), stored uncompressed, zstd and lz4; read
    by a command descriptor's endpoints and by a hand-written ticket, each equal to
    Table.select of the stored table (schema metadata included)."""
    import random
    rng = random.Random(5)
    out = {"mismatches": [], "checked": 0, "columns": 0, "tables": len(wide_tables())}
    for k, wide in enumerate(wide_tables()):
        names = wide.column_names
        out["columns"] += len(names)
        subsets = [[n] for n in names] + [rng.sample(names, min(9, len(names))) for _ in range(5)] + [list(reversed(names))]
        for codec in [None, "zstd", "lz4"]:
            path = f"{args.path}/{k}/{codec}"
            opts = fl.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(compression=codec)) if codec else None
            put(client, path, wide.schema, split(wide, 3), options=opts)
            for cols in subsets:
                want = wide.select(cols)
                command = fl.FlightDescriptor.for_command(json.dumps({"path": path, "columns": cols}))
                info = client.get_flight_info(command)
                got = pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])
                by_ticket = client.do_get(fl.Ticket(json.dumps({"path": path, "columns": cols}).encode())).read_all()
                schema = client.get_schema(command).schema
                out["checked"] += 1
                if not (got.equals(want) and by_ticket.equals(want) and info.schema.equals(want.schema, check_metadata=True)
                        and schema.equals(want.schema, check_metadata=True) and got.schema.equals(want.schema, check_metadata=True)):
                    out["mismatches"].append({"codec": codec, "columns": cols})
    # A batch range with columns: batch 1 of the three, only the chosen columns.
    wide = wide_tables()[0]
    cols = wide.column_names[::7]
    ranged = client.do_get(fl.Ticket(json.dumps({"path": f"{args.path}/0/zstd", "from": 1, "to": 2, "columns": cols}).encode())).read_all()
    out["range_equal"] = ranged.equals(pa.Table.from_batches([split(wide, 3)[1]]).select(cols))
    # A dataset: every partition's endpoint projected, dictionaries of the chosen column kept.
    dataset = f"{args.path}/ds"
    for i in range(3):
        put_partition(args.location, dataset, 11, i, 3)
    want = pa.concat_tables([dataset_part(11, i).select(["tag", "part"]) for i in range(3)])
    info = client.get_flight_info(fl.FlightDescriptor.for_command(json.dumps({"path": dataset, "columns": ["tag", "part"]})))
    got = pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])
    out["dataset"] = {"endpoints": len(info.endpoints), "equal": got.equals(want)}
    path = f"{args.path}/0/None"
    names = wide_tables()[0].column_names
    try:
        client.get_flight_info(fl.FlightDescriptor.for_command(json.dumps({"path": path, "columns": ["nope", names[0], "nada"]})))
        out["unknown_info"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as e:
        out["unknown_info"] = error_of(e)
    try:
        client.do_get(fl.Ticket(json.dumps({"path": path, "columns": ["nope"]}).encode())).read_all()
        out["unknown_ticket"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as e:
        out["unknown_ticket"] = error_of(e)
    try:
        client.get_flight_info(fl.FlightDescriptor.for_command(b"select *"))
        out["bad_command"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as e:
        out["bad_command"] = error_of(e)
    return out


def cmd_cluster_dataset(client, args):
    """Partitioned datasets on a cluster. `write`: partitions `indexes` of `count` (seed `seed`)
    put in parallel, partition i through node i mod len(locations). `read`: the dataset read
    through this node (every endpoint's ticket here), at each endpoint's own location (in
    parallel, as a parallel reader does), and with `plain` as the plain path's DoGet."""
    import threading
    s = json.loads(args.script)
    path, count, seed = args.path, s["count"], s["seed"]
    if s["op"] == "write":
        errors = []

        def one(i):
            try:
                put_partition(s["locations"][i % len(s["locations"])], path, seed, i, count)
            except Exception as e:  # reported, not raised: every writer runs
                errors.append(f"partition {i}: {e}")

        threads = [threading.Thread(target=one, args=(i,)) for i in s["indexes"]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"errors": errors}
    expected = pa.concat_tables([dataset_part(seed, i) for i in range(count)])
    try:
        info, got = read_dataset(client, path)
    except (fl.FlightError, pa.ArrowException) as e:
        return {"error": error_of(e)}
    parts = [None] * len(info.endpoints)

    def at_location(i, e):
        c = fl.connect(e.locations[0]) if e.locations else client
        parts[i] = c.do_get(e.ticket).read_all()

    threads = [threading.Thread(target=at_location, args=(i, e)) for i, e in enumerate(info.endpoints)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {
        "equal": got.equals(expected),
        "by_location_equal": all(p is not None for p in parts) and pa.concat_tables(parts).equals(expected),
        "locations": [[loc.uri.decode() for loc in e.locations] for e in info.endpoints],
        "records": info.total_records,
        "bytes": info.total_bytes,
        "ordered": info.ordered,
        "listed": ["/".join(p.decode() for p in f.descriptor.path) for f in client.list_flights(path.encode())],
    }
    if s.get("plain"):
        plain = client.do_get(fl.Ticket(path.encode())).read_all()
        out["plain_equal"] = plain.combine_chunks().equals(expected.combine_chunks())
    if s.get("columns"):
        command = fl.FlightDescriptor.for_command(json.dumps({"path": path, "columns": s["columns"]}))
        projected = client.get_flight_info(command)
        got = pa.concat_tables([client.do_get(e.ticket).read_all() for e in projected.endpoints])
        out["projection_equal"] = got.equals(expected.select(s["columns"]))
    return out


def cmd_traced(client, args):
    """Calls carrying the W3C trace context in `--script` ({"traceparent": ..., "tracestate":
    ...}) as gRPC headers, as an instrumented pyarrow application sends it: a put of
    `--path` then GetFlightInfo + DoGet of it; with "_mode": "get" only the reads; with
    "_action": {"type", "body"} that DoAction instead."""
    context = json.loads(args.script)
    headers = [(k.encode(), v.encode()) for k, v in context.items() if not k.startswith("_")]
    options = fl.FlightCallOptions(headers=headers)
    if "_action" in context:
        action = fl.Action(context["_action"]["type"], json.dumps(context["_action"]["body"]).encode())
        return [json.loads(bytes(r.body.to_pybytes())) for r in client.do_action(action, options)]
    table = pa.table({"n": pa.array(range(10_000), pa.int64()), "s": pa.array([str(i) for i in range(10_000)])})
    if context.get("_mode") != "get":
        put(client, args.path, table.schema, table.to_batches(max_chunksize=2_500), options=options)
    info = client.get_flight_info(fl.FlightDescriptor.for_path(*args.path.split("/")), options)
    # Each endpoint from where it is (in a cluster, its owner).
    got = pa.concat_tables([(fl.connect(e.locations[0]) if e.locations else client).do_get(e.ticket, options).read_all()
                            for e in info.endpoints])
    return {"rows": got.num_rows, "equal": got.equals(table), "batches": 4}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("location")
    p.add_argument("--batches", type=int, default=5000)
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--path", default="x")
    p.add_argument("--script", default="[]")
    args = p.parse_args()
    client = fl.connect(args.location)
    handler = globals()["cmd_" + args.command.replace("-", "_")]
    result = handler(client, args)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
