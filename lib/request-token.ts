// Where a request's token comes from: the cookie, or with `bearer` the Authorization header.

/** The token cookies a request carried, `<cookieName>` and its chunks: what the response clears or replaces. */
export interface CarriedCookies {
  /** `<cookieName>` itself, empty or not. */
  plain: boolean
  /** The indexes of the chunk cookies `<cookieName>.0` to `<cookieName>.9`, ascending, each once. */
  chunks: readonly number[]
}

/** A request that carried no token cookie (a Bearer token, say), and one that carried `<cookieName>` alone. */
export const noCookies: CarriedCookies = Object.freeze({ plain: false, chunks: Object.freeze([]) })
export const plainCookie: CarriedCookies = Object.freeze({ plain: true, chunks: noCookies.chunks })

/** A token found on a request, or why it cannot be used. `undefined` where the request carries none. */
export type FoundToken =
  | { kind: 'token', source: 'header', token: string }
  | { kind: 'token', source: 'cookie', token: string, carried: CarriedCookies }
  /** The cookie name sent more than once: authenticated by no value, yet logout revokes each genuine one. */
  | { kind: 'duplicate', source: 'cookie', tokens: string[], carried: CarriedCookies }
  | { kind: 'malformed', source: 'header', reason: string }
  /** Chunk cookies that do not make one token: a gap, a name sent twice, an index past `maxChunks`, an empty one. */
  | { kind: 'malformed', source: 'cookie', reason: string, carried: CarriedCookies }

/** What the `Cookie` header holds of ours. */
export type CookieToken = Extract<FoundToken, { source: 'cookie' }>

/**
 * The token of a request. With `bearer`, an `Authorization: Bearer` header alone decides;
 * another scheme (`Basic …`) is left to the app and the cookie is used.
 */
export function findToken (
  headers: { cookie?: string, authorization?: string }, cookieName: string, bearer: boolean, maxChunks: number
): FoundToken | undefined {
  if (bearer && headers.authorization !== undefined) {
    const fromHeader = readBearer(headers.authorization)
    if (fromHeader !== undefined) return fromHeader
  }
  return readCookie(headers.cookie, cookieName, maxChunks)
}

function readBearer (authorization: string): FoundToken | undefined {
  const separator = authorization.search(/\s/)
  const scheme = separator === -1 ? authorization : authorization.slice(0, separator)
  if (scheme.toLowerCase() !== 'bearer') return undefined
  const token = separator === -1 ? '' : authorization.slice(separator + 1)
  // Nothing after the scheme, a tab, or more than one space: malformed, not a missing token.
  if (authorization[separator] !== ' ' || token === '' || /\s/.test(token)) return { kind: 'malformed', source: 'header', reason: 'malformed Authorization header' }
  return { kind: 'token', source: 'header', token }
}

/**
 * The token in a `Cookie` header: the value of cookie `name`, or with `maxChunks` over 1 and no such value, the
 * chunks `name.0`, `name.1`, … joined. A name sent twice authenticates by neither value: an attacker on a sibling
 * subdomain can plant a second cookie (cookie tossing). An empty value (`token=`) is no token.
 */
export function readCookie (header: string | undefined, name: string, maxChunks = 1): CookieToken | undefined {
  // Most requests without our cookie leave here, without splitting the header.
  if (header === undefined || !header.includes(name)) return undefined
  const values: string[] = []
  // Chunk values by index; only looked for when tokens may be chunked.
  const chunks: string[][] | undefined = maxChunks > 1 ? [] : undefined
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const equals = header.indexOf('=', start)
    if (equals !== -1 && equals < end) {
      const key = header.slice(start, equals).trim()
      if (key === name) values.push(header.slice(equals + 1, end).trim())
      else if (chunks !== undefined) addChunk(chunks, key, name, header.slice(equals + 1, end).trim())
    }
    start = end + 1
  }
  const carried = chunks === undefined || chunks.length === 0 ? (values.length === 0 ? noCookies : plainCookie) : carriedOf(values, chunks)
  if (values.length > 1) return { kind: 'duplicate', source: 'cookie', tokens: values.map(unquote), carried }
  const [value] = values
  if (value !== undefined && value !== '' && value !== '""') return { kind: 'token', source: 'cookie', token: unquote(value), carried }
  // `<cookieName>` absent (or empty): the chunks, if any, are the token.
  return carried.chunks.length === 0 ? undefined : joinChunks(chunks as string[][], carried, maxChunks)
}

/** Records the value of `key` if it names a chunk of `name`: `name.` and one digit. */
function addChunk (chunks: string[][], key: string, name: string, value: string): void {
  if (key.length !== name.length + 2 || key[name.length] !== '.' || !key.startsWith(name)) return
  const index = key.charCodeAt(name.length + 1) - 48
  if (index < 0 || index > 9) return
  ;(chunks[index] ??= []).push(value)
}

function carriedOf (values: string[], chunks: string[][]): CarriedCookies {
  const indexes: number[] = []
  chunks.forEach((_, index) => indexes.push(index))
  return { plain: values.length > 0, chunks: indexes }
}

/** The token the chunks make: `.0` on, none missing, none past `maxChunks - 1`, each once and not empty. */
function joinChunks (chunks: string[][], carried: CarriedCookies, maxChunks: number): CookieToken {
  const indexes = carried.chunks
  const malformed = (reason: string): CookieToken => ({ kind: 'malformed', source: 'cookie', reason, carried })
  if (indexes[indexes.length - 1] >= maxChunks) return malformed(`more than ${maxChunks} chunk cookies`)
  if (indexes[indexes.length - 1] !== indexes.length - 1) return malformed('a chunk cookie is missing')
  let token = ''
  for (const values of chunks) {
    if (values.length > 1) return malformed('a chunk cookie was sent more than once')
    const value = unquote(values[0])
    if (value === '') return malformed('a chunk cookie is empty')
    token += value
  }
  return { kind: 'token', source: 'cookie', token, carried }
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
