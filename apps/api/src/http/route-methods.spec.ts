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

  it('static parts match literally (a dot is not any character)', () => {
    expect(routes.allowedAt('/api/v1/reports/compliance.csv')).toEqual(['GET', 'HEAD']);
    expect(routes.allowedAt('/api/v1/reports/complianceXcsv')).toEqual([]);
    expect(routes.allowedAt('/nothing-here')).toEqual([]);
  });
});
