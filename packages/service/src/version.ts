import { readFileSync } from "node:fs";

/** This package's version (package.json is one level above src/ and dist/ alike). */
export const SERVICE_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
