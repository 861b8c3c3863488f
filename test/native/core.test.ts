import { describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { candidatePaths, NativeLibrary, NativeLibraryError, NEURON_ABI_VERSION } from "../../ffi/native.ts";
import { runCli, tempDir } from "../helpers/env.ts";

describe("libneuron core through ffi", () => {
  const lib = NativeLibrary.load();

  test("reports its version and the ABI this build speaks", () => {
    expect(lib.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(lib.abiVersion).toBe(NEURON_ABI_VERSION);
    // blocks of 1 MiB or more get their own mapping (an ended session's buffers go back to the system)
    expect(lib.mmapThreshold()).toBe(1 << 20);
    expect(lib.statusName(-4)).toBe("NEURON_EAUTH");
  });

  test("SHA-256 matches node:crypto on random buffers of many sizes", () => {
    for (const size of [0, 1, 55, 56, 63, 64, 65, 1000, 4096, 1 << 20]) {
      for (let i = 0; i < 3; i++) {
        const buf = randomBytes(size);
        expect(Buffer.from(lib.sha256(buf)).toString("hex")).toBe(createHash("sha256").update(buf).digest("hex"));
      }
    }
  });

  test("a missing library at an explicit path is a clear error naming the path", () => {
    expect(() => NativeLibrary.load({ explicit: "/nonexistent/libneuron.so" })).toThrow(NativeLibraryError);
    expect(() => NativeLibrary.load({ explicit: "/nonexistent/libneuron.so" })).toThrow(/\/nonexistent\/libneuron\.so/);
    expect(candidatePaths({ explicit: "/x.so" })).toEqual(["/x.so"]);
  });

  test("a file that is not a library is refused with the path in the message", () => {
    const d = tempDir();
    try {
      const bogus = `${d.path}/libneuron.so`;
      Bun.write(bogus, "not an ELF file");
      expect(() => NativeLibrary.load({ explicit: bogus })).toThrow(new RegExp(`cannot load native library ${bogus}`));
    } finally {
      d.cleanup();
    }
  });

  test("serve refuses to start without the native library, in one line, creating nothing", () => {
    const d = tempDir();
    try {
      const r = runCli(["serve", "--port", "0", "--state-dir", `${d.path}/state`], { NEURON_NATIVE_LIB: "/nonexistent/libneuron.so" });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("/nonexistent/libneuron.so");
      expect(Bun.file(`${d.path}/state/neuron.db`).size).toBe(0);
    } finally {
      d.cleanup();
    }
  });
});
