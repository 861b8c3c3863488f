import pkg from "../package.json" with { type: "json" };

/** The appliance's version (package.json), embedded at build time. */
export const APPLIANCE_VERSION: string = pkg.version;
