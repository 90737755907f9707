// One demo node as its own OS process: `node lib/node.js <nodeId> <capability,...>`.
// Serves until SIGINT or SIGTERM, then stops gracefully.
import { Mesh } from "@mesh/runtime";
import { Cart, ChatRoom, Counter, GameActor, Order } from "./actors.js";

const [nodeId, capabilities = ""] = process.argv.slice(2);
const mesh = await Mesh.start({
  nodeId,
  actors: [Counter, GameActor, ChatRoom, Cart, Order],
  capabilities: capabilities.split(",").filter(Boolean),
});
const stop = async () => {
  await mesh.stop();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
process.stdout.write(`ready ${mesh.nodeId}\n`); // after the handlers: a signal sent on seeing it is handled
