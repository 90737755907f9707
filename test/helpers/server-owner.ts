// A process that starts a nats-server and prints its pid, then waits to be killed.
import { startNatsServer } from "@mesh/runtime/testing";

const server = await startNatsServer();
process.stdout.write(`${server.pid}\n`);
setInterval(() => {}, 60_000);
