/**
 * Runs inside a network namespace made by the test (only its own loopback):
 * advertises the GameStream host and queries for `_nvstream._tcp.local` with
 * an independent multicast-dns querier, printing what it found as JSON.
 */
import makeMdns from "multicast-dns";
import { advertiseGameStream } from "../../../src/gamestream/mdns.ts";
import { silentLogger } from "../../../src/log.ts";

const advert = advertiseGameStream({ name: "neuron-mdns-test", port: 47989, interface: "127.0.0.1", log: silentLogger });
const mdns = makeMdns({ interface: "127.0.0.1", bind: "0.0.0.0", port: 5353, reuseAddr: true });
const found: Record<string, unknown> = {};
const done = new Promise<void>((resolve) => {
  mdns.on("response", (res: { answers: { name: string; type: string; data: unknown }[]; additionals: { name: string; type: string; data: unknown }[] }) => {
    for (const r of [...res.answers, ...res.additionals]) {
      if (r.type === "PTR" && r.name === "_nvstream._tcp.local") found.ptr = r.data;
      if (r.type === "SRV") found.srv = r.data;
      if (r.type === "A") found.a = r.data;
    }
    if (found.ptr && found.srv) resolve();
  });
});
const ask = setInterval(() => mdns.query({ questions: [{ name: "_nvstream._tcp.local", type: "PTR" }] }), 200);
await Promise.race([done, Bun.sleep(5000)]);
clearInterval(ask);
console.log(JSON.stringify(found));
await advert.stop();
mdns.destroy();
process.exit(0);
