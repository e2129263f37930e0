/**
 * The methods each registered route path answers, so that a request the router found no route
 * for can be told apart: a path that exists under other methods is 405 with `Allow` (a client
 * that sent PUT where PATCH is meant learns that, not that the change does not exist); any other
 * is 404. Only unmatched requests look here, so a linear scan of the routes is enough.
 */
export class RouteMethods {
  private readonly routes: { readonly pattern: RegExp; readonly methods: Set<string> }[] = [];
  private readonly byUrl = new Map<string, Set<string>>();

  /** A route as the router registered it: `/api/v1/changes/:id/approve`, one method or several. */
  add(methods: string | readonly string[], url: string): void {
    let known = this.byUrl.get(url);
    if (!known) {
      known = new Set();
      this.byUrl.set(url, known);
      this.routes.push({ pattern: patternOf(url), methods: known });
    }
    for (const method of typeof methods === 'string' ? [methods] : methods) {
      known.add(method.toUpperCase());
      // The router answers HEAD wherever it answers GET.
      if (method.toUpperCase() === 'GET') known.add('HEAD');
    }
  }

  /** The methods some route takes at this path (no query string), sorted; empty when none. */
  allowedAt(path: string): string[] {
    const allowed = new Set<string>();
    for (const route of this.routes) {
      if (route.pattern.test(path)) for (const method of route.methods) allowed.add(method);
    }
    return [...allowed].sort();
  }
}

/** `:name` matches one non-empty path segment and `*` anything, as the router's own patterns do. */
const patternOf = (url: string): RegExp => {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) =>
      part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${source}$`);
};
