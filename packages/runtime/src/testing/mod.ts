// @mesh/runtime/testing: helpers for your own tests.
export { hasNatsServer, natsServerBinary, startNatsCluster, startNatsServer } from "./nats-server.js";
export type { NatsCluster, NatsServer, NatsServerOptions } from "./nats-server.js";
