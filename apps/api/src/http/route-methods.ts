/**
 * The methods each registered route path answers, so that a request the router found no route
 * for can be told apart: a path that exists under other methods is 405 with `Allow` (a client
 * that sent PUT where PATCH is meant learns that, not that the change does not exist); any other
 * is 404. Only unmatched requests look here, so a linear scan of the routes is enough.
 */
export class RouteMethods {
  /** By route path as registered: its pattern, and the methods it takes. */
  private readonly routes = new Map<string, { readonly pattern: RegExp; readonly methods: Set<string> }>();

  /** A route as the router registered it: `/api/v1/changes/:id/approve`, one method or several. */
  add(methods: string | readonly string[], url: string): void {
    let route = this.routes.get(url);
    if (!route) {
      route = { pattern: patternOf(url), methods: new Set() };
      this.routes.set(url, route);
    }
    for (const method of typeof methods === 'string' ? [methods] : methods) {
      route.methods.add(method.toUpperCase());
      // The router answers HEAD wherever it answers GET.
      if (method.toUpperCase() === 'GET') route.methods.add('HEAD');
    }
  }

  /**
   * The methods some route takes at a request's target, sorted; empty when none, and
   * 'unreadable' for a path with a `%` that starts no escape of UTF-8. The target is read as the
   * router reads it (Fastify's find-my-way): an absolute URL's scheme and host dropped, the path
   * ending at `?` or `#`, escapes decoded except those of reserved characters (`%2F` stays).
   */
  allowedAt(target: string): string[] | 'unreadable' {
    let path = target.startsWith('/') ? target : target.replace(ABSOLUTE_FORM, '/');
    const end = path.search(/[?#]/);
    if (end !== -1) path = path.slice(0, end);
    try {
      path = decodeURI(path);
    } catch {
      return 'unreadable';
    }
    const allowed = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.pattern.test(path)) for (const method of route.methods) allowed.add(method);
    }
    return [...allowed].sort();
  }
}

/** What find-my-way drops from an absolute-form target (`PUT http://host/path HTTP/1.1`). */
const ABSOLUTE_FORM = /^https?:\/\/.*?\//;

/**
 * The longest path segment a parameter matches: the router answers a longer one 404 whatever
 * the method (Fastify's maxParamLength, 100 by default).
 */
const MAX_PARAM_LENGTH = 100;

/** `:name` matches one non-empty path segment and `*` anything, as the router's own patterns do. */
const patternOf = (url: string): RegExp => {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) =>
      part === '*'
        ? '.*'
        : part.startsWith(':')
          ? `[^/]{1,${MAX_PARAM_LENGTH}}`
          : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${source}$`);
};
