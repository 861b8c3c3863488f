/**
 * Loader of libneuron (native/). Only ffi/ calls dlopen; it owns every pointer.
 *
 * Where the library comes from, first match wins:
 *   1. an explicit path (config `nativeLib` / NEURON_NATIVE_LIB) — no fallback when given;
 *   2. the copy embedded in the compiled executable (build/entry.ts passes its path);
 *   3. libneuron.so beside the executable;
 *   4. /usr/lib/neuron-appliance/libneuron.so (the package's location);
 *   5. native/build/libneuron.so of the source tree.
 * The library's ABI version must equal NEURON_ABI_VERSION below.
 */
import { dlopen, FFIType, ptr, CString, type FFIFunction, type Library } from "bun:ffi";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/** Must match NEURON_ABI_VERSION in native/neuron.h. */
export const NEURON_ABI_VERSION = 1;

export const NativeStatus = {
  OK: 0,
  EINVAL: -1,
  ENOMEM: -2,
  ECRYPTO: -3,
  EAUTH: -4,
  ERANGE: -5,
  EUNRECOVERABLE: -6,
  EFORMAT: -7,
  EUNSUPPORTED: -8,
  EIO: -9,
} as const;

export class NativeLibraryError extends Error {
  readonly errorCode = "NATIVE_LIBRARY_UNAVAILABLE";
  constructor(message: string) {
    super(message);
    this.name = "NativeLibraryError";
  }
}

/** A native call returned a negative status. */
export class NativeCallError extends Error {
  readonly errorCode: string;
  constructor(
    readonly fn: string,
    readonly status: number,
  ) {
    const name = Object.entries(NativeStatus).find(([, v]) => v === status)?.[0] ?? `status ${status}`;
    super(`${fn} failed: NEURON_${name.replace(/^NEURON_/, "")}`);
    this.name = "NativeCallError";
    this.errorCode = `NEURON_${name}`;
  }
}

export interface NativeLocation {
  explicit?: string;
  embedded?: string;
}

export function candidatePaths(loc: NativeLocation): string[] {
  if (loc.explicit) return [loc.explicit];
  const list: string[] = [];
  if (loc.embedded) list.push(loc.embedded);
  list.push(join(dirname(process.execPath), "libneuron.so"));
  list.push("/usr/lib/neuron-appliance/libneuron.so");
  list.push(join(import.meta.dir, "..", "native", "build", "libneuron.so"));
  return list;
}

export function resolveNativePath(loc: NativeLocation): string {
  const tried = candidatePaths(loc);
  const found = tried.find((p) => p.startsWith("/$bunfs/") || existsSync(p));
  if (!found) {
    throw new NativeLibraryError(
      loc.explicit
        ? `native library not found at ${loc.explicit} (set by nativeLib / NEURON_NATIVE_LIB)`
        : `native library libneuron.so not found; looked in: ${tried.join(", ")} (build it with \`make -C native\`)`,
    );
  }
  return found;
}

const coreSymbols = {
  neuron_version: { args: [], returns: FFIType.ptr },
  neuron_abi_version: { args: [], returns: FFIType.u32 },
  neuron_mmap_threshold: { args: [], returns: FFIType.u32 },
  neuron_status_name: { args: [FFIType.i32], returns: FFIType.ptr },
  neuron_sha256: { args: [FFIType.ptr, "usize", FFIType.ptr], returns: FFIType.i32 },
} as const satisfies Record<string, FFIFunction>;

/** Opens the library at `path` with the given symbol table (each ffi module declares its own). */
export function openSymbols<S extends Record<string, FFIFunction>>(path: string, symbols: S): Library<S> {
  try {
    return dlopen(path, symbols);
  } catch (err) {
    throw new NativeLibraryError(`cannot load native library ${path}: ${(err as Error).message}`);
  }
}

/** One module's symbol table opened from libneuron at `path`; close() unloads it. */
export class NativeModule<S extends Record<string, FFIFunction>> {
  readonly sym: Library<S>["symbols"];
  private readonly lib: Library<S>;

  constructor(path: string, symbols: S) {
    this.lib = openSymbols(path, symbols);
    this.sym = this.lib.symbols;
  }

  close(): void {
    this.lib.close();
  }
}

const EMPTY = new Uint8Array(1);

export class NativeLibrary {
  readonly path: string;
  readonly version: string;
  readonly abiVersion: number;
  private readonly lib: Library<typeof coreSymbols>;

  private constructor(path: string) {
    this.path = path;
    this.lib = openSymbols(path, coreSymbols);
    this.abiVersion = this.lib.symbols.neuron_abi_version();
    if (this.abiVersion !== NEURON_ABI_VERSION) {
      this.lib.close();
      throw new NativeLibraryError(
        `native library ${path} has ABI version ${this.abiVersion}; this build needs ${NEURON_ABI_VERSION}`,
      );
    }
    this.version = new CString(this.lib.symbols.neuron_version()!).toString();
  }

  static load(loc: NativeLocation = {}): NativeLibrary {
    return new NativeLibrary(resolveNativePath(loc));
  }

  /** The malloc mmap threshold the library fixed at load (bytes; 0 when the allocator refused). */
  mmapThreshold(): number {
    return this.lib.symbols.neuron_mmap_threshold();
  }

  statusName(status: number): string {
    return new CString(this.lib.symbols.neuron_status_name(status)!).toString();
  }

  /** SHA-256 of `data` (any length) into a new 32-byte array. */
  sha256(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    const rc = this.lib.symbols.neuron_sha256(data.length ? ptr(data) : ptr(EMPTY), data.length, ptr(out));
    if (rc !== 0) throw new NativeCallError("neuron_sha256", rc);
    return out;
  }

  close(): void {
    this.lib.close();
  }
}
