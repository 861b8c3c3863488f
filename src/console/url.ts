/** Where the console lives, and its login URL (the code after `#`, never in the query). */
export const CONSOLE_PATH = "/console/";

export function consoleLoginUrl(baseUrl: string, code: string): string {
  return `${baseUrl.replace(/\/+$/, "")}${CONSOLE_PATH}#code=${encodeURIComponent(code)}`;
}
