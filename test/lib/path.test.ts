import { describe, expect, test } from "bun:test";
import { hostname as osHostname } from "node:os";
import { dirname, join } from "node:path";
import { hostname } from "../../src/lib/hostname.ts";
import { joinPath, parentDir } from "../../src/lib/path.ts";

describe("joinPath and parentDir (node:path without its load time)", () => {
  test.each([
    [["/var/lib/cni/kube-ipam", "net", "ips", "0a000001"]],
    [["/var/lib/cni/kube-ipam/", "net"]],
    [["relative/dir", "x"]],
    [["/", "lock"]],
  ])("joinPath(%j) is node's join for the plugin's paths", (parts) => {
    expect(joinPath(parts[0]!, ...parts.slice(1))).toBe(join(...parts));
  });

  test.each(["/var/log/kube-ipam.log", "/kube-ipam.log", "kube-ipam.log", "logs/kube-ipam.log", "/var/log/dir/"])(
    "parentDir(%j) is node's dirname",
    (p) => expect(parentDir(p)).toBe(dirname(p)),
  );
});

test("hostname() is what os.hostname() says", () => {
  expect(hostname()).toBe(osHostname());
});
