/**
 * The MEP's identity mapper: loads `identity_mapping_config_path`, maps a
 * submitting identity to a local username (the first mapper with a result
 * wins), and re-reads the file when it changes. A changed file that is invalid
 * keeps the previous rules, so a typo never locks every user out.
 *
 * ```ts
 * const mapper = IdentityMapper.load("/etc/conduit/idmap.json", { endpointId, log });
 * mapper.watch();
 * const mapped = await mapper.map(command.identity); // { username: "alice", mapperIndex: 0, ruleIndex: 0, … } | null
 * mapper.stop();
 * ```
 */
import { type BigIntStats, readFileSync, statSync } from "node:fs";
import type { IdentityInfo } from "@conduit/protocol/wire";
import type { Logger } from "../logging.js";
import { ExternalIdentityMapping } from "./external-mapping.js";
import { type LoadedMapper, loadMappers } from "./load-mappers.js";
import { type IdentityRecord, toIdentityRecord } from "./mapping-types.js";

export interface IdentityMapperOptions {
  /** The manager endpoint's id (external mappers get it after `-s`). */
  endpointId: string;
  log: Logger;
  /** How often `watch()` checks the file. @default 5000 (Globus's 5 s) */
  pollIntervalMs?: number;
  /** Time limit of external mapping programs. @default 5000 */
  externalTimeoutMs?: number;
}

/** Which mapper and rule mapped an identity, and to whom. */
export interface IdentityMapResult {
  /** The local user name (not yet checked against the passwd database). */
  username: string;
  /** Index of the mapper in the configuration list (0-based). */
  mapperIndex: number;
  /** That mapper's `DATA_TYPE`. */
  dataType: string;
  /** Index of the rule in an expression mapper's `mappings` (0-based); absent for an external mapper. */
  ruleIndex?: number;
  /** The identity id the mapping was for. */
  identityId: string;
}

type StatKey = readonly [bigint, bigint, bigint, bigint];

export class IdentityMapper {
  readonly path: string;
  #mappers: readonly LoadedMapper[] = [];
  #stat: StatKey | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #options: IdentityMapperOptions;

  private constructor(path: string, options: IdentityMapperOptions) {
    this.path = path;
    this.#options = options;
  }

  /**
   * Reads and checks the configuration at `path`. Throws the file system's
   * error (e.g. `EACCES`), a `SyntaxError` for bad JSON, or an `InvalidMappingError`.
   */
  static load(path: string, options: IdentityMapperOptions): IdentityMapper {
    const mapper = new IdentityMapper(path, options);
    mapper.#reload();
    return mapper;
  }

  /** The loaded mappers, in order, with their index in the file. */
  get mappers(): readonly LoadedMapper[] {
    return this.#mappers;
  }

  /**
   * Maps `identity` with each mapper in turn; the first with a result wins. A
   * mapper that fails is logged and skipped. Null when nothing matched.
   */
  async map(identity: IdentityInfo | IdentityRecord): Promise<IdentityMapResult | null> {
    const identities = [toIdentityRecord(identity)];
    const mappers = this.#mappers;
    for (const [i, { index, mapper }] of mappers.entries()) {
      let results: Array<Record<string, string[]>>;
      try {
        results = await mapper.mapIdentities(identities);
      } catch (err) {
        const e = err as Error;
        this.#options.log.warn(
          `Identity mapper ${i + 1} [of ${mappers.length}] (${mapper.className}) failed -- (${e.name}) ${e.message}`,
        );
        continue;
      }
      for (const [ruleIndex, outputs] of results.entries()) {
        for (const [identityId, usernames] of Object.entries(outputs)) {
          const username = usernames[0];
          if (username === undefined) continue;
          return {
            username,
            mapperIndex: index,
            dataType: mapper.dataType,
            // An external program has no rules to point at.
            ...(mapper instanceof ExternalIdentityMapping ? {} : { ruleIndex }),
            identityId,
          };
        }
      }
    }
    return null;
  }

  /**
   * Checks the file every `pollIntervalMs` and re-reads it when its inode,
   * ctime, mtime or size changed. Does not keep the process alive.
   */
  watch(): void {
    if (this.#timer) return;
    const interval = this.#options.pollIntervalMs ?? 5000;
    this.#timer = setInterval(() => {
      try {
        if (sameStat(this.#stat, statKey(statSync(this.path, { bigint: true })))) return;
        this.#options.log.info(`Identity mapping configuration change detected; rereading: ${this.path}`);
        this.#reload();
      } catch (err) {
        const e = err as Error;
        this.#options.log.error(
          `Unable to update identity configuration -- (${e.name}) ${e.message}\n  Identity configuration path: ${this.path}`,
        );
      }
    }, interval);
    this.#timer.unref();
  }

  /** Stops watching the file. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #reload(): void {
    // The stat is taken first, as Globus does: a broken file is reported once, not on every poll.
    this.#stat = statKey(statSync(this.path, { bigint: true }));
    const config = JSON.parse(readFileSync(this.path, "utf8")) as unknown;
    this.#mappers = loadMappers(config, {
      endpointId: this.#options.endpointId,
      log: this.#options.log,
      externalTimeoutMs: this.#options.externalTimeoutMs,
    });
  }
}

function statKey(stat: BigIntStats): StatKey {
  return [stat.ino, stat.ctimeNs, stat.mtimeNs, stat.size];
}

function sameStat(a: StatKey | undefined, b: StatKey): boolean {
  return a?.every((value, i) => value === b[i]) === true;
}
