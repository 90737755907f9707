import net from "node:net";
let writes = 0, bytes = 0, reads = 0;
const w = net.Socket.prototype.write;
net.Socket.prototype.write = function (d, ...a) { writes++; bytes += d.length; return w.call(this, d, ...a); };
const orig = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (ev, ...a) { if (ev === "data") reads++; return orig.call(this, ev, ...a); };
process.on("SIGTERM", () => { console.error(`[${process.argv[2]}] writes ${writes} reads ${reads} bytes ${bytes}`); setTimeout(() => process.exit(0), 50); });
process.argv.splice(1, 1);
await import("../lib/peer.js");
