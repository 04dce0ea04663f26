// Arbitraries, token mutations and the oracle for the property-based tests in test/fuzz.test.ts.
// The oracle reads a request the way the documentation says the plugin must, written from the contract
// (not by calling lib/): with `bearer`, an `Authorization: Bearer` header alone decides; otherwise the single
// `token` cookie, whose value may be wrapped in double quotes and percent-encoded.
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { deflateRawSync } from 'node:zlib'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import type { Policy } from '../../index.js'
import { claimsOf, setCookies } from './app.js'
import { b64url, jweKeyOf, openJwe, raw, RawJson, sealJwe, signInput } from './craft.js'

// ---------------------------------------------------------------------------------------------------------
// Run configuration

/** `FUZZ_RUNS` (a positive integer) overrides every property's default run count. */
export function fuzzRuns (defaultRuns: number): number {
  const runs = Number(process.env.FUZZ_RUNS)
  return Number.isInteger(runs) && runs > 0 ? runs : defaultRuns
}

/** A fixed seed, so CI is reproducible; `FUZZ_SEED` explores other seeds locally. */
export function fuzzSeed (fixed: number): number {
  const seed = Number(process.env.FUZZ_SEED)
  return Number.isInteger(seed) ? seed : fixed
}

// ---------------------------------------------------------------------------------------------------------
// The oracle

export const MISSING = 'FST_TOKEN_COOKIE_MISSING'
export const INVALID = 'FST_TOKEN_COOKIE_INVALID'
export const EXPIRED = 'FST_TOKEN_COOKIE_EXPIRED'
export const REVOKED = 'FST_TOKEN_COOKIE_REVOKED'
export const CROSS_SITE = 'FST_TOKEN_COOKIE_CROSS_SITE'
export const rejectionCodes: readonly string[] = [MISSING, INVALID, EXPIRED, REVOKED]

/** A token the plugin issued in this test: the only tokens that may ever authenticate. */
export interface Issued {
  policy: Policy
  claims: Record<string, unknown>
}

export type IssuedTokens = ReadonlyMap<string, Issued>

/** How an app's tokens carry their claims: a JWS in a readable payload, a JWE only for whoever has the key. */
export type TokenFormat = { kind: 'signed' } | { kind: 'encrypted', key: Buffer }

/** The claims of a token in `format`; throws when it is not one (for a JWE: not `dir`/`A256GCM` under `key`). */
export function claimsIn (token: string, format: TokenFormat): Record<string, unknown> {
  return format.kind === 'signed' ? claimsOf(token) : JSON.parse(openJwe(token, format.key).toString())
}

export interface RequestHeaders {
  cookie?: string
  authorization?: string
}

type Source = 'cookie' | 'header'

/** What a request carries, by the contract's rules. */
export type Carried =
  | { kind: 'none', emptyCookie: boolean }
  | { kind: 'malformed', source: Source }
  | { kind: 'token', source: Source, token: string }

/**
 * Which whitespace separates and is trimmed: HTTP's (SP, HTAB) or JavaScript's (`\s`, `trim()`). The
 * contract does not say; the two readings differ only on headers with other whitespace (NBSP, CR, LF…),
 * and the oracle accepts either answer there.
 */
type Whitespace = 'http' | 'unicode'

const whitespace: Record<Whitespace, RegExp> = { http: /[ \t]/, unicode: /\s/ }
const trimmers: Record<Whitespace, (text: string) => string> = {
  http: (text) => text.replace(/^[ \t]+|[ \t]+$/g, ''),
  unicode: (text) => text.trim()
}

/** What the request carries: the Bearer header when `bearer` and its scheme is Bearer, else the cookie. */
export function carried (headers: RequestHeaders, bearer: boolean, ws: Whitespace, cookieName = 'token'): Carried {
  if (bearer && headers.authorization !== undefined) {
    const fromHeader = bearerOf(headers.authorization, ws)
    if (fromHeader !== undefined) return fromHeader
  }
  return cookieOf(headers.cookie, ws, cookieName)
}

// "The Bearer scheme name is case-insensitive"; "nothing after it, extra spaces or tabs" is malformed.
function bearerOf (authorization: string, ws: Whitespace): Carried | undefined {
  const match = whitespace[ws].exec(authorization)
  const at = match === null ? -1 : match.index
  const scheme = at === -1 ? authorization : authorization.slice(0, at)
  if (scheme.toLowerCase() !== 'bearer') return undefined
  const credentials = at === -1 ? '' : authorization.slice(at + 1)
  if (authorization[at] !== ' ' || credentials === '' || whitespace[ws].test(credentials)) return { kind: 'malformed', source: 'header' }
  return { kind: 'token', source: 'header', token: credentials }
}

// `name=value` pairs separated by `;`; a pair without `=` is no cookie; the name sent twice is malformed
// (cookie tossing); `token=` (or `token=""`) is no token; a value may be quoted, then percent-encoded.
function cookieOf (header: string | undefined, ws: Whitespace, cookieName: string): Carried {
  if (header === undefined) return { kind: 'none', emptyCookie: false }
  const trim = trimmers[ws]
  const values: string[] = []
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=')
    if (equals !== -1 && trim(pair.slice(0, equals)) === cookieName) values.push(trim(pair.slice(equals + 1)))
  }
  if (values.length > 1) return { kind: 'malformed', source: 'cookie' }
  if (values.length === 0) return { kind: 'none', emptyCookie: false }
  const value = values[0]
  if (value === '' || value === '""') return { kind: 'none', emptyCookie: true }
  const bare = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  return { kind: 'token', source: 'cookie', token: percentDecoded(bare) }
}

