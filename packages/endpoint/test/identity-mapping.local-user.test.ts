/**
 * Local account lookup: root from the real passwd database, a missing user,
 * supplementary groups from a group file, names that cannot be accounts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lookupLocalUser } from "../src/identity-mapping/local-user.js";

const dir = mkdtempSync(join(tmpdir(), "conduit-idmap-users-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lookupLocalUser", () => {
  it("finds root with uid 0, gid 0, its home and shell", () => {
    const root = lookupLocalUser("root");
    expect(root).toMatchObject({ uname: "root", uid: 0, gid: 0, dir: "/root" });
    expect(root?.groups[0]).toBe(0);
    expect(root?.shell).toMatch(/^\//);
  });

  it("returns null for a user that does not exist, and for names that cannot be accounts", () => {
    expect(lookupLocalUser("conduit-no-such-user-4711")).toBeNull();
    for (const name of ["", "-x", "root:0", "root\nx", "a/b"]) expect(lookupLocalUser(name)).toBeNull();
  });

  it("reads supplementary groups (primary first) and gecos from the files", () => {
    const passwd = join(dir, "passwd");
    const group = join(dir, "group");
    writeFileSync(passwd, "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001:Alice Liddell,,,:/home/alice:/bin/zsh\n");
    writeFileSync(group, "root:x:0:\nalice:x:1001:\nwheel:x:10:bob,alice\nlab:x:2000:alice\nother:x:3000:bob\n");
    expect(lookupLocalUser("alice", { passwdFile: passwd, groupFile: group })).toEqual({
      uname: "alice",
      uid: 1001,
      gid: 1001,
      groups: [1001, 10, 2000],
      gecos: "Alice Liddell,,,",
      dir: "/home/alice",
      shell: "/bin/zsh",
    });
  });
});
