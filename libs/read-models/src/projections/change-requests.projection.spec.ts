/**
 * `GET /changes/:id` and `GET /changes`: the folded change plus the fields lists filter and
 * sort on (status, type, riskLevel, system, requestedBy, submission time).
 */
import { createHash } from 'node:crypto';
import {
  type ChangeRequestEvent,
  evolveChangeRequest,
  fold,
  initialChangeRequestState,
} from '@changeledger/domain';
import {
  EMERGENCY_STATUSES,
  NORMAL_STATUSES,
  STANDARD_STATUSES,
  actors,
  approvedBy,
  emergencyHistory,
  event,
  incompleteEmergencyRequest,
  laterFields,
  normalHistory,
  standardHistory,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type ChangeRequestDocument,
  changeRequestsProjection,
  toChangeSummary,
  SEARCH_TEXT_SEPARATOR,
  searchKey,
} from './change-requests.projection';
import {
  type DomainEventLike,
  at,
  changeStream,
  eventLog,
  project,
  recordedEvent,
  templateStream,
} from './recorded-events.fixtures';

const docAfter = (...events: DomainEventLike[]): ChangeRequestDocument | undefined =>
  project(changeRequestsProjection, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001');

const timed = (events: ChangeRequestEvent[]) =>
  events.map((e, i) => at(e, new Date(Date.parse('2026-01-05T09:00:00.000Z') + i * 60_000).toISOString()));

describe('change requests projection', () => {
  it('documentId is the change id of a change stream, nothing for template streams', () => {
    const [submitted] = normalHistory('in-review');
    expect(changeRequestsProjection.documentId(recordedEvent(changeStream('CHG-123'), submitted))).toBe(
      'CHG-123',
    );
    expect(
      changeRequestsProjection.documentId(
        recordedEvent(templateStream('STD-001'), { type: 'StandardTemplateCreated', data: {} }),
      ),
    ).toBeUndefined();
  });

  it('a submission makes the document with its list fields', () => {
    const doc = docAfter(...normalHistory('in-review', { risk: 'medium' }));
    expect(doc).toMatchObject({
      id: 'CHG-001',
      status: 'in-review',
      type: 'normal',
      riskLevel: 'medium',
      priority: 'medium',
      systems: ['core-switch-01', 'pve-node-02'],
      requestedBy: 'u-alice',
      submittedAt: '2026-01-05T09:00:00.000Z',
      updatedAt: '2026-01-05T09:00:00.000Z',
    });
    // id, title and description, folded as GET /changes?q= folds its text
    expect(doc?.searchText).toBe(
      ['chg-001', doc!.state.request.title.toLowerCase(), doc!.state.request.description.toLowerCase()].join(
        SEARCH_TEXT_SEPARATOR,
      ),
    );
    expect(doc?.searchText).toContain('vlan 20');
    expect(searchKey('Zu\u0308rich')).toBe(searchKey('Z\u00fcrich')); // decomposed and composed alike
    // a zero-width space between a letter and its accent: composed once it is dropped
    expect(searchKey('Cafe\u200b\u0301')).toBe(searchKey('CAF\u00c9'));
    expect(searchKey('Cafe\u200b\u0301')).toBe('caf\u00e9');
    // case folded in full, not only lowered
    for (const [a, b] of [
      ['Straße', 'STRASSE'],
      ['İzmir DC', 'izmir dc'],
      ['IZMIR', 'ızmır'],
      ['ﬁrewall', 'FIREWALL'],
      ['ΟΔΟΣ', 'οδοσ'],
    ]) {
      expect(searchKey(a)).toBe(searchKey(b));
    }
    expect(searchKey('İzmir DC failover')).toContain(searchKey('IZMIR'));
    expect(doc?.state).toMatchObject({
      exists: true,
      version: 1,
      requestedBy: { id: 'u-alice', name: 'Alice Requester' },
    });
  });

  it('an emergency declared without a risk assessment has riskLevel null', () => {
    const doc = docAfter(...emergencyHistory('in-progress', incompleteEmergencyRequest()));
    expect(doc).toMatchObject({
      type: 'emergency',
      status: 'in-progress',
      riskLevel: null,
      priority: 'critical',
    });
  });

  describe.each([
    ['normal', NORMAL_STATUSES as readonly string[], (s: string) => normalHistory(s as never)],
    ['emergency', EMERGENCY_STATUSES as readonly string[], (s: string) => emergencyHistory(s as never)],
    ['standard', STANDARD_STATUSES as readonly string[], (s: string) => standardHistory(s as never)],
  ])('%s histories', (type, statuses, history) => {
    it.each(statuses.map((s) => [s]))('→ %s: the domain fold, its status and version', (status) => {
      const events = timed(history(status));
      const doc = docAfter(...events);
      const state = fold(evolveChangeRequest, initialChangeRequestState(), events);
      expect(doc?.state).toEqual(state);
      expect(doc).toMatchObject({
        type,
        status,
        updatedAt: events.at(-1)!.data.at,
        submittedAt: events[0].data.at,
      });
      expect(doc?.state.version).toBe(events.length);
    });
  });

  it('a submission stored without systemsAffected (before submissions were fully validated) does not stop the projector', () => {
    const { systemsAffected: _dropped, ...withoutSystems } = incompleteEmergencyRequest();
    const doc = docAfter(...emergencyHistory('in-progress', withoutSystems as never));
    expect(doc).toMatchObject({ status: 'in-progress', systems: [] });
  });

  it('every event of the change makes a new document (the version moves)', () => {
    const events = eventLog().append(changeStream('CHG-001'), ...normalHistory('closed'));
    let doc: ChangeRequestDocument | undefined;
    for (const e of events) {
      const next = changeRequestsProjection.evolve(doc, e);
      expect(next).toBeDefined();
      expect(next!.state.version).toBe(Number(e.revision) + 1);
      doc = { ...next!, _position: e.position.toString() };
    }
  });

  it('an amendment updates the list fields', () => {
    const { risk, ...rest } = laterFields();
    const doc = docAfter(
      ...emergencyHistory('in-progress', incompleteEmergencyRequest()),
      at(
        event('ChangeAmended', actors.alice, {
          changes: {
            ...rest,
            risk: { ...risk!, level: 'medium' },
            priority: 'high',
            systemsAffected: [' PVE-Node-03', 'nas-01', 'pve-node-03\u200b', 'NAS-01'],
          },
          previous: {},
          voidedReviews: [],
          statusBefore: 'in-progress',
          statusAfter: 'in-progress',
        }),
        '2026-01-05T11:00:00.000Z',
      ),
    );
    expect(doc?.searchText.split(SEARCH_TEXT_SEPARATOR)[1]).toBe(
      searchKey(rest.title ?? doc!.state.request.title),
    );
    expect(doc).toMatchObject({
      riskLevel: 'medium',
      priority: 'high',
      // keys, each once: what GET /changes?system= matches (the view keeps the names as sent)
      systems: ['pve-node-03', 'nas-01'],
      updatedAt: '2026-01-05T11:00:00.000Z',
      submittedAt: '2026-01-05T09:00:00.000Z',
    });
  });

  it('an event of a change with no document (no submission seen) → undefined', () => {
    expect(
      changeRequestsProjection.evolve(
        undefined,
        recordedEvent(changeStream('CHG-001'), approvedBy(actors.lena, 'low')),
      ),
    ).toBeUndefined();
  });

  it('is at the version of what it stores: a change to the documents (the fold, the list and search fields) raises the version', () => {
    // The documents hold the domain's folded state and the fields lists filter, sort and search
    // on, served as they were stored. When what they hold changes (a field of the fold renamed,
    // a search key folded differently), the documents written before keep the old shape until
    // `projections:rebuild`; raising the version makes the projector and /health name the model
    // as stale meanwhile. This pins the documents of fixed histories to the version: after a
    // change to them, raise the version and take the new hash (after a change to the fixtures
    // alone, only the hash).
    const { risk, ...rest } = laterFields();
    const worked: ChangeRequestEvent[] = [
      ...emergencyHistory('in-progress', incompleteEmergencyRequest()),
      event('ChangeAmended', actors.alice, {
        changes: { ...rest, risk: { ...risk!, level: 'medium' }, systemsAffected: ['PVE-Node-03', 'nas-01'] },
        previous: {},
        voidedReviews: [],
        statusBefore: 'in-progress',
        statusAfter: 'in-progress',
      }),
      event('ImplementationStepRecorded', actors.ivan, {
        sequence: 1,
        description: 'Saved the configuration',
      }),
      event('ImplementationIssueRecorded', actors.ivan, {
        description: 'One VM lost its lease',
        severity: 'low',
      }),
    ];
    const histories = [
      ...NORMAL_STATUSES.map((status) => normalHistory(status)),
      ...NORMAL_STATUSES.map((status) => normalHistory(status, { risk: 'high' })),
      ...EMERGENCY_STATUSES.map((status) => emergencyHistory(status)),
      ...STANDARD_STATUSES.map((status) => standardHistory(status)),
      worked,
    ];
    const documents = histories.map((history) => docAfter(...timed(history)));
    const hash = createHash('sha256').update(JSON.stringify(documents)).digest('hex').slice(0, 16);
    expect({ version: changeRequestsProjection.version, documents: hash }).toEqual({
      version: 4,
      documents: '8fb95306feb913a2',
    });
  });

  it('toChangeSummary: the list row', () => {
    const doc = docAfter(...normalHistory('approved', { risk: 'high' }))!;
    expect(doc.summary).toEqual(toChangeSummary(doc.state));
    expect(toChangeSummary(doc.state)).toEqual({
      id: 'CHG-001',
      title: 'Move VM traffic to VLAN 20',
      type: 'normal',
      status: 'approved',
      priority: 'medium',
      riskLevel: 'high',
      systemsAffected: ['core-switch-01', 'pve-node-02'],
      requestedBy: { id: 'u-alice', name: 'Alice Requester' },
      submittedAt: '2026-01-05T09:00:00.000Z',
      updatedAt: '2026-01-05T09:00:00.000Z',
      version: 6,
    });
  });
});
