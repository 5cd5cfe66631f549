// An endpoint that accepts TCP connections and never answers: the store or API server that is up enough
// to take a connection and too sick to reply. Connections are held until stop().
import type { TCPSocketListener } from "bun";

export interface Blackhole {
  /** host:port */
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  stop(): void;
}

export function startBlackhole(): Blackhole {
  let accepted = 0;
  const listener: TCPSocketListener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        accepted++;
      },
      data() {},
    },
  });
  return {
    address: `127.0.0.1:${listener.port}`,
    get accepted() {
      return accepted;
    },
    stop: () => listener.stop(true),
  };
}
