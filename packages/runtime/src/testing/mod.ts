// @mesh/runtime/testing: helpers for your own tests.
export {
  SECURE_CONFIG,
  freePort,
  hasNatsServer,
  natsServerBinary,
  onFreePorts,
  spawnGuarded,
  startNatsCluster,
  startNatsServer,
  startSecureNatsServer,
} from "./nats-server.js";
export type { Credentials, NatsCluster, NatsServer, NatsServerOptions, SecureNatsServer } from "./nats-server.js";
