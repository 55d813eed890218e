"""Writes the seed streams the mutation fuzz test starts from: small Arrow IPC streams,
written by pyarrow, covering every type family (dictionaries with deltas, nested
dictionaries, views, unions, run-end encoding, compressed bodies). One file per stream.

    python fuzz_corpus.py OUT_DIR
"""

import os
import sys

import pyarrow as pa


def batches_of(arrays, names, count=3):
    out = []
    for k in range(count):
        out.append(pa.record_batch([a.slice(k, len(a) - k) if len(a) > k else a for a in arrays], names=names))
    return out


def seeds():
    n = 12
    ints = pa.array([i if i % 4 else None for i in range(n)], pa.int32())
    strs = pa.array([f"s{i}" * (i % 3) if i % 5 else None for i in range(n)])
    yield "primitive", [ints, pa.array([float(i) / 3 for i in range(n)]), pa.array([i % 2 == 0 for i in range(n)]),
                        pa.array([i * 1000 for i in range(n)], pa.int64()), pa.array([None] * n, pa.null())], \
        ["i", "f", "b", "l", "z"], {}
    yield "strings", [strs, pa.array([b"x" * i for i in range(n)], pa.large_binary()),
                      pa.array([f"view{i}" * i for i in range(n)], pa.string_view()),
                      pa.array([b"b" * 4 for i in range(n)], pa.binary(4))], \
        ["s", "lb", "sv", "bin"], {}
    yield "temporal", [pa.array(range(n), pa.date32()), pa.array(range(n), pa.timestamp("us", tz="UTC")),
                       pa.array(range(n), pa.time64("ns")), pa.array(range(n), pa.duration("ms")),
                       pa.array([pa.scalar((1, 2, 3), pa.month_day_nano_interval()).as_py()] * n,
                                pa.month_day_nano_interval()),
                       pa.array([i for i in range(n)], pa.decimal128(10, 2))], \
        ["d", "ts", "t", "du", "iv", "dec"], {}
    yield "nested", [pa.array([[i, i + 1] if i % 3 else None for i in range(n)], pa.list_(pa.int16())),
                     pa.array([{"a": i, "b": f"x{i}"} for i in range(n)]),
                     pa.array([[i] * (i % 3) for i in range(n)], pa.large_list(pa.int8())),
                     pa.array([[i, i] for i in range(n)], pa.list_(pa.int32(), 2)),
                     pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int32())),
                     pa.array([[i] for i in range(n)], pa.list_view(pa.int32()))], \
        ["l", "st", "ll", "fsl", "m", "lv"], {}
    yield "unions", [pa.UnionArray.from_sparse(pa.array([i % 2 for i in range(n)], pa.int8()),
                                               [pa.array(range(n)), pa.array([str(i) for i in range(n)])]),
                     pa.UnionArray.from_dense(pa.array([i % 2 for i in range(n)], pa.int8()),
                                              pa.array([i // 2 for i in range(n)], pa.int32()),
                                              [pa.array(range(n)), pa.array([str(i) for i in range(n)])]),
                     pa.RunEndEncodedArray.from_arrays(pa.array([3, 7, n], pa.int32()), pa.array(["a", "b", "c"]))], \
        ["sp", "de", "ree"], {}
    words = pa.array([f"w{i % 4}" for i in range(n)]).dictionary_encode()
    nested_dict = pa.array([[f"v{i % 3}"] for i in range(n)], pa.list_(pa.dictionary(pa.int8(), pa.string())))
    yield "dictionaries", [words, nested_dict, pa.array(range(n), pa.int32())], ["w", "nd", "n"], {}
    yield "compressed-zstd", [ints, strs], ["i", "s"], {"compression": "zstd"}
    yield "compressed-lz4", [ints, strs], ["i", "s"], {"compression": "lz4"}


def deltas():
    """Dictionary deltas: each batch adds words, written as delta dictionary messages."""
    batches = [pa.record_batch([pa.array([f"w{j}" for j in range(k * 3)]).dictionary_encode(),
                                pa.array(range(k * 3), pa.int32())], names=["d", "n"]) for k in range(1, 4)]
    return batches


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, arrays, names, opts in seeds():
        batches = batches_of(arrays, names)
        options = pa.ipc.IpcWriteOptions(**opts)
        with pa.OSFile(os.path.join(out, f"{name}.arrows"), "wb") as f:
            with pa.ipc.new_stream(f, batches[0].schema, options=options) as w:
                for b in batches:
                    w.write_batch(b)
    batches = deltas()
    options = pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True)
    with pa.OSFile(os.path.join(out, "deltas.arrows"), "wb") as f:
        with pa.ipc.new_stream(f, batches[0].schema, options=options) as w:
            for b in batches:
                w.write_batch(b)
    print(sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
