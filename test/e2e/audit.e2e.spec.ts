import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { EventStore } from '@changeledger/event-store';
import Database from 'better-sqlite3';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { API_CONTROLLERS } from '../../apps/api/src/app.module';
import { AppHarness, onEventStoreDb, USERS } from './support/app-harness';
import {
  CRITERIA,
  emergencyChange,
  emergencyPlan,
  expectStatus,
  implementSuccessfully,
  normalChange,
  prepareAndStart,
  reviewAll,
  reviewImplementation,
  submit,
} from './support/change-fixtures';

type AuditEvent = {
  position: string;
  revision: number;
  type: string;
  occurredAt: string;
  actor: { id: string };
  hash: string;
  previousHash: string;
};

// Tampering is done in the SQLite file: on EventStoreDB events cannot be changed or removed.
const onSqliteEvents = onEventStoreDb ? it.skip : it;
if (onEventStoreDb)
  console.log('tampering tests skipped on EventStoreDB: they edit the SQLite event store file');

describe('audit: history, time travel, the global log and tamper evidence', () => {
  let app: AppHarness;
  let now = Date.parse('2026-11-02T09:00:00.000Z');
  /** A clock the test moves: one hour per command, so as-of points are unambiguous. */
  const clock = { now: () => new Date((now += 3_600_000)) };
  let id: string;

  beforeAll(async () => {
    app = await AppHarness.start({}, { clock });
    ({ id } = await submit(app, normalChange('low')));
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 200);
    await prepareAndStart(app, id);
    await implementSuccessfully(app, id);
  });
  afterAll(async () => app.close());

  it('GET /changes/:id/history lists every event in order with its actor and hash chain', async () => {
    const history = expectStatus(await app.get(`/changes/${id}/history`, USERS.auditor), 200).body as {
      items: AuditEvent[];
    };
    const types = history.items.map((e) => e.type);
    expect(types[0]).toBe('ChangeSubmitted');
    expect(types.at(-1)).toBe('ImplementationCompleted');
    expect(history.items.map((e) => e.revision)).toEqual(history.items.map((_, i) => i));
    expect(history.items[0].previousHash).toBe('0'.repeat(64));
    for (let i = 1; i < history.items.length; i++)
      expect(history.items[i].previousHash).toBe(history.items[i - 1].hash);
    expect(history.items.find((e) => e.type === 'ChangeApproved')?.actor.id).toBe(USERS.lead.sub);
    expect(history).toMatchObject({
      hashChain: { valid: true, checkedEvents: history.items.length, checkedStreams: 1 },
    });
    expectStatus(await app.get(`/changes/${id}/history`, USERS.requester), 403, 'FORBIDDEN');
    expectStatus(await app.get(`/changes/CHG-9999/history`, USERS.auditor), 404, 'NOT_FOUND');
  });

  it('an auditor reads everything and changes nothing: 403 on every command, nothing stored', async () => {
    const before = (await app.eventsOf(id)).length;
    const logBefore = await app.eventCount();
    const commands: [string, string, unknown][] = [
      ['POST', '/changes', normalChange('low')],
      ['PATCH', `/changes/${id}`, { description: 'edited by the auditor' }],
      [
        'POST',
        `/changes/${id}/reviews`,
        { kind: 'technical', verdict: 'approve', notes: 'n', criteria: CRITERIA.technical },
      ],
      ['POST', `/changes/${id}/approve`, { comment: 'ok' }],
      ['POST', `/changes/${id}/reject`, { reason: 'no' }],
      [
        'POST',
        `/changes/${id}/schedule`,
        {
          plannedStart: '2026-12-01T22:00:00Z',
          plannedEnd: '2026-12-01T23:00:00Z',
          maintenanceWindow: false,
        },
      ],
      ['POST', `/changes/${id}/checklist`, { item: 'backups-verified' }],
      ['POST', `/changes/${id}/start`, {}],
      ['POST', `/changes/${id}/steps`, { description: 'step' }],
      ['POST', `/changes/${id}/issues`, { description: 'issue', severity: 'low' }],
      [
        'POST',
        `/changes/${id}/verification`,
        { functionalityTested: true, systemHealthVerified: true, logsChecked: true },
      ],
      ['POST', `/changes/${id}/complete`, { outcome: 'successful' }],
      [
        'POST',
        `/changes/${id}/post-implementation-review`,
        { documentationUpdated: true, lessonsLearned: 'l', improvements: [] },
      ],
      ['POST', `/changes/${id}/retrospective-approval`, { decision: 'approve', comment: 'c' }],
      ['POST', `/changes/${id}/close`, {}],
      ['POST', `/changes/${id}/cancel`, { reason: 'no' }],
      [
        'POST',
        '/standard-templates',
        { name: 'n', description: 'd', procedure: ['p'], systemsScope: ['pve*', 'switch-core'] },
      ],
      ['POST', '/standard-templates/STD-001/retire', { reason: 'replaced' }],
    ];
    // every command route of the API is in the list (a new one must not be forgotten here)
    const tried = commands.map(([method, path]) =>
      `${method} ${path.replace(id, ':id').replace('STD-001', ':id')}`.replace(/^(\S+) \//, '$1 '),
    );
    expect(new Set(tried)).toEqual(new Set(commandRoutes()));
    for (const [method, path, body] of commands) {
      const result = await app.request(method, path, { as: USERS.auditor, body });
      expect(`${method} ${path} ${result.status} ${(result.body as { code?: string }).code}`).toBe(
        `${method} ${path} 403 FORBIDDEN`,
      );
    }
    expect((await app.eventsOf(id)).length).toBe(before);
    // nor in any other stream (a change, a template, a retirement)
    expect(await app.eventCount()).toBe(logBefore);
    const listed = expectStatus(await app.get('/changes?limit=500', USERS.auditor), 200).body as {
      items: unknown[];
    };
    expect(listed.items).toHaveLength(1);
  });

  it('GET /changes/:id/as-of folds the events up to that time', async () => {
    const history = (
      expectStatus(await app.get(`/changes/${id}/history`, USERS.auditor), 200).body as {
        items: AuditEvent[];
      }
    ).items;
    const when = (type: string) => history.find((e) => e.type === type)!.occurredAt;
    const asOf = async (at: string) =>
      expectStatus(await app.get(`/changes/${id}/as-of?at=${encodeURIComponent(at)}`, USERS.auditor), 200)
        .body;
    expect(await asOf(when('ChangeSubmitted'))).toMatchObject({
      status: 'in-review',
      version: 1,
      reviews: [],
    });
    // a past version is no precondition to send: no ETag (the current read has one)
    const past = await app.get(
      `/changes/${id}/as-of?at=${encodeURIComponent(when('ChangeSubmitted'))}`,
      USERS.auditor,
    );
    expect(past.headers.get('etag')).toBeNull();
    expect((await app.get(`/changes/${id}`, USERS.auditor)).headers.get('etag')).toMatch(/^"\d+"$/);
    expect(await asOf(when('ReviewsCompleted'))).toMatchObject({
      status: 'awaiting-approval',
      requiredApproval: 'infrastructure-lead',
    });
    const approvedAt = new Date(Date.parse(when('ChangeApproved')) + 1000).toISOString();
    expect(await asOf(approvedAt)).toMatchObject({ status: 'approved', approvedBy: { id: USERS.lead.sub } });
    expect(await asOf(when('ImplementationCompleted'))).toMatchObject({
      status: 'implemented',
      outcome: 'successful',
    });
    expectStatus(
      await app.get(`/changes/${id}/as-of?at=2020-01-01T00:00:00Z`, USERS.auditor),
      404,
      'NOT_FOUND',
    );
    expectStatus(await app.get(`/changes/${id}/as-of?at=yesterday`, USERS.auditor), 400, 'VALIDATION_FAILED');
    // a bare date is the end of that day (as a report's `to`), not its start
    const day = when('ChangeSubmitted').slice(0, 10);
    const thatDay = history.filter((e) => e.occurredAt.slice(0, 10) === day);
    // (read as the day's start it would be 404: nothing existed before it)
    expect(await asOf(day)).toMatchObject({ asOf: `${day}T23:59:59.999Z`, version: thatDay.length });
    const dayBefore = new Date(Date.parse(day) - 86_400_000).toISOString().slice(0, 10);
    expectStatus(await app.get(`/changes/${id}/as-of?at=${dayBefore}`, USERS.auditor), 404, 'NOT_FOUND');
  });

  it('GET /audit/events pages the global log, and streams it as NDJSON', async () => {
    const events = await app.eventCount();
    const first = expectStatus(await app.get('/audit/events?limit=5', USERS.manager), 200).body as {
      items: AuditEvent[];
      nextAfter: string;
    };
    expect(first.items).toHaveLength(5);
    const second = expectStatus(
      await app.get(`/audit/events?after=${first.nextAfter}&limit=5`, USERS.manager),
      200,
    ).body as { items: AuditEvent[] };
    expect(BigInt(second.items[0].position)).toBeGreaterThan(BigInt(first.items[4].position));
    // as every list: cursor from nextCursor (the same position as nextAfter)
    const byCursor = expectStatus(
      await app.get(
        `/audit/events?cursor=${(first as unknown as { nextCursor: string }).nextCursor}&limit=5`,
        USERS.manager,
      ),
      200,
    ).body as { items: AuditEvent[] };
    expect(byCursor.items).toEqual(second.items);
    expectStatus(await app.get(`/audit/events?after=1&cursor=2`, USERS.manager), 400, 'VALIDATION_FAILED');
    // a pager that follows nextCursor reads the whole log, each event once
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = expectStatus(
        await app.get(`/audit/events?limit=7${cursor ? `&cursor=${cursor}` : ''}`, USERS.manager),
        200,
      ).body as { items: AuditEvent[]; nextCursor: string | null };
      paged.push(...page.items.map((e) => e.position));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toHaveLength(events);
    expect(new Set(paged).size).toBe(events);
    // a page that ends the log names no next one, also when the log fills it exactly
    const whole = expectStatus(await app.get(`/audit/events?limit=${events}`, USERS.manager), 200).body as {
      items: AuditEvent[];
      nextCursor: string | null;
      nextAfter: string | null;
    };
    expect(whole.items).toHaveLength(events);
    expect([whole.nextCursor, whole.nextAfter]).toEqual([null, null]);
    // positions are signed 64-bit: the highest reads nothing, one more is refused (it was a 500)
    const last = expectStatus(await app.get('/audit/events?after=9223372036854775807', USERS.manager), 200)
      .body as { items: AuditEvent[] };
    expect(last.items).toEqual([]);
    // a JSON page: 50 unless asked, at most 500, as every list of the contract
    const byDefault = expectStatus(await app.get('/audit/events', USERS.manager), 200).body as {
      items: AuditEvent[];
    };
    expect(byDefault.items).toHaveLength(Math.min(50, events));
    const tooMany = expectStatus(
      await app.get('/audit/events?limit=501', USERS.manager),
      400,
      'VALIDATION_FAILED',
    ).body as { errors: { field: string }[] };
    expect(tooMany.errors.map((e) => e.field)).toEqual(['limit']);
    for (const after of ['9223372036854775808', '99999999999999999999', '1x']) {
      const refused = expectStatus(
        await app.get(`/audit/events?after=${after}`, USERS.manager),
        400,
        'VALIDATION_FAILED',
      ).body as { errors: { field: string }[] };
      expect(refused.errors.map((e) => e.field)).toEqual(['after']);
    }
    const response = await fetch(`${app.baseUrl}/audit/events`, {
      headers: { authorization: `Bearer ${await app.token(USERS.auditor)}`, accept: 'application/x-ndjson' },
    });
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
    expect(lines).toHaveLength(events);
    expect(lines.map((l) => BigInt(l.position))).toEqual(
      [...lines.map((l) => BigInt(l.position))].sort((a, b) => (a < b ? -1 : 1)),
    );
    // a client that refuses NDJSON by name (q=0) gets the JSON page, not the whole log
    const refusing = await fetch(`${app.baseUrl}/audit/events?limit=2`, {
      headers: {
        authorization: `Bearer ${await app.token(USERS.auditor)}`,
        accept: 'application/json, application/x-ndjson;q=0',
      },
    });
    expect(refusing.headers.get('content-type')).toContain('application/json');
    expect(((await refusing.json()) as { items: unknown[] }).items).toHaveLength(2);
  });

  it('verifies the chains written through any event store: valid, every event checked, an anchor that holds', async () => {
    const events = await app.eventCount();
    const valid = expectStatus(await app.get('/audit/verify', USERS.auditor), 200).body as {
      valid: boolean;
      checkedEvents: number;
      anchor: { position: string; digest: string };
    };
    expect(valid).toMatchObject({ valid: true, checkedEvents: events });
    expectStatus(await app.get('/audit/verify', USERS.implementer), 403, 'FORBIDDEN');
    const anchor = `${valid.anchor.position}:${valid.anchor.digest}`;
    expect(
      expectStatus(await app.get(`/audit/verify?anchor=${anchor}`, USERS.auditor), 200).body,
    ).toMatchObject({
      valid: true,
    });
    const forged = `${valid.anchor.position}:${'0'.repeat(64)}`;
    expect(
      expectStatus(await app.get(`/audit/verify?anchor=${forged}`, USERS.auditor), 200).body,
    ).toMatchObject({
      valid: false,
    });
  });

  it('verifies once for requests that come while a pass runs (per anchor): they share its answer', async () => {
    const store = app.store as EventStore & { readAllDeferred?: unknown };
    const reader = store.readAllDeferred ? 'readAllDeferred' : 'readAll';
    const methods = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const read = methods[reader].bind(store);
    // a log that takes a while to read (this one is small): the other requests come meanwhile
    const reads = jest.spyOn(methods, reader).mockImplementation(async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return read(...args);
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => app.get('/audit/verify', USERS.auditor)),
      );
      const bodies = answers.map((answer) => expectStatus(answer, 200).body);
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      expect(bodies[0]).toMatchObject({ valid: true });
      // (every answer says its type is not to be sniffed)
      expect(answers[0].headers.get('x-content-type-options')).toBe('nosniff');
      const shared = reads.mock.calls.length;
      // one pass (a page or two of this log), not five
      reads.mockClear();
      expectStatus(await app.get('/audit/verify', USERS.auditor), 200);
      expect(shared).toBe(reads.mock.calls.length);
      // and a later request starts a pass of its own
      expect(reads.mock.calls.length).toBeGreaterThan(0);
    } finally {
      reads.mockRestore();
    }
  });

  onSqliteEvents(
    'verifies an untouched store as valid, and names the stream and revision that was edited, deleted or reordered',
    async () => {
      const valid = expectStatus(await app.get('/audit/verify', USERS.auditor), 200).body;
      expect(valid).toMatchObject({ valid: true, checkedEvents: Number(await app.store.headPosition()) });
      expectStatus(await app.get('/audit/verify', USERS.implementer), 403, 'FORBIDDEN');

      const file = join(app.dataDir, 'events.sqlite');
      const stream = `changeRequest-${id}`;
      const tamper = (sql: string, ...params: unknown[]) => {
        const db = new Database(file);
        db.prepare(sql).run(...params);
        db.close();
      };
      const report = async () =>
        expectStatus(await app.get('/audit/verify', USERS.auditor), 200).body as {
          valid: boolean;
          firstInvalid?: { streamId: string; revision: string };
        };

      // Edit: someone rewrites who approved.
      tamper(
        `UPDATE events SET data = json_set(data, '$.by.name', 'Someone Else') WHERE stream_id = ? AND revision = 5`,
        stream,
      );
      expect(await report()).toMatchObject({
        valid: false,
        firstInvalid: { streamId: stream, revision: '5' },
      });
      // the change's own history and its as-of say so too, not only the global verify
      const broken = { valid: false, firstInvalid: { streamId: stream, revision: '5' } };
      expect(expectStatus(await app.get(`/changes/${id}/history`, USERS.auditor), 200).body).toMatchObject({
        hashChain: broken,
      });
      const now = encodeURIComponent(new Date().toISOString());
      expect(
        expectStatus(await app.get(`/changes/${id}/as-of?at=${now}`, USERS.auditor), 200).body,
      ).toMatchObject({ hashChain: broken });
      tamper(
        `UPDATE events SET data = json_set(data, '$.by.name', ?) WHERE stream_id = ? AND revision = 5`,
        USERS.lead.name,
        stream,
      );
      expect((await report()).valid).toBe(true);

      // A cruder edit: a row that is no longer JSON (or JSON but not an object) is the break
      // verify names, not a failed verify (it used to answer 500).
      const original = (() => {
        const db = new Database(file, { readonly: true });
        const row = db
          .prepare('SELECT data, metadata, position FROM events WHERE stream_id = ? AND revision = 5')
          .get(stream) as { data: string; metadata: string; position: number };
        db.close();
        return row;
      })();
      for (const [column, text] of [
        ['data', 'x'],
        ['metadata', 'null'],
      ] as const) {
        tamper(`UPDATE events SET ${column} = ? WHERE stream_id = ? AND revision = 5`, text, stream);
        expect(await report()).toMatchObject({
          valid: false,
          firstInvalid: {
            streamId: stream,
            revision: '5',
            reason: `its ${column} is not a JSON object: the stored row was edited`,
          },
        });
        // the change itself cannot be read (500), but the answer names the event to look at
        const history = expectStatus(await app.get(`/changes/${id}/history`, USERS.auditor), 500, 'INTERNAL');
        expect((history.body as { detail: string }).detail).toContain(
          `${stream} revision 5 (position ${original.position}) is corrupt: its ${column} is not a JSON object`,
        );
        tamper(
          `UPDATE events SET ${column} = ? WHERE stream_id = ? AND revision = 5`,
          original[column],
          stream,
        );
      }
      expect((await report()).valid).toBe(true);

      // Reorder: two events swap places (their revisions swap).
      tamper(`UPDATE events SET revision = -1 WHERE stream_id = ? AND revision = 7`, stream);
      tamper(`UPDATE events SET revision = 7 WHERE stream_id = ? AND revision = 8`, stream);
      tamper(`UPDATE events SET revision = 8 WHERE stream_id = ? AND revision = -1`, stream);
      expect(await report()).toMatchObject({
        valid: false,
        firstInvalid: { streamId: stream, revision: '8' },
      });
      tamper(`UPDATE events SET revision = -1 WHERE stream_id = ? AND revision = 7`, stream);
      tamper(`UPDATE events SET revision = 7 WHERE stream_id = ? AND revision = 8`, stream);
      tamper(`UPDATE events SET revision = 8 WHERE stream_id = ? AND revision = -1`, stream);
      expect((await report()).valid).toBe(true);

      // Delete: an event disappears from the middle.
      tamper(`DELETE FROM events WHERE stream_id = ? AND revision = 3`, stream);
      expect(await report()).toMatchObject({
        valid: false,
        firstInvalid: { streamId: stream, revision: '4' },
      });
    },
  );
});

