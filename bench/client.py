"""The one pyarrow.flight client both servers are measured with. Prints JSON."""
import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl


def big_table(mib, rows_per_batch):
    cols = 8  # 4 int64 + 4 float64: 64 bytes a row
    rows = (mib << 20) // (8 * cols)
    rng = np.random.default_rng(1)
    data = {f"i{c}": rng.integers(0, 1 << 40, rows, dtype=np.int64) for c in range(4)}
    data.update({f"f{c}": rng.random(rows) for c in range(4)})
    return pa.table(data).combine_chunks(), rows_per_batch


def strings_table(mib, rows_per_batch):
    """Variable-width and dictionary columns: what the validator's offset checks look at."""
    rows = (mib << 20) // 32
    rng = np.random.default_rng(2)
    words = np.array([f"word-{i:06d}" for i in range(20_000)])
    data = {
        "s": pa.array(words[rng.integers(0, len(words), rows)]),
        "d": pa.array(words[rng.integers(0, 1000, rows)]).dictionary_encode(),
        "i": pa.array(rng.integers(0, 1 << 40, rows, dtype=np.int64)),
    }
    return pa.table(data).combine_chunks(), rows_per_batch


TABLES = {"numeric": big_table, "strings": strings_table}


def puts(location, mib, rounds, kind):
    """DoPut GB/s (best and median) of a table of the given kind."""
    client = fl.connect(location)
    table, rpb = TABLES[kind](mib, 64 * 1024)
    put(client, f"v/{kind}", table, rpb)  # warm-up
    best, median = best_of(rounds, lambda: put(client, f"v/{kind}", table, rpb))
    return {"bytes": table.nbytes, "put_gbps": table.nbytes / best / 1e9, "put_gbps_median": table.nbytes / median / 1e9}


def put_path(location, path, mib, rounds):
    """DoPut GB/s (best and median) of the big table to one path (a class's prefix)."""
    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    best, median = best_of(rounds, lambda: put(client, path, table, rpb))
    assert get(client, path) == table.num_rows
    return {"bytes": table.nbytes, "put_gbps": table.nbytes / best / 1e9, "put_gbps_median": table.nbytes / median / 1e9}


