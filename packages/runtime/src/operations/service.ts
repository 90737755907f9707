// The node as a NATS service ("micro"), so that standard NATS tooling sees it:
// `$SRV.PING.mesh`, `$SRV.INFO.mesh` and `$SRV.STATS.mesh` list every node.
import type { NatsConnection, Service } from "nats";
import type { Subjects } from "@mesh/transport";
import type { Ingress } from "../calls/ingress.js";
import type { MetricsSnapshot } from "./metrics.js";

/** The NATS service name every Mesh node registers under. */
export const SERVICE_NAME = "mesh";

/**
 * One node's service. Endpoints: `status` (`<prefix>.status.<nodeId>`, answers
 * the node's metrics as JSON, or an admin question: admin.ts), and while the node hosts a capability, `call`
 * and `cast`, the ingress, in the queue group `<prefix>-ingress`. Each
 * endpoint's STATS data is the node's metrics. The service is re-registered
 * when the capabilities change, so INFO shows them.
 */
export class NodeService {
  #service: Service | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly ingress: Ingress,
    private readonly nodeId: string,
    private readonly version: string,
    private readonly metrics: () => MetricsSnapshot,
    /** Answers a request on the status subject: the metrics, or an admin question (admin.ts). */
    private readonly admin: (data: Uint8Array) => string,
    private readonly placement: { shards: number; strategy: string; appVersion: string },
  ) {}

  /** (Re)registers the service for these capabilities and actor types. */
  async register(capabilities: readonly string[], actorTypes: readonly string[]): Promise<void> {
    const { shards, strategy, appVersion } = this.placement;
    await this.stop();
    const statsHandler = () => Promise.resolve(this.metrics());
    const service = await this.nc.services.add({
      name: SERVICE_NAME,
      version: this.version,
      description: "Mesh virtual-actor node",
      metadata: {
        node: this.nodeId,
        prefix: this.subjects.prefix,
        capabilities: capabilities.join(","),
        actor_types: actorTypes.join(","),
        shards: String(shards),
        strategy,
        app_version: appVersion,
      },
      queue: this.subjects.ingressQueue,
      statsHandler,
    });
    service.addEndpoint("status", {
      subject: this.subjects.status(this.nodeId),
      queue: "",
      handler: (_err, msg) => {
        if (msg.reply && this.subjects.answers(msg.reply)) msg.respond(this.admin(msg.data)); // else nobody may be answered (subjects.ts)
      },
    });
    if (capabilities.length > 0) {
      service.addEndpoint("call", { subject: this.subjects.ingressCalls, handler: (_err, msg) => this.ingress.handle(msg, false) });
      service.addEndpoint("cast", { subject: this.subjects.ingressCasts, handler: (_err, msg) => this.ingress.handle(msg, true) });
    }
    this.#service = service;
  }

  async stop(): Promise<void> {
    const service = this.#service;
    this.#service = undefined;
    if (service && !service.isStopped) await service.stop().catch(() => {});
  }
}