function percentDecoded (value: string): string {
  if (!value.includes('%')) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/** What a response must do to the token cookie. */
type CookieEffect = 'none' | 'clear' | 'clear-or-none' | 'renew'

export interface Expectation {
  status: number
  code?: string
  /** The body: the protected route answers with the payload (`request.user`), the public one `{ ok: true }`. */
  body?: Record<string, unknown>
  cookie: CookieEffect
  /** For `renew`: the token the renewal continues. */
  renews?: Issued
}

export interface Target {
  /** Does the app take `Authorization: Bearer`? */
  bearer: boolean
  /** The app's `isRevoked`. */
  revoked: (claims: Record<string, unknown>) => boolean
}

export type Route = 'private' | 'public'

function expectationOf (what: Carried, target: Target, route: Route, issued: IssuedTokens): Expectation {
  // The public route answers 200 to everyone; the protected one 401 with the reason's code.
  const status = route === 'public' ? 200 : 401
  const withCode = (code: string): string | undefined => route === 'public' ? undefined : code
  if (what.kind === 'none') {
    // An empty `token=` may be cleared or left alone; nothing else sets the cookie.
    return { status, code: withCode(MISSING), cookie: what.emptyCookie ? 'clear-or-none' : 'none' }
  }
  // A bad cookie is cleared; a bad (or good) Bearer header never touches the cookie.
  const clearIfCookie: CookieEffect = what.source === 'cookie' ? 'clear' : 'none'
  if (what.kind === 'malformed') return { status, code: withCode(INVALID), cookie: clearIfCookie }
  const entry = issued.get(what.token)
  if (entry === undefined) return { status, code: withCode(INVALID), cookie: clearIfCookie }
  if (target.revoked(entry.claims)) return { status, code: withCode(REVOKED), cookie: clearIfCookie }
  // renewAfter: 0 and a clock moved on since login: every sliding token that came as a cookie is renewed.
  const renew = what.source === 'cookie' && entry.policy === 'sliding'
  return {
    status: 200,
    body: entry.claims,
    cookie: renew ? 'renew' : 'none',
    renews: renew ? entry : undefined
  }
}

/** The acceptable answers to a request: one, or two where the whitespace readings differ. */
export function expectationsFor (headers: RequestHeaders, target: Target, route: Route, issued: IssuedTokens): Expectation[] {
  const answers = (['http', 'unicode'] as const).map((ws) => {
    const expected = expectationOf(carried(headers, target.bearer, ws), target, route, issued)
    return route === 'public' ? { ...expected, body: { ok: true } } : expected
  })
  return isDeepStrictEqual(answers[0], answers[1]) ? [answers[0]] : answers
}

/** Does the request carry the token cookie at all (the cross-site guard's trigger)? */
export function carriesCookie (headers: RequestHeaders, cookieName = 'token'): boolean {
  if (headers.cookie === undefined) return false
  return headers.cookie.split(';').some((pair) => pair.includes('=') && pair.slice(0, pair.indexOf('=')).trim() === cookieName)
}

function parsedBody (response: LightMyRequestResponse): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(response.body)
    return body !== null && typeof body === 'object' ? body as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** Why `response` does not meet `expected`, or `undefined` when it does. */
function mismatch (response: LightMyRequestResponse, expected: Expectation, head: boolean, format: TokenFormat): string | undefined {
  if (response.statusCode !== expected.status) return `status ${response.statusCode}, expected ${expected.status}`
  const body = parsedBody(response)
  if (!head && expected.code !== undefined && body?.code !== expected.code) return `code ${String(body?.code)}, expected ${expected.code}`
  if (!head && expected.body !== undefined && !isDeepStrictEqual(body, expected.body)) return `body ${response.body.slice(0, 200)}, expected ${JSON.stringify(expected.body)}`
  const lines = setCookies(response).filter((cookie) => cookie.name === 'token')
  const clears = lines.length > 0 && lines.every((cookie) => cookie.value === '' && cookie.attributes['max-age'] === '0')
  switch (expected.cookie) {
    case 'none':
      return lines.length === 0 ? undefined : 'a token cookie was set, expected none'
    case 'clear':
      return clears ? undefined : 'the cookie was not cleared (token=; Max-Age=0)'
    case 'clear-or-none':
      return lines.length === 0 || clears ? undefined : 'a token was set for an empty cookie'
    case 'renew': {
      if (lines.length !== 1 || lines[0].value === '') return 'a valid sliding cookie was not renewed'
      try {
        const claims = claimsIn(lines[0].value, format)
        const before = expected.renews!.claims
        if (claims.sub !== before.sub || claims.auth_time !== before.auth_time || !((claims.iat as number) > (before.iat as number))) {
          return 'the renewal does not continue the token (sub, auth_time, later iat)'
        }
      } catch {
        return `the renewal is not a ${format.kind === 'signed' ? 'JWT' : 'JWE under the app\'s key'}`
      }
      return undefined
    }
  }
}

export interface Exchange {
  app: string
  method: string
  url: string
  headers: Record<string, string>
}

/**
 * Throws, with the request, the acceptable answers and the response, unless the response meets one of
 * `expectations`. Whatever they say: never a 5xx, never a 400, and every 401 has one of the documented codes.
 */
export function check (exchange: Exchange, response: LightMyRequestResponse, expectations: Expectation[], options: { crossSiteAllowed?: boolean, format?: TokenFormat } = {}): void {
  const head = exchange.method === 'HEAD'
  const fail = (why: string): never => {
    const got = { status: response.statusCode, body: response.body.slice(0, 300), setCookie: response.headers['set-cookie'] }
    throw new Error(`${why}\n  request: ${JSON.stringify(exchange)}\n  expected one of: ${JSON.stringify(expectations)}\n  got: ${JSON.stringify(got)}`)
  }
  if (response.statusCode >= 500) fail(`a ${response.statusCode}`)
  if (response.statusCode === 400) fail('a 400')
  const body = parsedBody(response)
  if (response.statusCode === 401 && !head && !rejectionCodes.includes(String(body?.code))) fail(`a 401 with code ${String(body?.code)}`)
  // The coming cross-site guard: 403 before the handler, without clearing or renewing the cookie.
  if (options.crossSiteAllowed === true && response.statusCode === 403) {
    if (!head && body?.code !== CROSS_SITE) fail(`a 403 with code ${String(body?.code)}`)
    if (setCookies(response).some((cookie) => cookie.name === 'token')) fail('a cross-site 403 touched the token cookie')
    return
  }
  const reasons = expectations.map((expected) => mismatch(response, expected, head, options.format ?? { kind: 'signed' }))
  if (reasons.some((reason) => reason === undefined)) return
  fail(reasons.join('; or '))
}

// ---------------------------------------------------------------------------------------------------------
// Encodings

/** A value a cookie can carry as is (RFC 6265 cookie-octet), with no `%` to be decoded. */
export function cookieSafe (value: string): boolean {
  return /^[\x21\x23-\x24\x26-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/.test(value)
}

function percentOf (char: string, lower: boolean): string {
  const hex = Array.from(new TextEncoder().encode(char), (byte) => '%' + byte.toString(16).padStart(2, '0')).join('')
  return lower ? hex : hex.toUpperCase()
}

/** Every character percent-encoded (UTF-8 bytes). */
export function percentAll (value: string, lower = false): string {
  return Array.from(value, (char) => percentOf(char, lower)).join('')
}

/** Some characters percent-encoded: those at `picks` (modulo the length). */
export function percentSome (value: string, picks: readonly number[], lower: boolean): string {
  if (value === '') return value
  const chosen = new Set(picks.map((pick) => pick % value.length))
  return Array.from(value, (char, at) => chosen.has(at) ? percentOf(char, lower) : char).join('')
}

export type CookieStyle = 'as-is' | 'raw' | 'quoted' | 'percent' | 'quoted-percent'

/**
 * `token` as a cookie value. `raw` and `quoted` fall back to percent-encoding when the token has characters
 * a cookie cannot carry (so the cookie still carries exactly `token`); `as-is` never does.
 */
export function cookieValue (token: string, style: CookieStyle): string {
  const safe = cookieSafe(token) ? token : percentAll(token)
  switch (style) {
    case 'as-is': return token
    case 'raw': return safe
    case 'quoted': return `"${safe}"`
    case 'percent': return percentAll(token)
    case 'quoted-percent': return `"${percentAll(token)}"`
  }
}

// ---------------------------------------------------------------------------------------------------------
// Arbitrary headers

const anyText = (maxLength: number): fc.Arbitrary<string> => fc.oneof(
  fc.string({ maxLength }),
  fc.string({ unit: 'binary', maxLength }),
  fc.string({ unit: 'grapheme', maxLength })
)

const longText = fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), fc.integer({ min: 1000, max: 3000 }))
  .map(([unit, times]) => unit.repeat(times))