def put_disk(location, path, mib, rounds):
    """DoPut GB/s to a disk tier, best and median of `rounds`: as the client sees it (the bytes
    in the page cache) and to the disk (the put and then a sync). Each round starts with a
    sync, so it never pays for an earlier round's writeback."""
    import os

    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    put_s, disk_s = [], []
    for _ in range(rounds):
        os.sync()
        start = time.perf_counter()
        put(client, path, table, rpb)
        put_s.append(time.perf_counter() - start)
        os.sync()
        disk_s.append(time.perf_counter() - start)
    assert get(client, path) == table.num_rows

    def gbps(seconds):
        return table.nbytes / seconds / 1e9

    def median(xs):
        return sorted(xs)[len(xs) // 2]

    return {"bytes": table.nbytes, "put_gbps": gbps(min(put_s)), "put_gbps_median": gbps(median(put_s)),
            "disk_gbps": gbps(min(disk_s)), "disk_gbps_median": gbps(median(disk_s))}


def alternating(locations, mib, rounds, warm, ca=None, pids=None):
    """DoPut and DoGet GB/s of the big table on several servers through one client, taking
    turns (the order of the turn alternates round by round): every server meets the client
    in the same state, so the ratio is the servers' and not the client's (its page faults and
    allocator state moved one block's figures by up to 2x). Each server first takes `warm`
    puts of the same path: pyarrow's server ran its first three replacing puts of 512 MiB at
    about half the speed of the later ones (memory its allocator had not used yet), so the
    one-client block, three puts on a fresh server, compares a cold pyarrow server with a
    Tierflight one past its first put. Client CPU s/GB per server for each, and with `pids`
    the servers' (utime + stime of all their threads, from /proc/<pid>/stat, around each
    call). With `ca` (a PEM file), over TLS."""
    import os

    tick = os.sysconf("SC_CLK_TCK")

    def server_cpu(pid):
        if pid is None:
            return 0.0
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    certs = {"tls_root_certs": open(ca, "rb").read()} if ca else {}
    clients = [fl.connect(loc, **certs) for loc in locations]
    table, rpb = big_table(mib, 64 * 1024)
    for client in clients:
        for _ in range(warm):
            put(client, "bench/alternating", table, rpb)
        assert get(client, "bench/alternating") == table.num_rows  # and warms the client
    n = len(locations)
    seconds = {"put": [[] for _ in range(n)], "get": [[] for _ in range(n)]}
    cpu = {"put": [0.0] * n, "get": [0.0] * n}
    servers = {"put": [0.0] * n, "get": [0.0] * n}
    pids = pids or [None] * n
    for op, fn in (("put", lambda c: put(c, "bench/alternating", table, rpb)), ("get", lambda c: get(c, "bench/alternating"))):
        for r in range(rounds):
            order = range(n) if r % 2 == 0 else reversed(range(n))
            for i in order:
                s0, c0, start = server_cpu(pids[i]), time.process_time(), time.perf_counter()
                fn(clients[i])
                seconds[op][i].append(time.perf_counter() - start)
                cpu[op][i] += time.process_time() - c0
                servers[op][i] += server_cpu(pids[i]) - s0
    gb = table.nbytes / 1e9

    def figures(op, i):
        s = seconds[op][i]
        return {f"{op}_gbps": gb / min(s), f"{op}_gbps_median": gb / sorted(s)[len(s) // 2],
                f"{op}_client_cpu_s_per_gb": cpu[op][i] / (rounds * gb),
                f"{op}_server_cpu_s_per_gb": servers[op][i] / (rounds * gb)}

    return [{**figures("put", i), **figures("get", i)} for i in range(n)]


def write_ipc(file, mib, kind):
    """The table as an Arrow IPC stream file, the messages DoPut would receive."""
    table, rpb = TABLES[kind](mib, 64 * 1024)
    with pa.OSFile(file, "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        for batch in table.to_batches(max_chunksize=rpb):
            w.write_batch(batch)
    return {"bytes": table.nbytes}


def put(client, path, table, rows_per_batch):
    writer, _ = client.do_put(fl.FlightDescriptor.for_path(path), table.schema)
    for batch in table.to_batches(max_chunksize=rows_per_batch):
        writer.write_batch(batch)
    writer.close()


def get(client, path):
    ticket = fl.Ticket(path.encode())
    reader = client.do_get(ticket)
    rows = 0
    for chunk in reader:
        rows += chunk.data.num_rows
    return rows


def best_of(n, fn):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def tier_gets(location, mib, rounds, prefixes):
    """DoGet GB/s of the same table stored under each prefix (one per storage type)."""
    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    out = {}
    for prefix in prefixes:
        path = f"{prefix}/big"
        put(client, path, table, rpb)
        assert get(client, path) == table.num_rows
        best, median = best_of(rounds, lambda: get(client, path))
        out[prefix] = {"get_gbps": table.nbytes / best / 1e9, "get_gbps_median": table.nbytes / median / 1e9}
    return out


def zipf(location, flights, mib_each, gets, s=1.1):
    """Puts `flights` flights, then reads them with Zipf-skewed popularity (rank k with p ~ 1/k^s)."""
    client = fl.connect(location)
    table, rpb = big_table(mib_each, 16 * 1024)
    for i in range(flights):
        put(client, f"zipf/{i}", table, rpb)
    weights = 1.0 / np.arange(1, flights + 1) ** s
    rng = np.random.default_rng(7)
    order = rng.choice(flights, size=gets, p=weights / weights.sum())
    start = time.perf_counter()
    for i in order:
        assert get(client, f"zipf/{i}") == table.num_rows
    seconds = time.perf_counter() - start
    return {"gets": gets, "flights": flights, "flight_bytes": table.nbytes,
            "gbps": gets * table.nbytes / seconds / 1e9, "gets_per_s": gets / seconds}


def durable_puts(location, mib, rounds):
    """Put time of the same table into a memory-only, a strong and a weak class.

    The strong puts come before the weak ones: a weak put returns while its upload runs on,
    and a strong put right after it shared moto_server (one Python process) with that upload.
    """
    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    out = {"bytes": table.nbytes}
    for prefix in ("mem", "strong", "weak"):
        best, median = best_of(rounds, lambda: put(client, f"{prefix}/x", table, rpb))
        out[prefix] = {"put_s": best, "put_s_median": median}
    return out


def durable_get(location, path):
    """DoGet time of a flight that is only in the durable store (restore, then serve)."""
    client = fl.connect(location)
    start = time.perf_counter()
    rows = get(client, path)
    return {"get_s": time.perf_counter() - start, "rows": rows}


def concurrent(location, clients, mib, rounds):
    """Aggregate DoPut and DoGet GB/s of `clients` threads, each with its own connection and
    its own flight of `mib` MiB; reads follow endpoint locations (a cluster's owners)."""
    import threading

    table, rpb = big_table(mib, 64 * 1024)
    conns = [fl.connect(location) for _ in range(clients)]

    def together(work):
        barrier = threading.Barrier(clients + 1)
        errors = []

        def run(i):
            barrier.wait()
            try:
                work(i)
            except Exception as e:  # reported, never counted as done
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])
        return time.perf_counter() - start

    def put_one(i):
        put(conns[i], f"conc/{clients}/{i}", table, rpb)

    readers = {}

    def get_one(i):
        info = conns[i].get_flight_info(fl.FlightDescriptor.for_path(f"conc/{clients}/{i}"))
        rows = 0
        for endpoint in info.endpoints:
            target = conns[i]
            if endpoint.locations:
                uri = endpoint.locations[0].uri.decode()
                target = readers.setdefault((i, uri), fl.connect(uri))
            for chunk in target.do_get(endpoint.ticket):
                rows += chunk.data.num_rows
        assert rows == table.num_rows, (rows, table.num_rows)

    total = clients * table.nbytes
    puts_s = min(together(put_one) for _ in range(rounds))
    gets_s = min(together(get_one) for _ in range(rounds))
    return {"clients": clients, "put_gbps": total / puts_s / 1e9, "get_gbps": total / gets_s / 1e9}


def dataset(location, parts, mib, rounds):
    """A `mib` MiB table written as one flight by one writer (parts = 0) or as a dataset of
    `parts` partitions by `parts` writer threads (x-tierflight-partition), then read with one
    thread per endpoint, each following its endpoint's location (where the partition is
    held); aggregate GB/s, best of `rounds`, and the endpoints and nodes read from."""
    import threading

    table, rpb = big_table(mib, 64 * 1024)
    path = f"ds/{parts}"

    def together(work, n):
        errors = []

        def run(i):
            try:
                work(i)
            except Exception as e:  # reported, never counted as done
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])
        return time.perf_counter() - start

    rows = table.num_rows // max(parts, 1)
    slices = [table.slice(i * rows, rows if i < parts - 1 else None) for i in range(max(parts, 1))]
    writers = [fl.connect(location) for _ in slices]

    def put_one(i):
        headers = [(b"x-tierflight-partition", f"{i}/{parts}".encode())] if parts else []
        opts = fl.FlightCallOptions(headers=headers)
        writer, _ = writers[i].do_put(fl.FlightDescriptor.for_path(path), table.schema, opts)
        for batch in slices[i].to_batches(max_chunksize=rpb):
            writer.write_batch(batch)
        writer.close()

    readers = {}
    info = {}
    got = [0]

    def get_one(k):
        endpoint = info["endpoints"][k]
        uri = endpoint.locations[0].uri.decode() if endpoint.locations else location
        client = readers.setdefault((k, uri), fl.connect(uri))
        n = 0
        for chunk in client.do_get(endpoint.ticket):
            n += chunk.data.num_rows
        got[0] += n

    def read_all():
        info["endpoints"] = writers[0].get_flight_info(fl.FlightDescriptor.for_path(path)).endpoints
        got[0] = 0
        seconds = together(get_one, len(info["endpoints"]))
        assert got[0] == table.num_rows, (got[0], table.num_rows)
        return seconds

    puts_s = min(together(put_one, len(slices)) for _ in range(rounds))
    gets_s = min(read_all() for _ in range(rounds))
    nodes = sorted({e.locations[0].uri.decode() if e.locations else location for e in info["endpoints"]})
    return {
        "put_gbps": table.nbytes / puts_s / 1e9,
        "get_gbps": table.nbytes / gets_s / 1e9,
        "endpoints": len(info["endpoints"]),
        "nodes": len(nodes),
    }


