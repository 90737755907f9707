// Free ports for test servers, and starting again when one was taken meanwhile.
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";

/**
 * Runs `start`, which binds ports that were free a moment ago, again (up to
 * three times in all) when another process took one of them in between:
 * the server then exits with "address already in use".
 */
export async function onFreePorts<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

/** A TCP port that was free a moment ago (another process may take it before you bind it: see onFreePorts). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolvePort(port));
    });
  });
}
