/**
 * The synthetic producer in its own process (the guest side for reader tests):
 *   bun test/capture/producer-proc.ts PATH '{"width":320,"height":240,"fps":120}'
 * ("layout":"nfb" in the options: the NFB1 triple-buffered layout instead of LGMP/KVMFR.)
 * Prints "ready" once the region is initialised and runs until stdin closes or SIGTERM.
 */
import { resolveNativePath } from "../../ffi/native.ts";
import { CaptureNative, SyntheticProducer, type ProducerOptions } from "../../ffi/capture.ts";
import { FramebufNative, NfbProducer } from "../../ffi/framebuf.ts";

const [path, json] = process.argv.slice(2);
if (!path || !json) {
  console.error("usage: producer-proc.ts PATH OPTIONS_JSON");
  process.exit(2);
}
const opts = JSON.parse(json) as ProducerOptions & { layout?: "kvmfr" | "nfb" };
const native = opts.layout === "nfb" ? new FramebufNative(resolveNativePath({})) : new CaptureNative(resolveNativePath({}));
const producer =
  native instanceof FramebufNative ? NfbProducer.start(native, path, opts) : SyntheticProducer.start(native, path, opts);
let stopped = false;
const stop = () => {
  if (stopped) return;
  stopped = true;
  producer.stop();
  native.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.stdout.write("ready\n");