const jwsLike = fc.stringMatching(/^[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}$/)

const oddValues = fc.constantFrom(
  '', '""', '"', '"""', '%', '%zz', '%E0%A4%A', '%00', '%25', '%22%22', '%20', '%C0%AF', '%ED%A0%80', 'null', 'undefined',
  '[object Object]', 'a.b.c', '..', '.', 'eyJ.eyJ.x', '\\', 'token', '=', '==', 'deleted', '\u0000', '\uFEFF', '\u00A0'
)

/** A cookie value: one of the issued tokens (as is, quoted, percent-encoded, with noise) or anything else. */
export function cookieValueArb (tokens: readonly string[]): fc.Arbitrary<string> {
  const token = fc.constantFrom(...tokens)
  const noise = fc.oneof(fc.constantFrom('', ' ', '\t', '"', '.', '=', '%', ',', '\u00A0', '\n'), anyText(4))
  return fc.oneof(
    { arbitrary: token, weight: 4 },
    { arbitrary: token.map((value) => `"${value}"`), weight: 2 },
    { arbitrary: fc.tuple(token, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean()).map(([value, picks, lower]) => percentSome(value, picks, lower)), weight: 2 },
    { arbitrary: fc.tuple(token, fc.boolean()).map(([value, lower]) => percentAll(value, lower)), weight: 1 },
    { arbitrary: fc.tuple(token, fc.boolean()).map(([value, lower]) => `"${percentAll(value, lower)}"`), weight: 1 },
    { arbitrary: fc.tuple(noise, token, noise).map(([before, value, after]) => before + value + after), weight: 3 },
    { arbitrary: token.map((value) => value + 'A'.repeat(4097 - value.length)), weight: 1 },
    { arbitrary: oddValues, weight: 2 },
    { arbitrary: anyText(40), weight: 3 },
    { arbitrary: jwsLike, weight: 1 },
    { arbitrary: longText, weight: 1 }
  )
}

