import type { ChangeStatus } from '@changeledger/domain';
import type { RecordedEvent } from '@changeledger/event-store';

/** The status each event leaves a change in, as the domain's evolve sets it (amendments aside). */
const STATUS_AFTER: Partial<Record<string, ChangeStatus>> = {
  ChangePreApproved: 'approved',
  ReviewsCompleted: 'awaiting-approval',
  ChangesRequested: 'changes-requested',
  ChangeRejected: 'rejected',
  ChangeApproved: 'approved',
  ChangeScheduled: 'scheduled',
  ImplementationStarted: 'in-progress',
  ImplementationCompleted: 'implemented',
  ChangeClosed: 'closed',
  ChangeCancelled: 'cancelled',
};

/** The status a change event leaves its change in; undefined when it does not move it. */
export const statusAfterEvent = (event: RecordedEvent): ChangeStatus | undefined =>
  event.type === 'ChangeAmended'
    ? (event.data as { statusAfter: ChangeStatus }).statusAfter
    : STATUS_AFTER[event.type];