def projection(location, mib, rounds, columns):
    """A full DoGet of the big table (8 columns) against a DoGet of a projection to
    `columns` (a ticket with "columns"): best seconds of `rounds` each, and the Arrow bytes
    each read (the table's buffers)."""
    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    put(client, "bench/projection", table, rpb)
    full = fl.Ticket(b"bench/projection")
    some = fl.Ticket(json.dumps({"path": "bench/projection", "columns": columns}).encode())

    def read(ticket):
        got = client.do_get(ticket).read_all()
        return got

    full_s, _ = best_of(rounds, lambda: read(full))
    some_s, _ = best_of(rounds, lambda: read(some))
    projected = read(some)
    assert projected.equals(table.select(columns))
    return {
        "full_seconds": full_s,
        "projected_seconds": some_s,
        "full_bytes": table.nbytes,
        "projected_bytes": projected.nbytes,
        "columns": len(columns),
        "of": table.num_columns,
    }


def main():
    if sys.argv[1] == "projection":
        location, mib, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(projection(location, mib, rounds, sys.argv[5].split(","))))
        return
    if sys.argv[1] == "dataset":
        location, parts, mib, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(dataset(location, parts, mib, rounds)))
        return
    if sys.argv[1] == "concurrent":
        location, clients, mib, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(concurrent(location, clients, mib, rounds)))
        return
    if sys.argv[1] == "puts":
        print(json.dumps(puts(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
        return
    if sys.argv[1] == "put-path":
        print(json.dumps(put_path(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))
        return
    if sys.argv[1] == "put-disk":
        print(json.dumps(put_disk(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))
        return
    if sys.argv[1] == "alternating":
        # locations (comma-separated), MiB, rounds, warm-up puts[, CA file for TLS or "-"[, server pids]]
        ca = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
        pids = [int(p) for p in sys.argv[7].split(",")] if len(sys.argv) > 7 else None
        print(json.dumps(alternating(sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), ca, pids)))
        return
    if sys.argv[1] == "write-ipc":
        print(json.dumps(write_ipc(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        return
    if sys.argv[1] == "durable-puts":
        print(json.dumps(durable_puts(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    if sys.argv[1] == "durable-get":
        print(json.dumps(durable_get(sys.argv[2], sys.argv[3])))
        return
    if sys.argv[1] == "tiers":
        print(json.dumps(tier_gets(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(","))))
        return
    if sys.argv[1] == "zipf":
        print(json.dumps(zipf(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
        return
    location, mib, rounds, small_ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    client = fl.connect(location)
    table, rpb = big_table(mib, 64 * 1024)
    nbytes = table.nbytes
    put_best, put_median = best_of(rounds, lambda: put(client, "bench/big", table, rpb))
    get_best, get_median = best_of(rounds, lambda: get(client, "bench/big"))
    assert get(client, "bench/big") == table.num_rows

    small = pa.table({c: table.column(c).slice(0, 160) for c in table.column_names})  # 10 KiB

    def small_pairs():
        start = time.perf_counter()
        for i in range(small_ops):
            path = f"bench/small/{i % 100}"
            put(client, path, small, 1 << 20)
            get(client, path)
        return time.perf_counter() - start

    # The first pass meets a cold server (Node's JIT is still compiling the per-call path);
    # the second, right after it, shows the steady state.
    small_seconds = small_pairs()
    small_warm_seconds = small_pairs()
    print(json.dumps({
        "bytes": nbytes,
        "put_gbps": nbytes / put_best / 1e9, "put_gbps_median": nbytes / put_median / 1e9,
        "get_gbps": nbytes / get_best / 1e9, "get_gbps_median": nbytes / get_median / 1e9,
        "small_ops_per_s": small_ops / small_seconds, "small_bytes": small.nbytes,
        "small_ops_per_s_warm": small_ops / small_warm_seconds,
    }))


if __name__ == "__main__":
    main()