const cookieNameArb = fc.oneof(
  { arbitrary: fc.constant('token'), weight: 6 },
  {
    arbitrary: fc.constantFrom(' token', 'token ', '\ttoken', 'token\t', 'Token', 'TOKEN', 'tokenx', 'xtoken', 'token.exp',
      '__Host-token', 'to ken', '"token"', '\u00A0token', 'token\u00A0', '\ntoken', 'token\r', '', ' ', 'a', 'session'),
    weight: 3
  },
  { arbitrary: anyText(8), weight: 1 }
)

const separatorArb = fc.constantFrom('; ', '; ', ';', ' ; ', ';;', ', ', ';\t', '; \u00A0', '\n; ')

/** A `Cookie` header: `name=value` pairs (many named `token`, some with issued tokens), or any text. */
export function cookieHeaderArb (tokens: readonly string[]): fc.Arbitrary<string> {
  const pair = fc.oneof(
    { arbitrary: fc.tuple(cookieNameArb, cookieValueArb(tokens)).map(([name, value]) => `${name}=${value}`), weight: 9 },
    { arbitrary: cookieNameArb, weight: 1 }
  )
  const pairs = fc.array(fc.tuple(pair, separatorArb), { maxLength: 5 })
    .map((items) => items.map(([text, separator], at) => at === 0 ? text : separator + text).join(''))
  // Exactly one `token=` pair among others: the common case, where the value's spelling decides.
  const otherPair = fc.tuple(fc.constantFrom('a', 'session', 'token.exp', 'tokenx', '_ga', 'Token'), cookieValueArb(tokens)).map(([name, value]) => `${name}=${value}`)
  const single = fc.tuple(fc.array(otherPair, { maxLength: 3 }), cookieValueArb(tokens), fc.nat(), separatorArb)
    .map(([others, value, at, separator]) => {
      const all = [...others]
      all.splice(at % (others.length + 1), 0, `token=${value}`)
      return all.join(separator)
    })
  return fc.oneof(
    { arbitrary: pairs, weight: 5 },
    { arbitrary: single, weight: 5 },
    { arbitrary: fc.constantFrom('', ';', '=', 'token', 'token=', 'token=;token=', '=token', 'token==', ';token=;', 'token="'), weight: 1 },
    { arbitrary: anyText(80), weight: 2 }
  )
}

/** An `Authorization` header: a scheme (Bearer in many spellings, or another), a separator and credentials. */
export function authorizationArb (tokens: readonly string[]): fc.Arbitrary<string> {
  const scheme = fc.oneof(
    fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR', 'Bearer', 'Basic', 'Digest', 'Token', 'JWT', 'Bearer:', 'Bearerx', 'Bearer,', ''),
    anyText(8)
  )
  const separator = fc.constantFrom(' ', ' ', ' ', '  ', '\t', '', '\u00A0', '\n', ' \t', '\r\n ', '\u2028', '\u3000')
  const token = fc.constantFrom(...tokens)
  const credentials = fc.oneof(
    { arbitrary: token, weight: 4 },
    { arbitrary: cookieValueArb(tokens), weight: 3 },
    { arbitrary: fc.tuple(token, fc.constantFrom(' ', '\t', ' x', '  ', '\u00A0', ',', '=')).map(([value, tail]) => value + tail), weight: 1 }
  )
  return fc.oneof(
    { arbitrary: fc.tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR'), credentials).map(([name, value]) => `${name} ${value}`), weight: 4 },
    { arbitrary: fc.tuple(scheme, separator, credentials).map((parts) => parts.join('')), weight: 6 },
    { arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Bearer  ', 'bearer\t', 'Basic dXNlcjpwYXNz', 'Bearer null', ' Bearer x', 'Bearer\u00A0x', ''), weight: 1 },
    { arbitrary: anyText(60), weight: 2 }
  )
}

// ---------------------------------------------------------------------------------------------------------
// Token mutations

/** A JSON member edit of a header or payload: set (replace), append (even a duplicate key) or drop. */
export type MemberEdit =
  | { op: 'set' | 'append', key: string, value: unknown }
  | { op: 'drop', key: string }

/** How a token re-assembled after an edit is signed: the old signature kept, none, or a key that is not ours. */
export type Resign = 'keep' | 'empty' | 'foreign-HS256' | 'ours-HS384' | 'ours-HS512'

/**
 * How a JWE re-assembled after an edit is sealed: IV and tag kept (an edited plaintext XORed into the old ciphertext,
 * GCM's malleability), no tag, the key of another secret, or the app's secret without the documented derivation (the
 * secret's bytes as is, or AES-128-GCM under half the derived key). Never the app's key: that would forge a token.
 */
export type Reseal = 'keep' | 'empty' | 'foreign' | 'ours-unhashed' | 'ours-A128GCM'

export type Mutation =
  | { op: 'flipBit', segment: number, byte: number, bit: number }
  | { op: 'setChar', at: number, char: string }
  | { op: 'splice', at: number, remove: number, insert: string }
  | { op: 'swapSegment', segment: number, from: string, fromSegment: number }
  | { op: 'reorder', order: number[] }
  | { op: 'truncate', segment: number, keep: number }
  | { op: 'extend', segment: number, extra: string }
  | { op: 'affix', prefix: string, suffix: string }
  | { op: 'reencode', segment: number, style: 'base64' | 'base64-unpadded' | 'padded' | 'base64url' }
  /** The same bytes in another spelling: unused low bits of a segment's last character set. */
  | { op: 'lowBits', segment: number, bits: number }
  | { op: 'header' | 'claims', edits: MemberEdit[], resign: Resign }
  | { op: 'headerText' | 'claimsText', text: string, resign: Resign }
  | { op: 'jweHeader' | 'jweClaims', edits: MemberEdit[], reseal: Reseal }
  | { op: 'jweHeaderText' | 'jweClaimsText', text: string, reseal: Reseal }
  /** The token's plaintext (deflated or not) sealed under the app's own key, below a header the contract refuses. */
  | { op: 'refusedHeader', header: string, deflate: boolean }

const base64urlChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')

const algorithms = ['none', 'None', 'NONE', 'nOnE', 'HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'PS256', 'EdDSA', 'hs256',
  'HS256 ', ' HS256', 'HS256\u0000', '', null, 256, ['HS256'], {}, true]

// Numbers and texts JSON.stringify cannot write (non-finite, hex, lone surrogates): spliced in as raw JSON text.
const rawJson = fc.constantFrom('1e400', '-1e400', '1e-400', '-0', 'NaN', 'Infinity', '0x10', '01', '1.', '"\\ud800"', '[]', '{}', 'tru', '')
  .map((text) => raw(text))

function jsonValueArb (extra: unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...extra), weight: 4 },
    { arbitrary: fc.constantFrom(0, -1, 1, 1.5, 1e308, -1e308, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 1893456000, 1893459600, 9999999999), weight: 2 },
    { arbitrary: rawJson, weight: 1 },
    { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 2 }
  )
}

