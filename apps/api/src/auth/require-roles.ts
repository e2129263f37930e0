import { type Actor, forbidden, hasAnyRole, type Role } from '@changeledger/domain';

/** Role check for reads (commands are checked by their deciders). */
export const requireRoles = (actor: Actor, roles: readonly Role[]) => {
  if (!hasAnyRole(actor, roles)) throw forbidden(`this needs the role ${roles.join(' or ')}`);
};

export const AUDIT_ROLES: readonly Role[] = ['auditor', 'infrastructure-lead', 'management'];
