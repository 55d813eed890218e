import dgram from 'node:dgram';
import * as packet from 'dns-packet';

/**
 * A DNS server on loopback that the test controls: it answers A queries for the names in
 * `records` (changed at will, like a Kubernetes headless service as pods come and go) and
 * NXDOMAIN for anything else.
 */
export interface TestDns {
  /** `127.0.0.1:port`, for `cluster.discover.resolver`. */
  readonly address: string;
  readonly records: Map<string, string[]>;
  /** Queries answered so far. */
  queries: number;
  stop(): Promise<void>;
}

export async function startDns(): Promise<TestDns> {
  const socket = dgram.createSocket('udp4');
  const records = new Map<string, string[]>();
  const dns: TestDns = {
    address: '',
    records,
    queries: 0,
    stop: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (message, peer) => {
    let query: packet.Packet;
    try {
      query = packet.decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (!question) return;
    dns.queries++;
    const addresses = records.get(question.name.toLowerCase());
    const answers: packet.Answer[] =
      question.type === 'A'
        ? (addresses ?? []).map((data) => ({ type: 'A', name: question.name, ttl: 1, class: 'IN', data }))
        : [];
    const reply = packet.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: packet.AUTHORITATIVE_ANSWER | (addresses ? 0 : 3), // rcode 3: NXDOMAIN
      questions: [question],
      answers,
    });
    socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  Object.assign(dns, { address: `127.0.0.1:${socket.address().port}` });
  return dns;
}