function memberEditArb (keys: readonly string[], values: fc.Arbitrary<unknown>): fc.Arbitrary<MemberEdit> {
  const key = fc.oneof({ arbitrary: fc.constantFrom(...keys), weight: 9 }, { arbitrary: anyText(6), weight: 1 })
  return fc.oneof(
    fc.record({ op: fc.constantFrom('set' as const, 'append' as const), key, value: values }),
    fc.record({ op: fc.constant('drop' as const), key })
  )
}

const headerKeys = ['alg', 'alg', 'alg', 'kid', 'typ', 'crit', 'jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'cty', 'b64', 'zip',
  'enc', '__proto__', 'constructor', 'ALG', 'alg ']
const headerValues = jsonValueArb([
  ...algorithms, ['exp'], ['b64'], [], { kty: 'oct', k: b64url('a-test-secret-of-at-least-32-bytes!') }, { kty: 'RSA', n: 'AQAB', e: 'AQAB' },
  'https://attacker.example/jwks.json', '../../../../dev/null', "' OR '1'='1", 'k1', 'JWT', 'at+jwt', 'JWE', false
])

const claimKeys = ['sub', 'exp', 'exp', 'iat', 'iat', 'auth_time', 'auth_time', 'tc', 'tc', 'nbf', 'aud', 'iss', 'jti', 'role',
  'admin', '__proto__', 'constructor', 'prototype']
const claimValues = jsonValueArb([
  'admin', 'alice', 'mallory', { admin: true }, { policy: 'persistent' }, { policy: 'session' }, { policy: 'sliding', maxAge: 1e9, absoluteMaxAge: 1e9 },
  { policy: 'sliding' }, { policy: 'x' }, '1893456000', null, true
])

const resignArb = fc.constantFrom<Resign>('keep', 'keep', 'empty', 'foreign-HS256', 'ours-HS384', 'ours-HS512')

/** What the mutations that address a segment, or reorder them, take from a token's shape. */
interface Shape {
  segment: fc.Arbitrary<number>
  orders: number[][]
}

const shapes: Record<TokenFormat['kind'], Shape> = {
  signed: {
    segment: fc.integer({ min: 0, max: 2 }),
    orders: [[1, 0, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1], [0, 1], [1, 2], [0, 1, 2, 2], [0, 0, 1, 2], [0, 1, 1, 2], [0], [0, 2], [0, 1, 2, 0]]
  },
  // header, encrypted key (empty), IV, ciphertext, tag: swapped, dropped, doubled (an IV in the key's place…).
  encrypted: {
    segment: fc.integer({ min: 0, max: 4 }),
    orders: [[0, 1, 3, 2, 4], [0, 1, 2, 4, 3], [0, 1, 4, 3, 2], [0, 2, 1, 3, 4], [3, 1, 2, 0, 4], [4, 1, 2, 3, 0], [0, 1, 2, 3], [0, 2, 3, 4],
      [0, 1, 2, 3, 4, 4], [0, 1, 1, 2, 3, 4], [0, 1, 2, 3, 3, 4], [0, 1, 2], [0, 3, 4], [0, 1, 2, 3, 4, 0], [0, 3, 1, 2, 4]]
  }
}

const charArb = fc.oneof(fc.constantFrom(...base64urlChars, '.', '=', '+', '/', ' ', '%', '"', ';', '\t', ','), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }))

