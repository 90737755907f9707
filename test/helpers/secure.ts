// A nats-server from the shipped nats-secure.conf per test (its subjects name the
// prefix "mesh", so tests do not share one), and the nodes and connections a
// test opens on it, all closed after the test, however it ends.
import type { TestFn } from "ava";
import type { NatsConnection } from "nats";
import type { Mesh } from "@mesh/runtime";
import { startSecureNatsServer } from "@mesh/runtime/testing";
import type { SecureNatsServer } from "@mesh/runtime/testing";

export interface SecureContext {
  secure: SecureNatsServer;
  nodes: Mesh[];
  conns: NatsConnection[];
}

export function useSecureServer<C extends SecureContext>(test: TestFn<C>): void {
  test.beforeEach(async (t) => {
    t.context.secure = await startSecureNatsServer();
    t.context.nodes = [];
    t.context.conns = [];
  });
  test.afterEach.always(async (t) => {
    await Promise.allSettled((t.context.nodes ?? []).map((n) => n.stop()));
    await Promise.allSettled((t.context.conns ?? []).map((c) => c.close()));
    await t.context.secure?.server.stop();
  });
}
