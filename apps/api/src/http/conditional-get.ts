/**
 * If-None-Match names this entity tag: `*`, or one of its comma-separated tags by the weak
 * comparison GET uses (RFC 9110 13.1.2: `W/"7"` matches `"7"`).
 */
export const ifNoneMatchHolds = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => opaque(tag) === opaque(etag));
};