/** The mutations of any token: bits, characters, segments (swapped with `pool`'s, reordered, cut, re-encoded), affixes. */
function textMutations (pool: readonly string[], { segment, orders }: Shape): Array<fc.WeightedArbitrary<Mutation>> {
  return [
    { arbitrary: fc.record({ op: fc.constant('flipBit' as const), segment, byte: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('setChar' as const), at: fc.nat(), char: charArb }), weight: 3 },
    { arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), remove: fc.integer({ min: 0, max: 6 }), insert: anyText(6) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('swapSegment' as const), segment, from: fc.constantFrom(...pool), fromSegment: segment }), weight: 3 },
    { arbitrary: fc.record({ op: fc.constant('reorder' as const), order: fc.constantFrom(...orders) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('truncate' as const), segment, keep: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('extend' as const), segment, extra: fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/) }), weight: 2 },
    {
      arbitrary: fc.record({
        op: fc.constant('affix' as const),
        prefix: fc.oneof(fc.constantFrom('', '', ' ', '.', '"', 'Bearer ', '='), anyText(3)),
        suffix: fc.oneof(fc.constantFrom('', '', ' ', '.', '=', '==', '.x', '"', '\u0000'), anyText(3))
      }),
      weight: 2
    },
    { arbitrary: fc.record({ op: fc.constant('reencode' as const), segment, style: fc.constantFrom('base64' as const, 'base64-unpadded' as const, 'padded' as const, 'base64url' as const) }), weight: 3 },
    { arbitrary: fc.record({ op: fc.constant('lowBits' as const), segment, bits: fc.integer({ min: 1, max: 15 }) }), weight: 2 }
  ]
}

/** The mutations of a JWS: header and claims edited, then re-signed (or not) by `resignArb`. */
function jwsMutations (): Array<fc.WeightedArbitrary<Mutation>> {
  return [
    { arbitrary: fc.record({ op: fc.constant('header' as const), edits: fc.array(memberEditArb(headerKeys, headerValues), { minLength: 1, maxLength: 3 }), resign: resignArb }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('claims' as const), edits: fc.array(memberEditArb(claimKeys, claimValues), { minLength: 1, maxLength: 3 }), resign: resignArb }), weight: 4 },
    {
      arbitrary: fc.record({
        op: fc.constantFrom('headerText' as const, 'claimsText' as const),
        text: fc.oneof(
          fc.constantFrom('', 'null', '[]', '"x"', '1', '{', '{}', '{"alg":"none"}', '{"alg":"HS256","alg":"none"}', '{"alg":"none","alg":"HS256"}',
            '{"alg":"HS256","__proto__":{"crit":["exp"]}}', '{"alg":"HS256"} ', ' {"alg":"HS256"}', '\uFEFF{"alg":"HS256"}', '{"alg":"HS256"}\u0000'),
          fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
          anyText(20)
        ),
        resign: resignArb
      }),
      weight: 2
    }
  ]
}

const jweHeaderKeys = ['alg', 'alg', 'enc', 'enc', 'zip', 'zip', 'kid', 'typ', 'crit', 'cty', 'jwk', 'jku', 'x5u', 'x5c', 'epk', 'apu', 'apv',
  'iv', 'tag', 'p2s', 'p2c', 'b64', '__proto__', 'constructor', 'ENC', 'enc ']
const jweHeaderValues = jsonValueArb([
  'dir', 'DIR', 'dir ', 'A256GCM', 'A256gcm', 'A128GCM', 'A192GCM', 'A256CBC-HS512', 'A128CBC-HS256', 'A256KW', 'A256GCMKW', 'RSA-OAEP-256',
  'ECDH-ES', 'ECDH-ES+A256KW', 'PBES2-HS512+A256KW', 'none', 'HS256', 'DEF', 'k1', 'JWT', 'JWE', '', null, 1e6, ['exp'], ['zip'], [],
  { kty: 'oct', k: b64url('a-test-secret-of-at-least-32-bytes!') }, { kty: 'EC', crv: 'P-256', x: 'AQAB', y: 'AQAB' }, 'https://attacker.example/jwks.json'
])
const resealArb = fc.constantFrom<Reseal>('keep', 'keep', 'empty', 'foreign', 'ours-unhashed', 'ours-A128GCM')

// Headers the contract refuses whatever the key: sealed under the app's own key with good claims, each must be refused before decryption.
const refusedHeaders = [
  '{"alg":"dir","enc":"A256GCM","zip":"DEF"}', '{"alg":"dir","enc":"A256GCM","typ":"JWT","zip":"DEF"}', '{"zip":"DEF","alg":"dir","enc":"A256GCM"}',
  '{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}', '{"alg":"dir","enc":"A256GCM","crit":[]}', '{"alg":"dir","enc":"A128GCM"}',
  '{"alg":"dir","enc":"A256CBC-HS512"}', '{"alg":"A256KW","enc":"A256GCM"}', '{"alg":"none","enc":"A256GCM"}', '{"alg":"DIR","enc":"A256GCM"}',
  '{"alg":"dir","enc":"a256gcm"}', '{"alg":"dir","enc":"A256GCM","kid":"k1"}', '{"alg":"dir","enc":"A256GCM","kid":null}',
  '{"alg":"dir","enc":"A256GCM","jwk":{"kty":"oct","k":"AAAA"}}', '{"alg":"dir","enc":"A256GCM","cty":"JWT"}', '{"alg":"dir","enc":"A256GCM","p2c":1000000}',
  '{"alg":"dir","enc":"A256GCM","epk":{}}', '{"alg":"dir","enc":"A256GCM","__proto__":{"zip":"DEF"}}', '{"alg":"dir","enc":"A256GCM","enc":"A128GCM"}',
  '{"alg":"dir","enc":"A256GCM","alg":"none"}', '{"alg":"dir"}', '{"enc":"A256GCM"}', '{}', '[]', 'null', '"dir"', '{"alg":"dir","enc":"A256GCM"'
]

