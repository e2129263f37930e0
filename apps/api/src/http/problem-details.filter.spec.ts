import { EventStoreUnavailableError } from '@changeledger/event-store';
import { ReadModelsSwappingError } from '@changeledger/read-models';
import { IdentityProviderUnavailableError } from '../auth/jwt-verifier';
import { loggableUrl, toProblem } from './problem-details.filter';

describe('toProblem', () => {
  it('tells clients a dependency is down without naming where it runs', () => {
    const store = toProblem(
      new EventStoreUnavailableError('EventStoreDB at esdb-0.internal:2113 is unreachable: 14 UNAVAILABLE'),
    );
    expect(store).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(store.detail).not.toMatch(/esdb-0|2113|UNAVAILABLE/);
    const keys = toProblem(
      new IdentityProviderUnavailableError(
        "the identity provider's key set could not be fetched (connect ECONNREFUSED 10.0.0.7:443); try again shortly",
      ),
    );
    expect(keys).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(keys.detail).toMatch(/key set could not be fetched/);
    expect(keys.detail).not.toMatch(/10\.0\.0\.7|ECONNREFUSED/);
  });

  it('answers a report that kept meeting a rebuild being swapped in with 503, to try again', () => {
    expect(toProblem(new ReadModelsSwappingError(30_000, false))).toMatchObject({
      status: 503,
      code: 'SERVICE_UNAVAILABLE',
      detail: expect.stringMatching(/rebuilds .* swapped in .*, for 30 s; try again shortly/),
    });
    // one that died half-way needs an operator: the answer says what to run
    expect(toProblem(new ReadModelsSwappingError(30_400, true)).detail).toMatch(
      /not finished for 30 s; if no rebuild is running, run projections:rebuild/,
    );
  });

  it('answers an unexpected error with a fixed text, not its message', () => {
    const problem = toProblem(new Error('SQLITE_CORRUPT at /var/lib/changeledger/events.sqlite'));
    expect(problem).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(problem.detail).not.toMatch(/SQLITE|var\/lib/);
  });
});

describe('loggableUrl', () => {
  it('leaves a token given in the URL out of the log, wherever it stands and however often', () => {
    expect(loggableUrl('/api/v1/schedule?format=ics&access_token=eyJ.a.b&minPosition=9')).toBe(
      '/api/v1/schedule?format=ics&access_token=(left out)&minPosition=9',
    );
    expect(loggableUrl('/api/v1/schedule?access_token=x&ACCESS_TOKEN=y')).toBe(
      '/api/v1/schedule?access_token=(left out)&ACCESS_TOKEN=(left out)',
    );
    expect(loggableUrl('/api/v1/changes?status=closed&my_access_token=z')).toBe(
      '/api/v1/changes?status=closed&my_access_token=z',
    );
  });

  it('also under a name the query parser decodes to access_token (which authenticates just the same)', () => {
    for (const name of ['access%5Ftoken', 'access%5ftoken', '%61ccess_token', 'access_tok%65n']) {
      expect(loggableUrl(`/api/v1/schedule?format=ics&${name}=eyJ.secret.sig#x`)).toBe(
        `/api/v1/schedule?format=ics&${name}=(left out)`,
      );
    }
    // after a `#` too: the query parser reads on past it, and the token authenticates
    expect(loggableUrl('/api/v1/schedule?format=ics&x=#&access_token=eyJ.secret.sig&minPosition=9')).toBe(
      '/api/v1/schedule?format=ics&x=#&access_token=(left out)&minPosition=9',
    );
    // a name that does not decode is kept as it is, and so is a URL without a query
    expect(loggableUrl('/api/v1/schedule?%E0%A4%A=1&access_token=t')).toBe(
      '/api/v1/schedule?%E0%A4%A=1&access_token=(left out)',
    );
    expect(loggableUrl('/api/v1/health')).toBe('/api/v1/health');
  });
});
