import { describe, expect, test } from "bun:test";
import type { Dns } from "../../src/cni/result.ts";
import { parseResolvConf } from "../../src/config/resolv_conf.ts";

describe("parseResolvConf", () => {
  const cases: [string, string, Dns][] = [
    ["empty", "", { nameservers: [], domain: undefined, search: [], options: [] }],
    ["a typical file",
      "# generated\nnameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1\n",
      { nameservers: ["10.96.0.10"], domain: undefined, search: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        options: ["ndots:5", "timeout:1"] }],
    ["several nameservers, IPv6 too, in order", "nameserver 1.1.1.1\nnameserver fd00::53\nnameserver 8.8.8.8\n",
      { nameservers: ["1.1.1.1", "fd00::53", "8.8.8.8"], domain: undefined, search: [], options: [] }],
    ["domain: the last one wins", "domain a.example\ndomain b.example\n",
      { nameservers: [], domain: "b.example", search: [], options: [] }],
    ["search lines accumulate", "search a b\nsearch c\n", { nameservers: [], domain: undefined, search: ["a", "b", "c"], options: [] }],
    ["comments with # and ;, whole-line and trailing", "; comment\n# nameserver 9.9.9.9\nnameserver 1.1.1.1 # primary\noptions rotate ; x\n",
      { nameservers: ["1.1.1.1"], domain: undefined, search: [], options: ["rotate"] }],
    ["tabs, indentation, CRLF", "\tnameserver\t1.1.1.1\r\n  search   a.example\r\n",
      { nameservers: ["1.1.1.1"], domain: undefined, search: ["a.example"], options: [] }],
    ["keywords without a value and unknown keywords ignored", "nameserver\nsearch\nsortlist 10.0.0.0/8\nlookup file bind\n",
      { nameservers: [], domain: undefined, search: [], options: [] }],
    ["only the first value of nameserver", "nameserver 1.1.1.1 2.2.2.2\n",
      { nameservers: ["1.1.1.1"], domain: undefined, search: [], options: [] }],
    ["no final newline", "nameserver 1.1.1.1", { nameservers: ["1.1.1.1"], domain: undefined, search: [], options: [] }],
  ];
  test.each(cases)("%s", (_name, text, expected) => {
    expect(parseResolvConf(text)).toEqual(expected);
  });
});
