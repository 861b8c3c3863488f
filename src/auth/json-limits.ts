/**
 * Bounds on a JSON body, checked in one pass over its bytes before it is
 * parsed: nesting depth, keys per object, values overall and the length of
 * any one string. The scan does not validate JSON (JSON.parse does that next);
 * it makes sure that whatever is parsed and validated afterwards is small in
 * every dimension, so a hostile body costs microseconds. Work is linear in the
 * body's size, which the HTTP layer has already bounded.
 */
export interface JsonLimits {
  depth: number;
  keysPerObject: number;
  values: number;
  stringBytes: number;
}

export type JsonLimitViolation = { limit: keyof JsonLimits; message: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** null when the body is within every limit, else which limit it broke first. */
export function checkJsonLimits(bytes: Uint8Array, limits: JsonLimits): JsonLimitViolation | null {
  // keys[d] counts the keys of the object open at depth d (arrays keep -1)
  const keys = new Int32Array(limits.depth + 2);
  let depth = 0;
  let values = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) {
      // the closing quote: the next one not escaped by an odd run of backslashes (indexOf is memchr-fast)
      const start = i + 1;
      let end = bytes.indexOf(QUOTE, start);
      while (end >= 0) {
        let slashes = 0;
        while (end - 1 - slashes >= start && bytes[end - 1 - slashes] === BACKSLASH) slashes++;
        if ((slashes & 1) === 0) break;
        end = bytes.indexOf(QUOTE, end + 1);
      }
      if (end < 0) end = n;
      if (end - start > limits.stringBytes)
        return { limit: "stringBytes", message: `a string is longer than ${limits.stringBytes} bytes` };
      i = end;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      depth++;
      if (depth > limits.depth) return { limit: "depth", message: `nesting is deeper than ${limits.depth} levels` };
      keys[depth] = c === OPEN_OBJ ? 0 : -1;
      if (++values > limits.values) return { limit: "values", message: `more than ${limits.values} values` };
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth > 0) depth--;
    } else if (c === COLON) {
      if (depth > 0 && keys[depth]! >= 0 && ++keys[depth]! > limits.keysPerObject)
        return { limit: "keysPerObject", message: `an object has more than ${limits.keysPerObject} keys` };
    } else if (c === COMMA) {
      if (++values > limits.values) return { limit: "values", message: `more than ${limits.values} values` };
    }
  }
  return null;
}
