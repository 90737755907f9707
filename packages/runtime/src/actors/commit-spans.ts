// The spans of durable actors' commits (docs/observability.md "Traces"): one
// per group commit (and the publishing after it), under the last traced turn
// it covers. Given to the group commits (state/group-commit.ts) as their
// CommitEvents.span, so the state room imports nothing of tracing. Made only
// while `tracing.on`. Imports: operations/tracing.ts, state (types).
import { ROOT_CONTEXT, SpanKind, endSpan, startSpan, tracing } from "../operations/tracing.js";
import type { Context } from "../operations/tracing.js";
import type { CommitInfo, CommitSpan } from "../state/group-commit.js";

/** Starts the span `commit <actorType>` of a commit, under the last traced turn it covers; undefined while tracing is off. */
export function commitSpan(commit: CommitInfo): CommitSpan | undefined {
  if (!tracing.on) return undefined;
  let parent: Context | undefined;
  for (const h of commit.covered) parent = (h.trace as Context | undefined) ?? parent;
  const { span } = startSpan(
    `commit ${commit.actorType}`,
    SpanKind.INTERNAL,
    {
      "mesh.state.key": commit.key,
      "mesh.commit.turns": commit.covered.length,
      "mesh.commit.delete": commit.clearing,
      "mesh.commit.messages": commit.messages,
      "mesh.revision.expected": commit.expectedRevision,
    },
    parent ?? ROOT_CONTEXT,
  );
  return {
    end: (revision) => endSpan(span.setAttribute("mesh.revision", revision)),
    fail: (err) => endSpan(span, err),
  };
}
