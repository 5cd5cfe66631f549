// The clock that ties etcd's revisions to time: every 100 ms a put of the time it is sent, from the
// observer (never partitioned) to whichever member answers; the revision etcd gave it, known when the
// answer arrives, was committed between the two instants. The checker bounds every other revision by these.
import { encode } from "../../src/store/etcd/codec.ts";
import type { ClockTick } from "./history.ts";
import { clientUrl, MEMBERS } from "./topology.ts";

export const CLOCK_KEY = "/kube-ipam-chaos/clock";
const INTERVAL_MS = 100;

export async function runClock(ticks: ClockTick[], signal: AbortSignal, endpoints: readonly string[] = MEMBERS.map(clientUrl)): Promise<void> {
  let member = 0;
  while (!signal.aborted) {
    const sent = Date.now();
    try {
      const res = await fetch(`${endpoints[member]!}/v3/kv/put`, {
        method: "POST", body: JSON.stringify({ key: encode(CLOCK_KEY), value: encode(String(sent)) }), signal: AbortSignal.timeout(400),
      });
      const body = (await res.json()) as { header?: { revision?: string } };
      if (res.ok && body.header?.revision) ticks.push({ sent, revision: Number(body.header.revision), end: Date.now() });
      else member = (member + 1) % endpoints.length;
    } catch {
      member = (member + 1) % endpoints.length; // that member is cut off, stopped or without a leader: another one
    }
    await Bun.sleep(Math.max(0, sent + INTERVAL_MS - Date.now()));
  }
}
