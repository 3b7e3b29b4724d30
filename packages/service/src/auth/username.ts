import { invalidUsername } from "../errors.js";

/** `user@domain`: one `@`, something on both sides, no whitespace. */
const USERNAME = /^[^@\s]+@[^@\s]+$/;

/** Returns the username, or throws a 400 naming it and the expected form. */
export function checkUsername(username: string): string {
  if (!USERNAME.test(username)) throw invalidUsername(username);
  return username;
}
