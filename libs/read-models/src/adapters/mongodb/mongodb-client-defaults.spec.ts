import { MongoBulkWriteError, MongoClient, MongoServerError } from 'mongodb';
import { clientDefaults, isMongoOutage, newMongoClient, redactMongoUrl } from './mongodb-read-model-store';

/** The write concern a client made from `url` with our defaults ends up with (parsing only). */
const writeConcernOf = (url: string) => {
  const { w, journal, wtimeoutMS } = new MongoClient(url, clientDefaults(url)).options.writeConcern ?? {};
  return { w, journal, wtimeoutMS };
};

describe('clientDefaults (MongoDB read models)', () => {
  it('asks for majority, journaled writes within 10 s when the URL says nothing', () => {
    expect(writeConcernOf('mongodb://db.example/')).toEqual({
      w: 'majority',
      journal: true,
      wtimeoutMS: 10_000,
    });
  });

  it("keeps the journal and the timeout when the URL sets only w (Atlas's retryWrites=true&w=majority)", () => {
    expect(writeConcernOf('mongodb+srv://u:p@cluster.example.net/?retryWrites=true&w=majority')).toEqual({
      w: 'majority',
      journal: true,
      wtimeoutMS: 10_000,
    });
  });

  it('lets each write-concern option the URL sets win, on its own', () => {
    expect(writeConcernOf('mongodb://db.example/?w=1&journal=false')).toEqual({
      w: 1,
      journal: false,
      wtimeoutMS: 10_000,
    });
    expect(writeConcernOf('mongodb://db.example/?wtimeoutMS=500')).toEqual({
      w: 'majority',
      journal: true,
      wtimeoutMS: 500,
    });
  });

  it("takes the driver's older option names (j, wtimeout) as the URL's own, not overridden by ours", () => {
    expect(writeConcernOf('mongodb://db.example/?j=false')).toMatchObject({ journal: false });
    expect(writeConcernOf('mongodb://db.example/?wtimeout=500')).toMatchObject({ wtimeoutMS: 500 });
  });

  it('waits at most as long for a pooled connection as for a server, unless the URL says otherwise', () => {
    expect(
      new MongoClient('mongodb://db.example/', clientDefaults('mongodb://db.example/')).options,
    ).toMatchObject({ waitQueueTimeoutMS: 5000 });
    const url = 'mongodb://db.example/?waitQueueTimeoutMS=250';
    expect(new MongoClient(url, clientDefaults(url)).options).toMatchObject({ waitQueueTimeoutMS: 250 });
  });

  it("counts a server's failover and shutdown answers as an outage (503), not its refusals", () => {
    const answer = (code: number) => new MongoServerError({ message: `code ${code}`, code });
    for (const code of [10107, 13435, 11602, 11600, 91, 189, 50])
      expect(isMongoOutage(answer(code))).toBe(true);
    for (const code of [11000, 2, 26]) expect(isMongoOutage(answer(code))).toBe(false); // duplicate key, bad value
    const waited = Object.assign(
      new Error('Timed out while checking out a connection from connection pool'),
      {
        name: 'MongoWaitQueueTimeoutError',
      },
    );
    expect(isMongoOutage(waited)).toBe(true);
    // a bulk write whose write concern failed (no majority in time) is one too; its refused writes are not
    const bulk = (fields: object) =>
      Object.assign(
        Object.create(MongoBulkWriteError.prototype) as object,
        { errorLabelSet: new Set() },
        fields,
      );
    expect(
      isMongoOutage(bulk({ writeConcernError: { code: 64, errmsg: 'waiting for replication timed out' } })),
    ).toBe(true);
    expect(
      isMongoOutage(
        bulk({ writeErrors: [{ code: 11000 }], result: { getWriteConcernError: () => undefined } }),
      ),
    ).toBe(false);
    expect(isMongoOutage(new Error('a bug'))).toBe(false);
  });

  it('gives 5 s to find a server unless the URL or the caller says otherwise', () => {
    expect(clientDefaults('mongodb://db.example/')).toMatchObject({ serverSelectionTimeoutMS: 5000 });
    expect(clientDefaults('mongodb://db.example/?serverSelectionTimeoutMS=30000')).not.toHaveProperty(
      'serverSelectionTimeoutMS',
    );
    expect(clientDefaults('mongodb://db.example/', { serverSelectionTimeoutMS: 300 })).toMatchObject({
      serverSelectionTimeoutMS: 300,
    });
  });
});

describe('newMongoClient: an invalid URL', () => {
  it.each([
    ['a / in the password (base64)', 'mongodb://app:Tr0ub/dor+x3@mongo:27017'],
    ['a ? in the password', 'mongodb://app:Tr0ub?dor+x3@mongo:27017'],
    ['a # in the password', 'mongodb://app:Tr0ub#dor+x3@mongo:27017'],
    ['an @ in the password', 'mongodb://app:Tr0ub@dor+x3@mongo:27017'],
    // the driver parses these (host dor, database x3@mongo:27017; an option x3@mongo:27017)
    ['an @ and then a / in the password', 'mongodb://app:Tr0ub@dor/x3@mongo:27017'],
    ['an @ and then a ? in the password', 'mongodb://app:Tr0ub@dor?x3@mongo:27017'],
    ['a bad option beside a good password', 'mongodb://app:Tr0ubdorx3@mongo:27017/?tls=maybe'],
  ])('with %s: an error that shows no part of the password', (_name, url) => {
    let message = '';
    try {
      newMongoClient(url, {});
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid MongoDB URL \(not shown: it may hold a password\): ./);
    expect(message).not.toMatch(/Tr0ub|dor|x3/);
  });
});

describe('redactMongoUrl', () => {
  it.each([
    ['mongodb://app:s3cret@mongo:27017/db?authSource=admin', 'mongodb://mongo:27017/db?authSource=admin'],
    ['mongodb+srv://u:p%40ss@cluster.example.net/db', 'mongodb+srv://cluster.example.net/db'],
    ['mongodb://app:Tr0ub@dor/x3@mongo:27017', 'mongodb://mongo:27017'],
    ['mongodb://mongo/?tlsCAFile=/etc/ca.pem', 'mongodb://mongo/?tlsCAFile=/etc/ca.pem'],
  ])('%s → %s', (url, shown) => {
    expect(redactMongoUrl(url)).toBe(shown);
  });
});
