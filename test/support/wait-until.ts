/**
 * Polls `condition` every `everyMs` until it holds; throws, naming `what`, after `timeoutMs`.
 * For what a test cannot await directly (another process's or a background loop's progress).
 */
export const waitUntil = async (
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 10_000, everyMs = 10 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
};
