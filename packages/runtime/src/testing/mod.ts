// @mesh/runtime/testing: helpers for your own tests.
export {
  SECURE_CONFIG,
  hasNatsServer,
  natsServerBinary,
  spawnGuarded,
  startNatsCluster,
  startNatsServer,
  startSecureNatsServer,
} from "./nats-server.js";
export { freePort, onFreePorts } from "./ports.js";
export type { Credentials, NatsCluster, NatsServer, NatsServerOptions, SecureNatsServer } from "./nats-server.js";
