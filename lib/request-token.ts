// Where a request's token comes from: the cookie, or with `bearer` the Authorization header.

export type TokenSource = 'cookie' | 'header'

/** A token found on a request, or why it cannot be used. `undefined` where the request carries none. */
export type FoundToken =
  | { kind: 'token', source: TokenSource, token: string }
  /** The cookie name sent more than once: authenticated by no value, yet logout revokes each genuine one. */
  | { kind: 'duplicate', source: 'cookie', tokens: string[] }
  | { kind: 'malformed', source: 'header' }

/**
 * The token of a request. With `bearer`, an `Authorization: Bearer` header alone decides;
 * another scheme (`Basic …`) is left to the app and the cookie is used.
 */
export function findToken (headers: { cookie?: string, authorization?: string }, cookieName: string, bearer: boolean): FoundToken | undefined {
  if (bearer && headers.authorization !== undefined) {
    const fromHeader = readBearer(headers.authorization)
    if (fromHeader !== undefined) return fromHeader
  }
  return readCookie(headers.cookie, cookieName)
}

function readBearer (authorization: string): FoundToken | undefined {
  const separator = authorization.search(/\s/)
  const scheme = separator === -1 ? authorization : authorization.slice(0, separator)
  if (scheme.toLowerCase() !== 'bearer') return undefined
  const token = separator === -1 ? '' : authorization.slice(separator + 1)
  // Nothing after the scheme, a tab, or more than one space: malformed, not a missing token.
  if (authorization[separator] !== ' ' || token === '' || /\s/.test(token)) return { kind: 'malformed', source: 'header' }
  return { kind: 'token', source: 'header', token }
}

/**
 * The value of cookie `name` in a `Cookie` header. A name sent twice authenticates by neither value:
 * an attacker on a sibling subdomain can plant a second cookie (cookie tossing).
 * An empty value (`token=`) is no token.
 */
export function readCookie (header: string | undefined, name: string): FoundToken | undefined {
  // Most requests without our cookie leave here, without splitting the header.
  if (header === undefined || !header.includes(name)) return undefined
  const values: string[] = []
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const equals = header.indexOf('=', start)
    if (equals !== -1 && equals < end && header.slice(start, equals).trim() === name) values.push(header.slice(equals + 1, end).trim())
    start = end + 1
  }
  if (values.length > 1) return { kind: 'duplicate', source: 'cookie', tokens: values.map(unquote) }
  const [value] = values
  if (value === undefined || value === '' || value === '""') return undefined
  return { kind: 'token', source: 'cookie', token: unquote(value) }
}

// RFC 6265 allows a quoted cookie value; our tokens are never percent-encoded, but a client may encode one.
function unquote (value: string): string {
  const bare = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  if (!bare.includes('%')) return bare
  try {
    return decodeURIComponent(bare)
  } catch {
    return bare
  }
}
