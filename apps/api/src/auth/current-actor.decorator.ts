import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Actor } from '@changeledger/domain';
import type { AuthenticatedRequest } from './auth.guard';

export const CurrentActor = createParamDecorator((_: unknown, context: ExecutionContext): Actor => {
  const actor = context.switchToHttp().getRequest<AuthenticatedRequest>().actor;
  if (!actor) throw new Error('CurrentActor used on a public endpoint');
  return actor;
});
