"""The reference for Tierflight's benchmarks: pyarrow's own Flight server (C++ gRPC),
keeping flights in memory as tables keyed by path. Written for this benchmark."""
import sys
import threading

import pyarrow.flight as fl


class InMemoryFlightServer(fl.FlightServerBase):
    def __init__(self, location, tls_certificates=None):
        super().__init__(location, tls_certificates=tls_certificates or [])
        self._flights = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(descriptor):
        return "/".join(p.decode() if isinstance(p, bytes) else p for p in descriptor.path)

    def do_put(self, context, descriptor, reader, writer):
        table = reader.read_all()
        with self._lock:
            self._flights[self._key(descriptor)] = table

    def do_get(self, context, ticket):
        with self._lock:
            table = self._flights[ticket.ticket.decode()]
        return fl.RecordBatchStream(table)

    def get_flight_info(self, context, descriptor):
        key = self._key(descriptor)
        with self._lock:
            table = self._flights[key]
        endpoint = fl.FlightEndpoint(key.encode(), [])
        return fl.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, table.nbytes)


if __name__ == "__main__":
    # With a certificate and key (PEM files): TLS, for a grpc+tls:// location.
    certs = [(open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read())] if len(sys.argv) > 3 else None
    server = InMemoryFlightServer(sys.argv[1], certs)
    print("ready", server.port, flush=True)
    server.serve()
