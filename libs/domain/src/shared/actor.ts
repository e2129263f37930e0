export const ROLES = [
  'requester',
  'technical-reviewer',
  'business-reviewer',
  'security-reviewer',
  'infrastructure-lead',
  'management',
  'implementer',
  'auditor',
] as const;

export type Role = (typeof ROLES)[number];

/** Who performed a command, as taken from the verified token. */
export interface Actor {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly Role[];
}

/** The part of an actor that events keep inside their data (roles live in metadata). */
export interface ActorRef {
  readonly id: string;
  readonly name: string;
}

export const actorRef = (actor: Actor): ActorRef => ({ id: actor.id, name: actor.name });

export const hasAnyRole = (actor: Actor, roles: readonly Role[]): boolean =>
  roles.some((role) => actor.roles.includes(role));
