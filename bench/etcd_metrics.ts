// What a batch of calls costs etcd, from etcd's own Prometheus counters (its client URL serves /metrics).
// Debian's etcd 3.4.23 exports, and the bench uses:
//   grpc_server_handled_total{grpc_method,grpc_code,...}  requests finished, by method (streams count when
//       they close). The v3 JSON gateway calls gRPC inside etcd, so kube-ipam's HTTP requests count too.
//   etcd_network_client_grpc_received_bytes_total / _sent_bytes_total  gRPC payload bytes from and to
//       clients. For the gateway these are the gRPC bytes between gateway and server, not the JSON on the
//       wire (which is larger: base64 keys and values).

const HANDLED = "grpc_server_handled_total";
const RECEIVED = "etcd_network_client_grpc_received_bytes_total";
const SENT = "etcd_network_client_grpc_sent_bytes_total";

export interface EtcdCounters {
  /** Finished gRPC requests by method. */
  readonly byMethod: ReadonlyMap<string, number>;
  readonly received: number;
  readonly sent: number;
}

export async function readCounters(clientURL: string, tls?: { cert: string; key: string; ca: string }): Promise<EtcdCounters> {
  const text = await (await fetch(`${clientURL}/metrics`, { tls })).text();
  const byMethod = new Map<string, number>();
  let received = NaN;
  let sent = NaN;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (line.startsWith(`${HANDLED}{`)) {
      const method = /grpc_method="([^"]+)"/.exec(line)?.[1] ?? "?";
      byMethod.set(method, (byMethod.get(method) ?? 0) + value);
    } else if (line.startsWith(`${RECEIVED} `)) {
      received = value;
    } else if (line.startsWith(`${SENT} `)) {
      sent = value;
    }
  }
  return { byMethod, received, sent };
}

export interface PerCall {
  readonly requests: number;
  /** e.g. "Txn 2" or "Range 2, Txn 1, Put 1, ...", busiest first. */
  readonly methods: string;
  readonly received: number;
  readonly sent: number;
}

/** The difference between two readings, divided by the number of calls made in between. */
export function perCall(before: EtcdCounters, after: EtcdCounters, calls: number): PerCall {
  const deltas: [string, number][] = [];
  for (const [method, n] of after.byMethod) {
    const d = n - (before.byMethod.get(method) ?? 0);
    if (d > 0) deltas.push([method, d / calls]);
  }
  deltas.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const num = (x: number) => (Number.isInteger(x) ? `${x}` : x.toFixed(1));
  return {
    requests: deltas.reduce((s, [, d]) => s + d, 0),
    methods: deltas.map(([m, d]) => `${m} ${num(d)}`).join(", "),
    received: (after.received - before.received) / calls,
    sent: (after.sent - before.sent) / calls,
  };
}
