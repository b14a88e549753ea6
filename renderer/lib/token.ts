/**
 * Serve mode: `whittle serve` prints a URL with `#token=…`. The token is taken out of the hash (so it does
 * not stay in the address bar or in links) and the rest of the hash is kept as the page to show.
 */
export interface ExtractedToken {
  token: string | null;
  /** The hash without the token, always starting with "#/". */
  hash: string;
}

export function extractToken(hash: string): ExtractedToken {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  let token: string | null = null;
  let rest = raw;

  // `#token=abc` or `#token=abc&…`: the whole hash is a parameter list.
  if (raw.startsWith('token=')) {
    const params = new URLSearchParams(raw);
    token = params.get('token') || null;
    params.delete('token');
    rest = '/';
  } else {
    // `#/page?x=1&token=abc`: the token rides along with a route.
    const q = raw.indexOf('?');
    if (q >= 0) {
      const params = new URLSearchParams(raw.slice(q + 1));
      if (params.has('token')) {
        token = params.get('token') || null;
        params.delete('token');
        const s = params.toString();
        rest = raw.slice(0, q) + (s ? `?${s}` : '');
      }
    }
  }
  if (!rest.startsWith('/')) rest = `/${rest}`;
  return { token, hash: `#${rest}` };
}
