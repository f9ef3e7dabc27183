import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../app.ts';

/** "key:<id>(<name>)": who did it, as recorded in history entries and the audit log. */
export function actorOf(request: FastifyRequest): string {
  const p = request.principal;
  return p ? `${p.name} (key ${p.keyId})` : 'anonymous';
}

export async function audit(
  ctx: AppContext,
  request: FastifyRequest,
  action: string,
  targetType: string,
  targetId: string,
  details?: unknown,
): Promise<void> {
  await ctx.audit.record({
    actor: actorOf(request),
    actor_role: request.principal?.role ?? 'none',
    action,
    target_type: targetType,
    target_id: targetId,
    request_id: String(request.id),
    details,
  });
}
