"""Reads Arrow IPC messages with pyarrow's own reader, for the differential test of the
DoPut validator: which of them pyarrow refuses, and why.

    python read_messages.py FILE

FILE holds records of a little-endian u32 length and that many bytes: one encapsulated
IPC message (continuation marker, length, header, body). Prints a JSON list with, for each
record, null when pyarrow reads it (and, for a schema, its schema) or the refusal's text.
"""

import json
import struct
import sys

import pyarrow as pa


def verdict(data):
    try:
        message = pa.ipc.read_message(pa.py_buffer(data))
        if message.type == "schema":
            pa.ipc.read_schema(message)
        return None
    except (pa.ArrowException, OSError, ValueError, EOFError) as e:
        return f"{type(e).__name__}: {e}"


def main():
    data = open(sys.argv[1], "rb").read()
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        out.append(verdict(data[pos + 4:pos + 4 + length]))
        pos += 4 + length
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
