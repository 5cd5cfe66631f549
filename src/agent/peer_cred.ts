// Who is at the other end of a connection to the agent's socket: SO_PEERCRED, through libc.
//
// Why: the socket's file mode (0600 in a 0700 directory) is the first guard, but it is only as good as every
// chmod, bind mount and hostPath that ever touches the directory: one mistake and any process on the node may
// allocate and release addresses. The kernel records the credentials of the process that called connect(2),
// and the peer cannot forge them, so the agent checks them too and serves uid 0 only. A process that is root in
// a user namespace of its own is seen with its uid in the agent's namespace (or the overflow uid), not 0.
//
// Bun has no API for it, so getsockopt(2) is called through bun:ffi. libc is opened at the first connection,
// not when the module loads: the CLI imports the agent's code for every command.
import { CString, dlopen, FFIType, ptr, read } from "bun:ffi";

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields (in the machine's byte order) on every Linux ABI. */
const UCRED_BYTES = 12;

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

interface Libc {
  getsockopt(fd: number, level: number, name: number, value: Uint32Array, len: Uint32Array): number;
  errno(): string;
}

let libc: Libc | undefined;

function openLibc(): Libc {
  const { symbols: s } = dlopen("libc.so.6", {
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.ptr },
  });
  return {
    getsockopt: (fd, level, name, value, len) => s.getsockopt(fd, level, name, ptr(value), ptr(len)),
    // errno is per thread; the FFI call ran on this thread, and nothing ran in between.
    errno() {
      const where = s.__errno_location();
      const e = where ? read.i32(where, 0) : 0;
      const text = s.strerror(e);
      return `${text ? new CString(text).toString() : "unknown error"} (errno ${e})`;
    },
  };
}

/**
 * The credentials of the process that connected on `fd`, or a sentence saying why they cannot be had
 * (the caller must then refuse: a peer it cannot identify is not root).
 */
export function peerCred(fd: number | undefined): PeerCred | string {
  if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0) return `the connection has no file descriptor (${String(fd)})`;
  try {
    libc ??= openLibc();
  } catch (e) {
    return `cannot load libc for getsockopt(2): ${(e as Error).message}`;
  }
  const ucred = new Uint32Array(UCRED_BYTES / 4);
  const len = new Uint32Array([UCRED_BYTES]);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, len) !== 0) return `getsockopt(SO_PEERCRED) failed: ${libc.errno()}`;
  if (len[0] !== UCRED_BYTES) return `getsockopt(SO_PEERCRED) returned ${len[0]} bytes, not ${UCRED_BYTES}`;
  return { pid: ucred[0]! | 0, uid: ucred[1]!, gid: ucred[2]! };
}