/** The mutations of a JWE: header and plaintext edited, then sealed (or not) by `resealArb`; refused headers under the app's key. */
function jweMutations (): Array<fc.WeightedArbitrary<Mutation>> {
  return [
    { arbitrary: fc.record({ op: fc.constant('jweHeader' as const), edits: fc.array(memberEditArb(jweHeaderKeys, jweHeaderValues), { minLength: 1, maxLength: 3 }), reseal: resealArb }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('jweClaims' as const), edits: fc.array(memberEditArb(claimKeys, claimValues), { minLength: 1, maxLength: 3 }), reseal: resealArb }), weight: 4 },
    {
      arbitrary: fc.record({
        op: fc.constantFrom('jweHeaderText' as const, 'jweClaimsText' as const),
        text: fc.oneof(fc.constantFrom(...refusedHeaders, '{"alg":"dir","enc":"A256GCM"} ', '\uFEFF{"alg":"dir","enc":"A256GCM"}'), fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)), anyText(20)),
        reseal: resealArb
      }),
      weight: 2
    },
    { arbitrary: fc.record({ op: fc.constant('refusedHeader' as const), header: fc.constantFrom(...refusedHeaders), deflate: fc.boolean() }), weight: 3 }
  ]
}

/** One mutation of a token in `format`; `pool` holds the tokens segments are swapped with. */
export function mutationArb (pool: readonly string[], format: TokenFormat['kind'] = 'signed'): fc.Arbitrary<Mutation> {
  return fc.oneof(...textMutations(pool, shapes[format]), ...(format === 'signed' ? jwsMutations() : jweMutations()))
}

/** Zero to three mutations: zero keeps an issued token as is, the control inside the property. */
export function mutationsArb (pool: readonly string[], minLength = 0, format: TokenFormat['kind'] = 'signed'): fc.Arbitrary<Mutation[]> {
  const some = fc.array(mutationArb(pool, format), { minLength: Math.max(1, minLength), maxLength: 3 })
  return minLength > 0 ? some : fc.oneof({ arbitrary: fc.constant<Mutation[]>([]), weight: 1 }, { arbitrary: some, weight: 9 })
}

function jsonObjectOf (segment: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString())
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : {}
  } catch {
    return {}
  }
}

/** JSON text of members in order, duplicates and `__proto__` kept, raw texts spliced in. */
function objectText (members: Array<[string, unknown]>): string {
  const text = (value: unknown): string => value instanceof RawJson ? value.text : JSON.stringify(value) ?? 'null'
  return '{' + members.map(([key, value]) => `${JSON.stringify(key)}:${text(value)}`).join(',') + '}'
}

function edited (segment: string, edits: readonly MemberEdit[]): string {
  let members = Object.entries(jsonObjectOf(segment))
  for (const edit of edits) {
    if (edit.op === 'drop') members = members.filter(([key]) => key !== edit.key)
    else if (edit.op === 'append' || !members.some(([key]) => key === edit.key)) members.push([edit.key, edit.value])
    else members = members.map(([key, value]) => [key, key === edit.key ? edit.value : value])
  }
  return objectText(members)
}

function signed (headerSegment: string, payloadSegment: string, oldSignature: string | undefined, resign: Resign, foreignSecret: string, ourSecret: string): string {
  const input = `${headerSegment}.${payloadSegment}`
  switch (resign) {
    case 'keep': return `${input}.${oldSignature ?? ''}`
    case 'empty': return `${input}.`
    case 'foreign-HS256': return `${input}.${signInput(input, 'HS256', foreignSecret)}`
    // Our key, another HMAC size: the algorithm is pinned, so never valid.
    case 'ours-HS384': return `${input}.${signInput(input, 'HS384', ourSecret)}`
    case 'ours-HS512': return `${input}.${signInput(input, 'HS512', ourSecret)}`
  }
}

function reencoded (segment: string, style: 'base64' | 'base64-unpadded' | 'padded' | 'base64url'): string {
  const bytes = Buffer.from(segment, 'base64url')
  switch (style) {
    case 'base64': return bytes.toString('base64')
    case 'base64-unpadded': return bytes.toString('base64').replace(/=+$/, '')
    case 'padded': return segment + '='.repeat((4 - (segment.length % 4)) % 4 || 2)
    case 'base64url': return bytes.toString('base64url')
  }
}

/** Secrets for the mutations that re-sign: one that is not the app's, and the app's (for other HMAC sizes). */
export interface MutationKeys {
  foreign: string
  ours: string
}

export function mutate (token: string, mutations: readonly Mutation[], keys: MutationKeys): string {
  return mutations.reduce((current, mutation) => applyMutation(current, mutation, keys), token)
}

