import { MongoClient } from 'mongodb';
import { clientDefaults } from './mongodb-read-model-store';

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
