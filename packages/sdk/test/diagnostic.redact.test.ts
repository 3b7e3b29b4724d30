/**
 * redactSecrets on its own: each rule on the shapes it must catch, ordinary
 * text left alone, and inputs shaped to make a careless regex backtrack for
 * hours (a log tail is up to -k KB of anything) finishing.
 */
import { describe, expect, it } from "vitest";
import { redactSecrets } from "../src/diagnostic/redact.js";

describe("redactSecrets", () => {
  it.each([
    ["Authorization: Bearer abcdef123456", "Authorization: Bearer [REDACTED]"],
    ["curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "curl -H 'Authorization: Basic [REDACTED]'"],
    ["amqp://user:p%40ss@host:5672/v", "amqp://user:[REDACTED]@host:5672/v"],
    ["amqps://:onlypass@host", "amqps://:[REDACTED]@host"],
    ['{"token": "abc", "n": 1}', '{"token": "[REDACTED]", "n": 1}'],
    ['{"client_secret":12345678}', '{"client_secret":[REDACTED]}'],
    ["  passphrase: 'a b c'", "  passphrase: '[REDACTED]'"],
    ["- api_key: k1", "- api_key: [REDACTED]"],
    ["export CONDUIT_TOKEN=abc123", "export CONDUIT_TOKEN=[REDACTED]"],
    ["PGPASSWORD='x y' psql", "PGPASSWORD=[REDACTED] psql"],
    ["/cb?code=1&access_token=abc&x=2", "/cb?code=1&access_token=[REDACTED]&x=2"],
    ["run --password hunter22 --yes", "run --password [REDACTED] --yes"],
    ["a eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_x b", "a [REDACTED] b"],
  ])("%s", (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it("removes the known literal secrets wherever they appear, but not short ones that would erase words", () => {
    expect(redactSecrets("using Zx81Qw2Ee3 now; the id", ["Zx81Qw2Ee3", "the"])).toBe("using [REDACTED] now; the id");
  });

  it("removes a whole key block, and the base64 lines before an END whose BEGIN was cut off", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA==\n-----END OPENSSH PRIVATE KEY-----";
    expect(redactSecrets(`before\n${key}\nafter`)).toBe(
      "before\n-----BEGIN OPENSSH PRIVATE KEY----- [REDACTED] -----END OPENSSH PRIVATE KEY-----\nafter",
    );
    expect(redactSecrets("Zm9vYmFy\nYmF6cXV4\n-----END EC PRIVATE KEY-----\nafter")).toBe(
      "[REDACTED]\n-----END EC PRIVATE KEY-----\nafter",
    );
    expect(redactSecrets("-----BEGIN PRIVATE KEY-----\nMIIE\ncut here")).toBe(
      "-----BEGIN PRIVATE KEY----- [REDACTED] -----END PRIVATE KEY-----",
    );
  });

  it("drops the lines of a YAML block scalar under a secret key", () => {
    expect(redactSecrets("a:\n  secret: |\n    line one\n    line two\n  b: keep\n")).toBe(
      "a:\n  secret: [REDACTED]\n    [REDACTED]\n  b: keep\n",
    );
  });

  it("leaves ordinary text alone", () => {
    const text = [
      "RabbitMQ no longer accepts the account ep_1 (password changed?)",
      "wrote /home/a/.conduit/tokens.json and credentials.json",
      "https://example.org/path?page=2",
      "engine:\n  type: ThreadPoolEngine\n  max_workers: 4",
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ].join("\n");
    expect(redactSecrets(text)).toBe(text);
  });

  it("finishes on inputs that make unbounded patterns backtrack", () => {
    const hex = "a1".repeat(512 * 1024);
    const dotted = "a.".repeat(256 * 1024);
    const words = "passwordpassword\n".repeat(50_000);
    const base64 = `${"QUJD\n".repeat(100_000)}no end line`;
    for (const input of [hex, dotted, `x=${hex}`, words, base64, `"${"token".repeat(100_000)}`]) {
      expect(redactSecrets(input).length).toBeGreaterThan(0);
    }
  });
});
