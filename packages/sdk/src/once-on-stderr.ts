/**
 * Prints a service's High-Assurance disclaimer to stderr the first time it
 * comes, verbatim (as upstream prints its `ha_warning`): a Client holds one
 * for its registrations, an Executor one for its registrations and submits.
 */
export class OnceOnStderr {
  private shown = false;

  show(text: string): void {
    if (this.shown) return;
    this.shown = true;
    process.stderr.write(`${text}\n`);
  }
}
