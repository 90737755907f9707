// @mesh/runtime/testing: helpers for your own tests.
export { hasNatsServer, natsServerBinary, spawnGuarded, startNatsCluster, startNatsServer } from "./nats-server.js";
export type { NatsCluster, NatsServer, NatsServerOptions } from "./nats-server.js";
