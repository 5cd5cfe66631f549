// `--conf -` and `--conf /dev/stdin`: the network config on standard input, whether that is a pipe, a
// file or a unix socket (a Node or Python parent's pipe may be a socketpair, where opening /dev/stdin
// fails with ENXIO). The real binary, with a real socket as its stdin (made by python3).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { BINARY, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-conf-stdin-");
});
afterEach(() => dir.cleanup());

// Runs argv with one end of a socketpair as stdin, writes `input` into the other end and shuts it.
const WITH_SOCKET_STDIN = `
import json, socket, subprocess, sys, threading
argv, data = json.loads(sys.argv[1]), sys.stdin.buffer.read()
parent, child = socket.socketpair()
p = subprocess.Popen(argv, stdin=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
child.close()
def feed():
    try:
        parent.sendall(data)
        parent.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the binary stopped reading (a refused config)
threading.Thread(target=feed, daemon=True).start()
out, err = p.communicate(timeout=60)
print(json.dumps({"exitCode": p.returncode, "stdout": out.decode(), "stderr": err.decode()}))
`;

// Runs argv with a non-blocking pipe as stdin that delivers 20 bytes, then the rest 300 ms later: the
// reader meets EAGAIN in between.
const WITH_SLOW_NONBLOCKING_STDIN = `
import json, os, subprocess, sys, threading, time
argv, data = json.loads(sys.argv[1]), sys.stdin.buffer.read()
r, w = os.pipe()
os.set_blocking(r, False)
p = subprocess.Popen(argv, stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(r)
def feed():
    try:
        os.write(w, data[:20])
        time.sleep(0.3)
        with os.fdopen(w, "wb") as f:
            f.write(data[20:])
    except OSError:
        pass
threading.Thread(target=feed, daemon=True).start()
out, err = p.communicate(timeout=60)
print(json.dumps({"exitCode": p.returncode, "stdout": out.decode(), "stderr": err.decode()}))
`;

async function runWithStdin(script: string, args: string[], input: string, env?: Record<string, string>) {
  const proc = Bun.spawn(["python3", "-c", script, JSON.stringify([BINARY, ...args])], {
    stdin: new TextEncoder().encode(input),
    stdout: "pipe",
    stderr: "pipe",
    ...(env ? { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } } : {}),
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  if ((await proc.exited) !== 0) throw new Error(`python3 failed: ${err}`);
  return JSON.parse(out) as { exitCode: number; stdout: string; stderr: string };
}

const runWithSocketStdin = (args: string[], input: string) => runWithStdin(WITH_SOCKET_STDIN, args, input);

const PLUGIN_ENV = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "sock-2", CNI_NETNS: "/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };

async function addOne() {
  const conf = fileNetConf(dir.path);
  const added = await runPlugin(conf, { command: "ADD", containerID: "sock-1" });
  expect(added.exitCode).toBe(0);
  return conf;
}

describe("--conf on standard input", () => {
  test.each(["/dev/stdin", "-", "/proc/self/fd/0"])("ls --conf %s with a unix socket as stdin", async (path) => {
    const conf = await addOne();
    const r = await runWithSocketStdin(["ls", "--conf", path, "-o", "json"], JSON.stringify(conf));
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).map((a: { containerID: string }) => a.containerID)).toEqual(["sock-1"]);
  });

  test("ls --conf - with a pipe as stdin, and --conf=-", async () => {
    const conf = await addOne();
    for (const args of [["ls", "--conf", "-", "-o", "json"], ["ls", "--conf=-", "-o", "json"]]) {
      const r = await runCli(args, { stdin: JSON.stringify(conf) });
      expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(r.json.map((a: { ip: string }) => a.ip)).toEqual(["10.10.0.2"]);
    }
  });

  test("more than 1 MiB on --conf - is refused, not read whole", async () => {
    const r = await runWithSocketStdin(["ls", "--conf", "-"], " ".repeat(3 * 1024 * 1024));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('kube-ipam: Cannot decode network config from "-": it is larger than 1048576 bytes (network configs are kilobytes)\n');
  });

  test("the plugin reads its config from a unix socket too", async () => {
    const r = await runWithStdin(WITH_SOCKET_STDIN, [], JSON.stringify(fileNetConf(dir.path)), PLUGIN_ENV);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout).ips[0].address).toBe("10.10.0.2/24");
  });
});

describe("a non-blocking stdin that runs dry before its end", () => {
  test("ls --conf - waits for the rest", async () => {
    const conf = await addOne();
    const r = await runWithStdin(WITH_SLOW_NONBLOCKING_STDIN, ["ls", "--conf", "-", "-o", "json"], JSON.stringify(conf));
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(JSON.parse(r.stdout)).toHaveLength(1);
  });

  test("the plugin waits for the rest, and stops reading past 1 MiB", async () => {
    const ok = await runWithStdin(WITH_SLOW_NONBLOCKING_STDIN, [], JSON.stringify(fileNetConf(dir.path)), PLUGIN_ENV);
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout).ips[0].address).toBe("10.10.0.2/24");
    const big = await runWithStdin(WITH_SLOW_NONBLOCKING_STDIN, [], " ".repeat(3 * 1024 * 1024), PLUGIN_ENV);
    expect(big.exitCode).toBe(1);
    expect(JSON.parse(big.stdout)).toMatchObject({ code: 6 });
  });
});
