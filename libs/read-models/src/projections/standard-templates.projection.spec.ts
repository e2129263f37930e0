/**
 * `GET /standard-templates`: every template with `active` and its usage count, the count fed
 * by the submissions of standard changes in change streams.
 */
import type { ChangeRequestFields, ChangeType } from '@changeledger/domain';
import {
  actors,
  emergencyRequest,
  event,
  normalRequest,
  standardRequest,
  templateCreated,
  templateRetired,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type DomainEventLike,
  changeStream,
  eventLog,
  project,
  recordedEvent,
  templateStream,
} from './recorded-events.fixtures';
import {
  type StandardTemplateDocument,
  standardTemplatesProjection,
  toTemplateView,
} from './standard-templates.projection';

const created = (templateId = 'STD-001', name = 'LXC container deployment'): DomainEventLike => {
  const e = templateCreated(actors.lena);
  return { ...e, data: { ...e.data, templateId, name } };
};

const submission = (
  changeId: string,
  changeType: ChangeType,
  templateId?: string,
  request?: ChangeRequestFields,
) =>
  event('ChangeSubmitted', actors.alice, {
    changeId,
    changeType,
    request:
      request ??
      (changeType === 'standard'
        ? standardRequest()
        : changeType === 'normal'
          ? normalRequest()
          : emergencyRequest()),
    ...(templateId
      ? { standardTemplate: { id: templateId, name: 'LXC container deployment', version: 1 } }
      : {}),
  });

const preApproved = (templateId = 'STD-001') =>
  event('ChangePreApproved', actors.alice, { templateId, rule: 'standard-change-template' });

describe('standard templates projection', () => {
  describe('documentId', () => {
    const id = (streamId: string, e: DomainEventLike) =>
      standardTemplatesProjection.documentId(recordedEvent(streamId, e));

    it('is the template id for a template stream', () => {
      expect(id(templateStream('STD-004'), created('STD-004'))).toBe('STD-004');
      expect(id(templateStream('STD-004'), templateRetired())).toBe('STD-004');
    });

    it('is the named template for the submission of a standard change in a change stream', () => {
      expect(id(changeStream('CHG-010'), submission('CHG-010', 'standard', 'STD-002'))).toBe('STD-002');
    });

    it('is nothing for other submissions and other change events', () => {
      expect(id(changeStream('CHG-010'), submission('CHG-010', 'normal'))).toBeUndefined();
      expect(id(changeStream('CHG-010'), submission('CHG-010', 'emergency'))).toBeUndefined();
      expect(id(changeStream('CHG-010'), preApproved('STD-002'))).toBeUndefined();
      expect(id(changeStream('CHG-010'), event('ChangeClosed', actors.lena, {}))).toBeUndefined();
    });

    it('is nothing for streams of other kinds', () => {
      expect(id('user-u-alice', submission('CHG-010', 'standard', 'STD-002'))).toBeUndefined();
    });
  });

  it('create: an active template, used by nobody yet', () => {
    const doc = project(
      standardTemplatesProjection,
      eventLog().append(templateStream('STD-001'), created()),
    ).get('STD-001');
    expect(doc).toMatchObject({ id: 'STD-001', active: true, usageCount: 0 });
    expect(doc?.template).toMatchObject({
      id: 'STD-001',
      version: 1,
      name: 'LXC container deployment',
      active: true,
      createdBy: { id: 'u-lena', name: 'Lena Lead' },
    });
  });

  it('retire: no longer active, version 2, retirement recorded', () => {
    const doc = project(
      standardTemplatesProjection,
      eventLog().append(templateStream('STD-001'), created(), templateRetired()),
    ).get('STD-001');
    expect(doc).toMatchObject({ active: false, usageCount: 0 });
    expect(doc?.template).toMatchObject({
      version: 2,
      active: false,
      retirementReason: 'Replaced by the VM template',
    });
  });

  describe('usage count', () => {
    const docs = () => {
      const log = eventLog();
      return project(standardTemplatesProjection, [
        ...log.append(templateStream('STD-001'), created('STD-001')),
        ...log.append(templateStream('STD-002'), created('STD-002', 'VM snapshot')),
        ...log.append(
          changeStream('CHG-001'),
          submission('CHG-001', 'standard', 'STD-001'),
          preApproved('STD-001'),
        ),
        ...log.append(changeStream('CHG-002'), submission('CHG-002', 'normal')),
        ...log.append(
          changeStream('CHG-003'),
          submission('CHG-003', 'standard', 'STD-001'),
          preApproved('STD-001'),
        ),
        ...log.append(changeStream('CHG-004'), submission('CHG-004', 'emergency')),
        ...log.append(
          changeStream('CHG-005'),
          submission('CHG-005', 'standard', 'STD-002'),
          preApproved('STD-002'),
        ),
        ...log.append(templateStream('STD-001'), templateRetired()),
      ]);
    };

    it('counts the standard changes submitted with each template (and only those)', () => {
      expect(docs().get('STD-001')?.usageCount).toBe(2);
      expect(docs().get('STD-002')?.usageCount).toBe(1);
    });

    it('is kept when the template is retired', () => {
      expect(docs().get('STD-001')).toMatchObject({ active: false, usageCount: 2 });
      expect(docs().get('STD-002')).toMatchObject({ active: true });
    });

    it('a submission does not change the template itself', () => {
      expect(docs().get('STD-002')?.template).toMatchObject({
        version: 1,
        name: 'VM snapshot',
        active: true,
      });
    });

    it('a submission naming a template with no document → undefined', () => {
      const e = recordedEvent(changeStream('CHG-001'), submission('CHG-001', 'standard', 'STD-404'));
      expect(standardTemplatesProjection.evolve(undefined, e)).toBeUndefined();
    });

    it('evolve adds one per submission', () => {
      const doc = docs().get('STD-002')!;
      const next = standardTemplatesProjection.evolve(
        doc,
        recordedEvent(
          changeStream('CHG-006'),
          submission('CHG-006', 'standard', 'STD-002'),
          BigInt(doc._position) + 1n,
        ),
      );
      expect(next).toMatchObject({ id: 'STD-002', usageCount: 2, active: true });
    });
  });

  it('toTemplateView: the template without its internal flag, with the usage count', () => {
    const doc = project(
      standardTemplatesProjection,
      eventLog().append(templateStream('STD-001'), created()),
    ).get('STD-001') as StandardTemplateDocument;
    const view = toTemplateView({ ...doc, usageCount: 3 });
    expect(view).not.toHaveProperty('exists');
    expect(view).toMatchObject({
      id: 'STD-001',
      name: 'LXC container deployment',
      description: 'Deploy an LXC container from the golden image',
      procedure: ['Clone the golden image', 'Set resources', 'Start and register in monitoring'],
      systemsScope: ['pve-node-01', 'pve-node-02'],
      active: true,
      version: 1,
      usageCount: 3,
    });
  });
});