function applyMutation (token: string, mutation: Mutation, keys: MutationKeys): string {
  const segments = token.split('.')
  const at = (index: number): number => index % segments.length
  const withSegment = (index: number, value: string): string => segments.map((segment, i) => i === at(index) ? value : segment).join('.')
  switch (mutation.op) {
    case 'flipBit': {
      const bytes = Buffer.from(segments[at(mutation.segment)], 'base64url')
      if (bytes.length === 0) return token
      bytes[mutation.byte % bytes.length] ^= 1 << mutation.bit
      return withSegment(mutation.segment, bytes.toString('base64url'))
    }
    case 'setChar': {
      if (token.length === 0) return mutation.char
      const index = mutation.at % token.length
      return token.slice(0, index) + mutation.char + token.slice(index + 1)
    }
    case 'splice': {
      const index = token.length === 0 ? 0 : mutation.at % (token.length + 1)
      return token.slice(0, index) + mutation.insert + token.slice(index + mutation.remove)
    }
    case 'swapSegment': {
      const donor = mutation.from.split('.')
      return withSegment(mutation.segment, donor[mutation.fromSegment % donor.length])
    }
    case 'reorder':
      return mutation.order.map((index) => segments[at(index)]).join('.')
    case 'truncate': {
      const segment = segments[at(mutation.segment)]
      return withSegment(mutation.segment, segment.slice(0, segment.length === 0 ? 0 : mutation.keep % segment.length))
    }
    case 'extend':
      return withSegment(mutation.segment, segments[at(mutation.segment)] + mutation.extra)
    case 'affix':
      return mutation.prefix + token + mutation.suffix
    case 'reencode':
      return withSegment(mutation.segment, reencoded(segments[at(mutation.segment)], mutation.style))
    case 'lowBits': {
      const segment = segments[at(mutation.segment)]
      // 2 characters left over carry 12 bits for 8 (4 unused), 3 carry 18 for 16 (2 unused).
      const unused = segment.length % 4 === 2 ? 0b1111 : segment.length % 4 === 3 ? 0b11 : 0
      const last = base64urlChars.indexOf(segment.slice(-1))
      if (unused === 0 || last === -1) return token
      return withSegment(mutation.segment, segment.slice(0, -1) + base64urlChars[last ^ (mutation.bits & unused)])
    }
    case 'header':
      return signed(b64url(edited(segments[0], mutation.edits)), segments[1] ?? '', segments[2], mutation.resign, keys.foreign, keys.ours)
    case 'claims':
      return signed(segments[0], b64url(edited(segments[1] ?? '', mutation.edits)), segments[2], mutation.resign, keys.foreign, keys.ours)
    case 'headerText':
      return signed(b64url(mutation.text), segments[1] ?? '', segments[2], mutation.resign, keys.foreign, keys.ours)
    case 'claimsText':
      return signed(segments[0], b64url(mutation.text), segments[2], mutation.resign, keys.foreign, keys.ours)
    case 'jweHeader':
      return resealed(token, { kind: 'header', segment: b64url(edited(segments[0], mutation.edits)) }, mutation.reseal, keys)
    case 'jweHeaderText':
      return resealed(token, { kind: 'header', segment: b64url(mutation.text) }, mutation.reseal, keys)
    case 'jweClaims':
      return resealed(token, { kind: 'plaintext', of: (old) => Buffer.from(edited(b64url(old), mutation.edits)) }, mutation.reseal, keys)
    case 'jweClaimsText':
      return resealed(token, { kind: 'plaintext', of: () => Buffer.from(mutation.text) }, mutation.reseal, keys)
    case 'refusedHeader': {
      const plaintext = openedBy(token, keys) ?? Buffer.from('{}')
      const headerSegment = b64url(mutation.header)
      return sealJwe(headerSegment, mutation.deflate ? deflateRawSync(plaintext) : plaintext, jweKeyOf(keys.ours), ivOf(headerSegment, plaintext))
    }
  }
}

/** The plaintext of a JWE under the app's key or the foreign one, when one opens it. */
function openedBy (token: string, keys: MutationKeys): Buffer | undefined {
  for (const secret of [keys.ours, keys.foreign]) {
    try {
      return openJwe(token, jweKeyOf(secret))
    } catch {}
  }
  return undefined
}

/** A fixed IV per header and plaintext, so that a seed replays the same tokens. */
function ivOf (headerSegment: string, plaintext: Buffer): Buffer {
  return createHash('sha256').update(headerSegment).update(plaintext).digest().subarray(0, 12)
}

/** Known-plaintext malleation of AES-GCM: the old ciphertext turned into one of `to` (where the keystream is known), the tag left as is. */
function malleated (ciphertext: string, from: Buffer, to: Buffer): string {
  const old = Buffer.from(ciphertext, 'base64url')
  return Buffer.from(to.map((byte, i) => i < old.length ? byte ^ old[i] ^ (from[i] ?? 0) : byte)).toString('base64url')
}

type JweEdit = { kind: 'header', segment: string } | { kind: 'plaintext', of: (old: Buffer) => Buffer }

/** A JWE with a new header segment or plaintext, sealed as `reseal` says; the old plaintext, if a key opens it, is edited. */
function resealed (token: string, edit: JweEdit, reseal: Reseal, keys: MutationKeys): string {
  const segments = token.split('.')
  const old = openedBy(token, keys) ?? Buffer.from('{}')
  const headerSegment = edit.kind === 'header' ? edit.segment : segments[0]
  const plaintext = edit.kind === 'header' ? old : edit.of(old)
  const iv = ivOf(headerSegment, plaintext)
  const ciphertext = edit.kind === 'header' ? segments[3] ?? '' : malleated(segments[3] ?? '', old, plaintext)
  switch (reseal) {
    case 'keep': return [headerSegment, segments[1] ?? '', segments[2] ?? '', ciphertext, segments[4] ?? ''].join('.')
    case 'empty': return [headerSegment, segments[1] ?? '', segments[2] ?? '', ciphertext, ''].join('.')
    case 'foreign': return sealJwe(headerSegment, plaintext, jweKeyOf(keys.foreign), iv)
    case 'ours-unhashed': return sealJwe(headerSegment, plaintext, Buffer.from(keys.ours).subarray(0, 32), iv)
    case 'ours-A128GCM': return sealJwe(headerSegment, plaintext, jweKeyOf(keys.ours).subarray(0, 16), iv)
  }
}