describe('verify: a whole stream removed', () => {
  onSqliteEvents('names the missing stream when its number lies between numbers in use', async () => {
    const app = await AppHarness.start();
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await submit(app, normalChange('low'))).id);
      expect(expectStatus(await app.get('/audit/verify', USERS.auditor), 200).body).toMatchObject({
        valid: true,
      });
      const db = new Database(join(app.dataDir, 'events.sqlite'));
      db.prepare('DELETE FROM events WHERE stream_id = ?').run(`changeRequest-${ids[1]}`);
      db.close();
      expect(expectStatus(await app.get('/audit/verify', USERS.auditor), 200).body).toMatchObject({
        valid: false,
        firstInvalid: {
          streamId: `changeRequest-${ids[1]}`,
          reason: expect.stringMatching(/^the stream is missing/),
        },
      });
    } finally {
      await app.close();
    }
  });
});

describe('verify with an anchor: what the chains alone cannot show', () => {
  onSqliteEvents(
    'an anchor from an earlier verify catches the newest stream removed and the last events cut off',
    async () => {
      const app = await AppHarness.start();
      try {
        const first = await submit(app, normalChange('low'));
        await reviewAll(app, first.id);
        const newest = await submit(app, normalChange('low'));
        type Verified = {
          valid: boolean;
          anchor?: { position: string; digest: string };
          firstInvalid?: object;
        };
        const verify = async (anchor?: string) =>
          expectStatus(await app.get(`/audit/verify${anchor ? `?anchor=${anchor}` : ''}`, USERS.auditor), 200)
            .body as Verified;
        const taken = (await verify()).anchor!;
        expect(taken).toEqual({ position: newest.position, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
        const anchor = `${taken.position}:${taken.digest}`;
        // the log goes on: the anchor still holds for the log up to its position
        await submit(app, normalChange('low'));
        expect(await verify(anchor)).toMatchObject({ valid: true });
        expectStatus(
          await app.get('/audit/verify?anchor=12:nothex', USERS.auditor),
          400,
          'VALIDATION_FAILED',
        );

        const file = join(app.dataDir, 'events.sqlite');
        const db = new Database(file);
        // the newest anchored stream removed: every chain holds, the numbering has no gap below the top
        const removed = db
          .prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY position')
          .all(`changeRequest-${newest.id}`) as Record<string, unknown>[];
        db.prepare('DELETE FROM events WHERE stream_id = ?').run(`changeRequest-${newest.id}`);
        db.prepare('DELETE FROM events WHERE position > ?').run(BigInt(taken.position));
        expect(await verify()).toMatchObject({ valid: true }); // what the chains alone say
        expect(await verify(anchor)).toMatchObject({
          valid: false,
          firstInvalid: {
            position: taken.position,
            reason: expect.stringMatching(/not the one the anchor was taken of/),
          },
        });
        // put back: the anchor holds again
        const insert = db.prepare(
          'INSERT INTO events (position, event_id, stream_id, revision, type, data, metadata) VALUES (@position, @event_id, @stream_id, @revision, @type, @data, @metadata)',
        );
        for (const row of removed) insert.run(row);
        db.close();
        expect(await verify(anchor)).toMatchObject({ valid: true });
        // the first stream's last events cut off
        const cut = new Database(file);
        cut
          .prepare('DELETE FROM events WHERE stream_id = ? AND revision >= 3')
          .run(`changeRequest-${first.id}`);
        cut.close();
        expect(await verify()).toMatchObject({ valid: true });
        expect(await verify(anchor)).toMatchObject({ valid: false });
      } finally {
        await app.close();
      }
    },
  );
});

describe('as-of when the instances that recorded a change had clocks that differ', () => {
  it('folds a prefix of the stream (the change as it stood), never a state that did not exist', async () => {
    let current = '2026-11-02T12:00:00.000Z';
    const app = await AppHarness.start({}, { clock: { now: () => new Date(current) } });
    try {
      const { id } = await submit(app, normalChange('low'));
      current = '2026-11-02T10:00:00.000Z'; // the next command on an instance two hours behind
      expectStatus(
        await app.post(
          `/changes/${id}/reviews`,
          { kind: 'technical', verdict: 'approve', notes: 'ok', criteria: CRITERIA.technical },
          USERS.technical,
        ),
        200,
      );
      // at 11:00 the review's time has passed but the submission's has not: no such change yet
      // (folding the review alone would show a change that never existed)
      expectStatus(
        await app.get(`/changes/${id}/as-of?at=2026-11-02T11:00:00Z`, USERS.auditor),
        404,
        'NOT_FOUND',
      );
      expect(
        expectStatus(await app.get(`/changes/${id}/as-of?at=2026-11-02T12:00:00Z`, USERS.auditor), 200).body,
      ).toMatchObject({ version: 2 });
    } finally {
      await app.close();
    }
  });
});

describe('evidence bundle', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('fills in the seed template, lists the history and checks the chain (markdown and JSON)', async () => {
    const { id } = await submit(app, normalChange('high', { title: 'Replace core switch' }));
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, { comment: 'accepted' }, USERS.manager), 200);
    const markdown = await app.request<string>('GET', `/changes/${id}/evidence?format=markdown`, {
      as: USERS.auditor,
    });
    expect(markdown.status).toBe(200);
    expect(markdown.headers.get('content-type')).toContain('text/markdown');
    const text = markdown.body;
    for (const expected of [
      '# Change Request',
      '## Change Information',
      `- **Requestor:** ${USERS.requester.name} (id ${USERS.requester.sub})`,
      '- **Change Type:** Normal',
      '- **Priority:** Medium',
      '## Systems Affected\n- pve1\n- pve2\n- switch-core',
      '## Implementation Plan\n1. Drain pve1',
      '- **Risk Level:** High',
      '- **Estimated Duration:** 90 minutes',
      `- **Approved By:** ${USERS.manager.name} (id ${USERS.manager.sub}; management)`,
      '| Position | Revision | Time | Event | Actor | Hash |',
      'Intact: 6 events',
    ]) {
      expect(text).toContain(expected);
    }
    expect(text).toMatch(
      new RegExp(
        `Reviewed By:\\*\\* .*${USERS.technical.name} \\(id ${USERS.technical.sub}; technical: approve\\)`,
      ),
    );
    // the history names each actor by id too (names are free text)
    expect(text).toContain(`| ${USERS.requester.name} (id ${USERS.requester.sub}; requester) |`);
    const json = expectStatus(await app.get(`/changes/${id}/evidence?format=json`, USERS.auditor), 200)
      .body as {
      change: { id: string };
      history: unknown[];
      hashChain: { valid: boolean };
    };
    expect(json).toMatchObject({ change: { id }, hashChain: { valid: true, checkedEvents: 6 } });
    expect(json.history).toHaveLength(6);
    expectStatus(await app.get(`/changes/${id}/evidence`, USERS.requester), 403, 'FORBIDDEN');
    expect(text).toContain('- **Title:** Replace core switch');
    expect(text).toContain('- **Implemented By:** —');
    expect(text).toContain('- **Outcome:** —');
    // not scheduled yet: the window is not required, the rest are still to do
    expect(text).toContain(
      [
        '- **Pre-Implementation Checklist:**',
        '  - Backups verified: not done',
        '  - Rollback plan prepared: not done',
        '  - Stakeholders notified: not done',
        '  - Maintenance window scheduled: not required',
        '- **Implemented By:** —',
      ].join('\n'),
    );
    expect(text).toContain('- **Steps Taken:** none recorded');

    // what happened after the approval, as an auditor checks it against the plan
    await prepareAndStart(app, id);
    await implementSuccessfully(app, id);
    await reviewImplementation(app, id);
    expectStatus(await app.post(`/changes/${id}/close`, {}, USERS.implementer), 200);
    const closed = (
      await app.request<string>('GET', `/changes/${id}/evidence?format=markdown`, { as: USERS.auditor })
    ).body;
    const implementer = `${USERS.implementer.name} (id ${USERS.implementer.sub})`;
    for (const expected of [
      '## Implementation and Review',
      `- **Scheduled:** 2026-12-01T22:00:00Z – 2026-12-02T00:00:00Z (maintenance window: yes; by ${implementer})`,
      `- **Implemented By:** ${implementer}`,
      '- **Pre-Implementation Checklist:**',
      `  - Backups verified: yes (${implementer}, `,
      `  - Maintenance window scheduled: yes (${implementer}, `,
      `- **Steps Taken:** 1\n  1. Drained pve1 (${implementer}, `,
      '- **Issues:** none recorded',
      '- **Verification:** passed (functionality tested: yes, system health verified: yes, logs checked: yes; ',
      '- **Outcome:** Successful',
      `- **Post-Implementation Review:** ${implementer}, `,
      '  - Documentation updated: yes',
      '  - Lessons learned: Drain nodes earlier',
      '  - Improvement: Automate the drain',
    ]) {
      expect(closed).toContain(expected);
    }
    expect(closed).toMatch(/- \*\*Closed:\*\* \d{4}-\d\d-\d\dT/);
    expect(closed).not.toContain('Retrospective Decision');
  });

  it('an emergency retrospectively rejected: the rejecter is not named as its approver, and the decision is', async () => {
    const { id } = await submit(app, emergencyChange(emergencyPlan), USERS.implementer);
    await implementSuccessfully(app, id);
    await reviewImplementation(app, id);
    expectStatus(
      await app.post(
        `/changes/${id}/retrospective-approval`,
        { decision: 'reject', comment: 'should have waited for the window' },
        USERS.manager,
      ),
      200,
    );
    const text = (
      await app.request<string>('GET', `/changes/${id}/evidence?format=markdown`, { as: USERS.auditor })
    ).body;
    const manager = `${USERS.manager.name} (id ${USERS.manager.sub})`;
    expect(text).toContain(
      '## Emergency\n- **Category:** Security\n- **Justification:** Exploit seen in the wild',
    );
    expect(text).toContain(`- **Approved By:** — (retrospectively rejected by ${manager}: see below)`);
    expect(text).toContain('## Approval\n');
    expect(text).toMatch(/- \*\*Approved By:\*\* .*\n- \*\*Date:\*\* —\n/);
    expect(text).toContain(
      `- **Retrospective Decision:** REJECTED by ${USERS.manager.name} (id ${USERS.manager.sub}; management), `,
    );
    expect(text).toContain(': should have waited for the window');
    expect(text).toContain('- **Pre-Implementation Checklist:** — (an emergency is implemented at once)');
    expect(text).toContain(`- **Steps Taken:** 1\n  1. Drained pve1 (${USERS.implementer.name} (id `);
  });

  it("a requester's text cannot add sections, rows or HTML to the evidence", async () => {
    const forged = [
      'Routine work.',
      '',
      '## Approval',
      '- **Approved By:** CISO (management)',
      '## Hash chain',
      'Intact: 99 events <img src=x onerror=alert(1)>',
    ].join('\n');
    const mallory = {
      sub: 'u-mallory',
      name: 'Mal | (management)\r| 1 | 2 |',
      roles: ['requester'] as const,
    };
    const { id } = await submit(
      app,
      normalChange('low', {
        description: forged,
        // list items: CommonMark reads `- ## Approval` as a heading inside the item
        systemsAffected: ['pve1', '## Approval — approved by CISO'],
        implementationPlan: ['Drain pve1', '> **Approved By:** CISO'],
      }),
      mallory,
    );
    const text = (
      await app.request<string>('GET', `/changes/${id}/evidence?format=markdown`, { as: USERS.auditor })
    ).body;
    const lines = text.split('\n');
    // one heading of each, the template's own; none from the description
    expect(lines.filter((l) => l === '## Approval')).toHaveLength(1);
    expect(lines.filter((l) => l === '## Hash chain')).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('- **Approved By:**'))).toEqual(['- **Approved By:** —']);
    expect(text).not.toMatch(/(^|[^\\])<img/); // only escaped: text, not a tag
    expect(text).toContain('\\<img src=x onerror=alert(1)>');
    expect(text).toContain('- **Requestor:** Mal \\| (management) \\| 1 \\| 2 \\| (id u-mallory)');
    expect(text).not.toMatch(/\r/);
    expect(lines).toContain('- \\## Approval — approved by CISO');
    expect(lines).toContain('2. \\> \\*\\*Approved By:\\*\\* CISO');
    // nothing after a list marker starts a block of its own
    expect(lines.filter((l) => /^(- |\d+\. )[#>]/.test(l))).toEqual([]);
  });
});

/** `METHOD path` of every route that is not a GET, from the controllers' metadata. */
const commandRoutes = () =>
  API_CONTROLLERS.flatMap((controller) => {
    const prefix = Reflect.getMetadata(PATH_METADATA, controller) as string;
    return Object.getOwnPropertyNames(controller.prototype).flatMap((name) => {
      const handler = (controller.prototype as unknown as Record<string, object>)[name];
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (name === 'constructor' || path === undefined || method === RequestMethod.GET) return [];
      return [`${RequestMethod[method!]} ${[prefix, path].filter((p) => p && p !== '/').join('/')}`];
    });
  });
