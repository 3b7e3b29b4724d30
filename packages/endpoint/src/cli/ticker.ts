/**
 * The attached `start`'s liveness hint: `----> Wed Aug  6 20:03:02 2025`,
 * rewritten in place every second on a terminal, as in the seed.
 */

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The date as C's `strftime("%c")` prints it in the POSIX locale. */
export function ctime(d: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${time} ${d.getFullYear()}`;
}

/** Starts the ticker on `stream`; the returned function stops it and ends the line. */
export function startTicker(stream: NodeJS.WriteStream): () => void {
  const tick = () => stream.write(`\r----> ${ctime(new Date())}`);
  tick();
  const timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    stream.write("\n");
  };
}
