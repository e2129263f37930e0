import type { CommandResult } from '../application/execute-decision.command';

/** The contract's command answer: `position` as a decimal string (64-bit safe). */
export const toCommandResponse = (result: CommandResult) => ({
  id: result.id,
  version: result.version,
  status: result.status,
  position: result.position.toString(),
});

export type CommandResponse = ReturnType<typeof toCommandResponse>;
