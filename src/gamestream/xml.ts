/**
 * nvhttp replies: `<?xml …?><root status_code="200">…</root>` with flat child
 * elements (and repeated `<App>` groups for /applist). Every text value is
 * escaped here; callers never concatenate XML.
 */
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

export function escapeXml(value: string): string {
  // Characters XML 1.0 cannot carry at all are dropped.
  return value.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "").replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export type XmlValue = string | number | boolean;
export type XmlChild = [name: string, value: XmlValue | XmlChild[]];

function element(name: string, value: XmlValue | XmlChild[]): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`invalid XML element name ${JSON.stringify(name)}`);
  if (Array.isArray(value)) return `<${name}>${value.map(([n, v]) => element(n, v)).join("")}</${name}>`;
  const text = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
  return `<${name}>${escapeXml(text)}</${name}>`;
}

export function xmlReply(children: XmlChild[], statusCode = 200, statusMessage?: string): string {
  const attrs = statusMessage === undefined ? `status_code="${statusCode}"` : `status_code="${statusCode}" status_message="${escapeXml(statusMessage)}"`;
  return `<?xml version="1.0" encoding="utf-8"?>\n<root ${attrs}>${children.map(([n, v]) => element(n, v)).join("")}</root>`;
}

export const xmlError = (statusCode: number, message: string, children: XmlChild[] = []) => xmlReply(children, statusCode, message);
