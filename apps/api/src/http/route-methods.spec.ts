import { RouteMethods } from './route-methods';

describe('RouteMethods', () => {
  const routes = new RouteMethods();
  routes.add('GET', '/api/v1/changes/:id');
  routes.add('PATCH', '/api/v1/changes/:id');
  routes.add(['POST'], '/api/v1/changes/:id/approve');
  routes.add('POST', '/api/v1/changes');
  routes.add('GET', '/api/v1/changes');
  routes.add('GET', '/api/v1/files/*');
  routes.add('GET', '/api/v1/reports/compliance.csv');
  routes.add('GET', '/api/v1/health');

  it('lists every method some route takes at a path, HEAD wherever GET is, sorted', () => {
    expect(routes.allowedAt('/api/v1/changes/CHG-001')).toEqual(['GET', 'HEAD', 'PATCH']);
    expect(routes.allowedAt('/api/v1/changes/CHG-001/approve')).toEqual(['POST']);
    expect(routes.allowedAt('/api/v1/changes')).toEqual(['GET', 'HEAD', 'POST']);
  });

  it('a parameter is one non-empty segment; a wildcard is anything', () => {
    expect(routes.allowedAt('/api/v1/changes/')).toEqual([]);
    expect(routes.allowedAt('/api/v1/changes/CHG-001/extra')).toEqual([]);
    expect(routes.allowedAt('/api/v1/files/a/b/c')).toEqual(['GET', 'HEAD']);
  });

  it('reads a target as the router does: host dropped, path ending at ? or #, escapes decoded', () => {
    const change = ['GET', 'HEAD', 'PATCH'];
    expect(routes.allowedAt('/api/v1/%63hanges/CHG-001')).toEqual(change);
    expect(routes.allowedAt('http://example.org/api/v1/changes/CHG-001')).toEqual(change);
    expect(routes.allowedAt('/api/v1/changes/CHG-001?limit=5')).toEqual(change);
    expect(routes.allowedAt('/api/v1/health#top')).toEqual(['GET', 'HEAD']);
    // an escaped slash stays inside its segment, as in the router
    expect(routes.allowedAt('/api/v1/changes/a%2Fb')).toEqual(change);
  });

  it('a % that starts no escape of UTF-8 is unreadable; a parameter over 100 characters matches nothing', () => {
    expect(routes.allowedAt('/api/v1/changes/%ZZ')).toBe('unreadable');
    expect(routes.allowedAt('/api/v1/changes/%E0%A4%A')).toBe('unreadable');
    expect(routes.allowedAt(`/api/v1/changes/${'1'.repeat(100)}`)).toEqual(['GET', 'HEAD', 'PATCH']);
    expect(routes.allowedAt(`/api/v1/changes/${'1'.repeat(101)}`)).toEqual([]);
  });

  it('static parts match literally (a dot is not any character)', () => {
    expect(routes.allowedAt('/api/v1/reports/compliance.csv')).toEqual(['GET', 'HEAD']);
    expect(routes.allowedAt('/api/v1/reports/complianceXcsv')).toEqual([]);
    expect(routes.allowedAt('/nothing-here')).toEqual([]);
  });
});
