// What a chaos run records, as the checker reads it: every plugin call with its start, end and answer,
// every pod the workload made and deleted, every fault, the clock ticks that tie etcd revisions to time,
// the releases the controllers logged, and etcd's own history (every revision from the first).
// Times are ms since the epoch, all read from the test process's clock (controllers' logs aside).

export type Outcome =
  | { readonly ok: true; readonly ip?: string }
  | { readonly ok: false; readonly code?: number; readonly msg: string };

export interface Call {
  readonly id: number;
  readonly verb: "ADD" | "DEL";
  readonly host: string;
  readonly containerID: string;
  readonly ifName: string;
  /** namespace/name */
  readonly pod: string;
  readonly podUID: string;
  /** The address the pod's annotation fixes, if any. */
  readonly fixed?: string;
  /** 1 for the first call of this verb for the container, 2 and up for the runtime's retries. */
  readonly attempt: number;
  readonly start: number;
  readonly end: number;
  /** ipam.timeoutSeconds, in ms. */
  readonly budgetMs: number;
  readonly outcome: Outcome;
}

export interface PodEvent {
  readonly kind: "created" | "deleted";
  readonly pod: string;
  readonly uid: string;
  readonly start: number;
  readonly end: number;
}

export interface FaultEvent {
  readonly id: number;
  readonly kind: string;
  /** What was done to whom, resolved when it began ("e2 (leader) cut from e1 e3 h1 ..."). */
  readonly what: string;
  readonly start: number;
  readonly end: number;
}

/** One write of the clock key: its value (the time it was sent) and the revision etcd gave it, known by `end`. */
export interface ClockTick {
  readonly sent: number;
  readonly revision: number;
  readonly end: number;
}

/** A release (or parking) a controller logged: "gc released" with the address and the pod. */
export interface LoggedRelease {
  /** The controller's identity in the leader key: <POD_NAME>/<pid>. */
  readonly by: string;
  readonly ip: string;
  readonly pod: string;
  readonly action: "released" | "parked";
  /** The term it wrote in: the leader key's creation revision (absent when it had lost the lead by the log line). */
  readonly term?: number;
}

export interface EtcdEvent {
  readonly revision: number;
  readonly type: "PUT" | "DELETE";
  readonly key: string;
  /** The value written (PUT), or the value deleted (DELETE: the watch's prev_kv). */
  readonly value?: string;
  readonly createRevision?: number;
}

export interface RunConfig {
  readonly seed: number;
  readonly durationMs: number;
  readonly prefix: string;
  readonly network: string;
  /** Addresses in a reservation: never to be claimed. */
  readonly reserved: readonly string[];
  readonly startedAt: number;
}

export interface History {
  readonly config: RunConfig;
  readonly calls: readonly Call[];
  readonly pods: readonly PodEvent[];
  readonly faults: readonly FaultEvent[];
  readonly clock: readonly ClockTick[];
  readonly releases: readonly LoggedRelease[];
  readonly etcd: readonly EtcdEvent[];
}
