/**
 * The identity → local user policy of a multi-user MEP: the account the
 * mappers name must exist and, unless allow_privileged_user_mapping is set,
 * be neither root nor the MEP's own account; each refusal is the one sentence
 * the MEP logs and fails the tasks with. Real mappers, real /etc/passwd.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { IdentityMapper } from "../src/identity-mapping/identity-mapper.js";
import { lookupLocalUser } from "../src/identity-mapping/local-user.js";
import { chooseLocalUser, type LocalUserPolicy } from "../src/identity-mapping/local-user-policy.js";

const dir = mkdtempSync(join(tmpdir(), "conduit-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ID = "9cf5a1d2-41c4-4925-b0bb-f5e0a16c98ab";
const CONFIG = "/etc/conduit/endpoints/ep/config.yaml";
const FIX = `Fix the identity mapping, or set allow_privileged_user_mapping: true in ${CONFIG}.`;
const NOT_THE_MEP = 4242;

/** A mapper whose second rule maps `<name>@example.edu` to `<name>`. */
function mapper(): IdentityMapper {
  const path = join(dir, "idmap.json");
  writeFileSync(
    path,
    JSON.stringify([
      {
        DATA_TYPE: "expression_identity_mapping#1.0.0",
        mappings: [
          { source: "{username}", match: "nobody-at-all", output: "x" },
          { source: "{username}", match: "(.*)@example.edu", output: "{0}" },
        ],
      },
    ]),
  );
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  return IdentityMapper.load(path, { endpointId: "ep", log: silent });
}

function choose(username: string, policy: Partial<LocalUserPolicy> = {}) {
  return chooseLocalUser(
    mapper(),
    { id: ID, username },
    { allowPrivileged: false, configFile: CONFIG, mepUid: NOT_THE_MEP, ...policy },
  );
}

describe("chooseLocalUser", () => {
  it("gives the account and the mapper and rule that named it", async () => {
    expect(await choose("nobody@example.edu")).toEqual({
      user: lookupLocalUser("nobody"),
      mappedBy: "identity mapper 1 (expression_identity_mapping#1.0.0, rule 2)",
    });
    expect(lookupLocalUser("nobody")).toMatchObject({ uname: "nobody", uid: 65534 });
  });

  it("refuses an identity no mapper maps", async () => {
    expect(await choose("alice@example.com")).toEqual({
      refusal: `Identity failed to map to a local user name.  (LookupError) \n  Conduit effective identity: ${ID}\n  Conduit username: alice@example.com`,
    });
  });

  it("refuses an account that does not exist", async () => {
    expect(await choose("no-such-account-xyz@example.edu")).toEqual({
      refusal: `Identity mapped to a local user name, but local user does not exist.\n  Local user name: no-such-account-xyz\n  Conduit effective identity: ${ID}\n  Mapped by: identity mapper 1 (expression_identity_mapping#1.0.0, rule 2)`,
    });
  });

  it("refuses root and the MEP's own account unless allow_privileged_user_mapping is set", async () => {
    const by = "identity mapper 1 (expression_identity_mapping#1.0.0, rule 2)";
    expect(await choose("root@example.edu")).toEqual({
      refusal: `Requested UID is root (uid 0); refusing to start a user endpoint as root on a user-mapped Manager Endpoint.\n  Conduit effective identity: ${ID}\n  Mapped by: ${by}\n  ${FIX}`,
    });
    expect(await choose("nobody@example.edu", { mepUid: 65534 })).toEqual({
      refusal: `Requested UID is same as Manager Endpoint UID on a user-mapped Manager Endpoint; refusing to start a user endpoint as nobody (uid 65534).\n  Conduit effective identity: ${ID}\n  Mapped by: ${by}\n  ${FIX}`,
    });
    expect(await choose("root@example.edu", { allowPrivileged: true })).toEqual({
      user: lookupLocalUser("root"),
      mappedBy: by,
    });
    expect(await choose("nobody@example.edu", { allowPrivileged: true, mepUid: 65534 })).toMatchObject({
      user: { uname: "nobody" },
    });
  });
});
