// The `mesh` command's help: one text per command, and the options every command takes.
import { version } from "../version.js";

const COMMON = `Options for every command:
  -s, --server <url>   NATS server URL (default: $NATS_URL, else nats://127.0.0.1:4222)
  -p, --prefix <p>     Mesh subject prefix (default: mesh)
  --user <name>        NATS user (default: $NATS_USER; its password from $NATS_PASSWORD)
  --creds <file>       NATS creds file, JWT and seed (default: $NATS_CREDS)
  --tls-ca <file>      CA certificate to verify a TLS server with
  --inbox-prefix <p>   where replies come (default: $NATS_INBOX_PREFIX, else
                       _INBOX_<user> when a user is given, else _INBOX; a node:
                       <prefix>.inbox.<nodeId>). Under nats-secure.conf each
                       role may only read its own: _INBOX_operator for operator
  -h, --help           this help

Passwords are never taken on the command line (other users could read them):
set NATS_PASSWORD, or use a creds file.`;

export const HELP: Record<string, string> = {
  mesh: `mesh ${version}: run and inspect a Mesh cluster

Usage: mesh <command> [options]

Commands:
  node     run a node hosting the actor classes a module exports
  status   show every node: capabilities, live actors, calls served, shards owned
  top      a live view: nodes, live actors per type, the hottest actors
  console  a web page of the cluster, served by this command
  call     call an actor and print its reply
  cast     send a message to an actor
  state    print or delete a durable actor's stored state
  actor    reset one actor: drop its live activation, even in a turn that hangs
  reminders list the stored reminders of durable actors
  events   show every event subscription: its dispatchers, lag, retries and dead letters

Run "mesh <command> --help" for a command's options.`,
  node: `Usage: mesh node --actors <module.js> [--capabilities a,b] [--node-id id] [--app-version v] [--standby-ms ms]

Runs a node until SIGINT or SIGTERM (or until the process that started it is gone), then stops it gracefully.
  --actors <module>       a JavaScript module; every exported class with a handleCall method is an actor type
  --capabilities <list>   capabilities to register, comma-separated
  --node-id <id>          this node's id (default: <host>-<pid>-<random>)
  --app-version <v>       the version of your application it runs, shown by mesh status (default: unversioned)
  --standby-ms <ms>       joining a cluster running older versions, own nothing until a leaving node hands
                          over its shards, for at most this long (default: 30000; 0: never wait)

${COMMON}`,
  top: `Usage: mesh top [--interval ms] [--count n] [--hot n] [--json]

A live view of the cluster over each node's admin API, redrawn in place:
every node that hosts a capability (its app version, live actors, calls per
second, messages waiting, errors, RSS, event-loop delay p99; "!" when its
lease lapsed), live actors per type, and the hottest actors of the last
minute (calls per second, errors, p99), sampled one turn in 32. Ctrl-C quits.
  --interval <ms>      time between views (default: 1000)
  --count <n>          draw n views, then exit (default: until interrupted)
  --hot <n>            how many hot actors to show (default: 10)
  --json               one view as JSON, for scripts
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  console: `Usage: mesh console [--port n] [--host h]

Serves a web page of the cluster from this process (nothing else to run or
build; nothing is fetched from the internet): the nodes, the shard ownership of
each capability as a picture, live charts of calls/s, errors and latency per
node and per actor type, the hottest actors, a search for one actor (its live
view on every node and its stored state as JSON), event lag and the reminders
due next. It refreshes every second, over each node's admin API. Stops on
Ctrl-C or SIGTERM.
  --port <n>           the port to listen on (default: 8080; 0: a free one, printed)
  --host <h>           the address to listen on (default: 127.0.0.1, this machine only)
  --bucket <name>      the state bucket, for stored states (default: <prefix>_state)
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  status: `Usage: mesh status [--json]

Prints every node of the cluster that hosts a capability: its capabilities,
live actors, calls served, and how many shards of each capability it owns;
then the callers, processes that run Mesh and host nothing (in --json:
"nodes" and "callers"); and, for each node or caller with any, what flow
control did: bytes sent and unread, sends waiting, waited and refused unsent,
casts refused at the sender, overload notices (in --json: "flow").
  --json               the same as JSON, for scripts
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  call: `Usage: mesh call <capability> <actor> <id> [json-payload] [--init <json>] [--timeout <ms>]

Calls an actor through the ingress (any node of the capability) and prints
{"pid": ..., "result": ...} as JSON.
  --init <json>        initArg, used if this call activates the actor
  --timeout <ms>       the call's timeout (default: 5000)

${COMMON}`,
  cast: `Usage: mesh cast <capability> <actor> <id> [json-payload]

Sends a message to an actor through the ingress and prints "ok" once a node has routed it.

${COMMON}`,
  reminders: `Usage: mesh reminders list [--actor <actorType>] [--id <id>] [--json]

Prints every stored reminder (or those of one actor type, or one actor): its
actor, name, when it is due, how often it repeats, and failed tries.
  --actor <type>       only this actor type
  --id <id>            only this actor id
  --json               one JSON object per line, for scripts

${COMMON}`,
  events: `Usage: mesh events [--json]

Prints every stream subscription of the cluster's classes (docs/events.md):
its stream, its lag (events not yet handled); the events applied and
dead-lettered, stored with the floors (the whole cluster's, surviving any
node); the events handled, repeated (an actor had applied them already) and
retried by the live nodes since they started; and the node and floor of each
dispatcher.
  --json               the same as JSON, for scripts
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  state: `Usage: mesh state get <capability> <actorType> <id>
       mesh state delete <capability> <actorType> <id>

An actor is its capability, type and id (as in mesh call). get prints the
stored state of a durable actor as JSON (exit 1 when none is
stored). delete removes it; a live activation of the actor ends before its
next turn, and the next message starts from the class's initial state.
  --bucket <name>      the state bucket (default: <prefix>_state)
  --wait <ms>          delete: how long to wait for nodes to answer (default: 500)

${COMMON}`,
  actor: `Usage: mesh actor reset <capability> <actorType> <id>

Drops the live activation of one actor, on whichever node holds it (operator
role). A turn it is in is abandoned as at its deadline (maxTurnMs): its caller
gets ACTOR_CRASHED, nothing of the turn is stored or published, and the
messages waiting for it, and the next ones, go to a fresh activation (a durable
actor reads its state again). An idle activation ends as after mesh state
delete. Prints the node that held it, or that no node had it live.
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
};
