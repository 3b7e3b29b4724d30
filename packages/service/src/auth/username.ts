import { invalidPassword, invalidUsername } from "../errors.js";

/** `user@domain`: one `@`, something on both sides, no whitespace. */
const USERNAME = /^[^@\s]+@[^@\s]+$/;

/** Returns the username, or throws a 400 naming it and the expected form. */
export function checkUsername(username: string): string {
  if (!USERNAME.test(username)) throw invalidUsername(username);
  return username;
}

/** Returns the password, or throws a 400 saying what a password must be (never echoing it). */
export function checkPassword(password: string): string {
  if (password.length < 8 || password.length > 1024 || /[\u0000-\u001f]/.test(password)) throw invalidPassword();
  return password;
}
