// @mesh/runtime/testing: helpers for your own tests.
export { hasNatsServer, natsServerBinary, startNatsServer } from "./nats-server.js";
export type { NatsServer, NatsServerOptions } from "./nats-server.js";
