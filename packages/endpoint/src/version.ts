/** This package's version (package.json is one level above src/ and dist/ alike). */
import { readFileSync } from "node:fs";

export const CONDUIT_VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
