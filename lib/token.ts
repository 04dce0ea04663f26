// Token signing and verification: cheap structural checks first, then the signature. HS* tokens are verified here,
// with one HMAC and the claim checks fast-jwt would make; tokens of other keys by @fastify/jwt (fast-jwt).
import { createHmac, createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto'
import { types } from 'node:util'
import { isEcdsa, isLowS, withLowS } from './ecdsa.js'
import { describe, TokenInvalidError } from './errors.js'
import type { Algorithm } from '../types/index.js'

/** The part of @fastify/jwt's decorator this plugin uses: signer and verifier built once, at registration. */
export interface JwtSignerVerifier {
  sign: (payload: Record<string, unknown>) => string
  verify: (token: string) => unknown
}

/** A key ready to use: its algorithm and @fastify/jwt's signer and verifier for it. */
export interface CodecKey {
  kid: string | undefined
  algorithm: Algorithm
  jwt: JwtSignerVerifier
  /** The HMAC secret, for HS* keys: their tokens are verified by the codec (one HMAC), not by fast-jwt. */
  hmacSecret?: string | Buffer
  /** When the key starts signing, ms since epoch; undefined: from the start. It verifies at once either way. */
  signFrom?: number
}

export interface CodecOptions {
  /** How many verified tokens are remembered at most; `verifiedCacheSize` by default. */
  cacheSize?: number
  /**
   * The verify options the keys' fast-jwt verifiers were built with, in fast-jwt's terms (`clockTolerance` in ms):
   * HS* tokens are checked against them by the codec. None by default. With an option the codec does not know,
   * fast-jwt verifies HS* tokens too.
   */
  verify?: Readonly<Record<string, unknown>>
  /** The longest token accepted, refused before anything is decoded; `maxTokenBytes` by default (more for chunked cookies). */
  maxTokenBytes?: number
}

/** A verified payload, shared by every request that sends the same token: never changed, never handed out. */
export type VerifiedPayload = Readonly<Record<string, unknown>>

/**
 * What the caller makes of a verified payload (its lifetime, say), computed once per token and remembered
 * with it; throws `FST_TOKEN_COOKIE_INVALID` for a payload it refuses (rare: a token signed with our key).
 */
export type Admit<T> = (payload: VerifiedPayload) => T

/** Why a token is refused: `FST_TOKEN_COOKIE_INVALID`. */
export type InvalidToken = InstanceType<typeof TokenInvalidError>

export function isInvalidToken (value: unknown): value is InvalidToken {
  return value instanceof TokenInvalidError
}

/**
 * Makes and reads the plugin's tokens. An encrypting codec works asynchronously: its `sign` resolves to the token,
 * and its `verify` resolves on a token's first sight (then answers at once from the cache of verified tokens).
 */
export interface TokenCodec<T> {
  sign: (claims: Record<string, unknown>) => string | Promise<string>
  /**
   * What `admit` made of the payload of a well-formed token with a good signature, or else the error that says
   * why the token is refused: returned, not thrown, because refusing garbage is a path attackers choose.
   */
  verify: (token: string) => T | InvalidToken | Promise<T | InvalidToken>
}

/** The codec of signed tokens: everything at once, nothing asynchronous. */
export interface SigningCodec<T> extends TokenCodec<T> {
  sign: (claims: Record<string, unknown>) => string
  verify: (token: string) => T | InvalidToken
}

/** Browsers keep cookies up to 4096 bytes, so no token in one cookie of ours is longer. */
export const maxTokenBytes = 4096

/**
 * How many verified tokens are remembered by default: a token is verified once, then found by one lookup while it
 * stays among the last this many verified. More distinct tokens in use than that and each is verified anew (once
 * per lap). At about 850 bytes per token of 350 bytes, a full cache holds some 27 MB: only an instance that
 * serves that many sessions in turn fills it, and it is the one that needs it. `cacheSize` sets another bound.
 */
export const verifiedCacheSize = 32_768

// Three base64url segments: a JWS in compact form, nothing else (no JWE, no padding).
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
// Header parameters that ask the verifier to trust something the token itself brings.
const refusedHeaders = ['crit', 'jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256']
// Keys that would reach an object's prototype when copied.
const prototypeKeys = new Set(['__proto__', 'constructor', 'prototype'])
// Header segments remembered with the key they name: those of tokens that verified, the same few strings every time.
const maxKnownHeaders = 8

const hmacHashes: Partial<Record<Algorithm, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }

/** What fast-jwt's verifier checks beyond the signature, for the options it was built with. */
export interface ClaimChecks {
  /** `checkTyp` as fast-jwt compares it: lower case, without `application/`. */
  typ: string | undefined
  required: readonly string[]
  /** Clock tolerance, ms. */
  tolerance: number
  notBefore: boolean
  expiry: boolean
  strings: ReadonlyArray<{ claim: string, array: boolean, allowed: ReadonlyArray<(value: string) => boolean> }>
}

// The options fast-jwt's verifier was built with that the codec checks itself; with any other, fast-jwt verifies.
const checkedOptions = new Set([
  'allowedJti', 'allowedAud', 'allowedIss', 'allowedSub', 'allowedNonce', 'requiredClaims', 'clockTolerance', 'checkTyp', 'ignoreExpiration',
  'ignoreNotBefore'
])
// In fast-jwt's order: option, claim, whether the claim may be an array.
const stringClaims = [['allowedJti', 'jti', false], ['allowedAud', 'aud', true], ['allowedIss', 'iss', false], ['allowedSub', 'sub', false],
  ['allowedNonce', 'nonce', false]] as const

/** The checks of fast-jwt 6's verifier for `options`, or `undefined` when one of them is not the codec's to make. */
export function claimChecksOf (options: Readonly<Record<string, unknown>>): ClaimChecks | undefined {
  if (Object.keys(options).some((name) => !checkedOptions.has(name))) return undefined
  const { checkTyp, requiredClaims, clockTolerance, ignoreExpiration, ignoreNotBefore } = options
  return {
    typ: checkTyp ? normalizedTyp(checkTyp as string) : undefined,
    required: (requiredClaims ?? []) as string[],
    tolerance: (clockTolerance ?? 0) as number,
    notBefore: !ignoreNotBefore,
    expiry: !ignoreExpiration,
    strings: stringClaims.filter(([option]) => options[option]).map(([option, claim, array]) => ({ claim, array, allowed: matchersOf(options[option]) }))
  }
}

export function normalizedTyp (typ: string): string {
  return typ.toLowerCase().replace(/^application\//, '')
}

/** fast-jwt's claim matchers: a RegExp, an object with a `test` method, or a value compared with `===`; falsy ones dropped. */
function matchersOf (option: unknown): Array<(value: string) => boolean> {
  return (Array.isArray(option) ? option : [option]).filter(Boolean).map((allowed: unknown) => {
    if (types.isRegExp(allowed) || allowed instanceof RegExp) {
      const pattern = allowed as RegExp
      return (value: string) => {
        try {
          pattern.lastIndex = 0
        } catch {
          // A frozen RegExp: its lastIndex stays where it is, as with fast-jwt.
        }
        return pattern.test(value)
      }
    }
    const matcher = allowed as { test?: unknown }
    if (typeof matcher.test === 'function') return (value: string) => Boolean((matcher as { test: (value: string) => unknown }).test(value))
    return (value: string) => value === allowed
  })
}

/** Why the claims of a token with a good signature fail fast-jwt's checks, in its words; `undefined` if they pass. */
function claimProblem (checks: ClaimChecks, payload: Record<string, unknown>, now: number): string | undefined {
  for (const claim of checks.required) {
    if (!(claim in payload)) return `The ${String(claim)} claim is required.`
  }
  if (checks.notBefore && 'nbf' in payload) {
    const nbf = payload.nbf
    if (typeof nbf !== 'number') return 'The nbf claim must be a number.'
    if (!(now >= nbf * 1000 - checks.tolerance)) return 'The token is not active yet.'
  }
  if (checks.expiry && 'exp' in payload) {
    const exp = payload.exp
    if (typeof exp !== 'number') return 'The exp claim must be a number.'
    if (!(now <= exp * 1000 + checks.tolerance)) return 'The token has expired.'
  }
  for (const { claim, array, allowed } of checks.strings) {
    if (!(claim in payload)) continue
    const value = payload[claim]
    const values: unknown[] = Array.isArray(value) ? value : [value]
    if ((!array && Array.isArray(value)) || values.some((entry) => typeof entry !== 'string')) {
      return `The ${claim} claim must be a string${array ? ' or an array of strings' : ''}.`
    }
    if (!values.some((entry) => allowed.some((matches) => matches(entry as string)))) return `The ${claim} claim value is not allowed.`
  }
  return undefined
}

interface HmacKey {
  hash: string
  secret: KeyObject
}

/** The key that signs new tokens: the first of the list. */
/** Whether `key` may sign at `now` (ms since epoch). */
export function canSign (key: { signFrom?: number | undefined }, now: number): boolean {
  return key.signFrom === undefined || key.signFrom <= now
}

/**
 * The key that signs now: the first whose `signFrom` is absent or past. Keys listed before it with a later
 * `signFrom` take over at that moment, on every instance that has the same list. Registration makes sure one can.
 */
export function signingKeyOf<K extends { signFrom?: number | undefined }> (keys: readonly K[]): K {
  const now = Date.now()
  return keys.find((key) => canSign(key, now))!
}

/** What `admit` made of the tokens verified last, at most `size` of them: found by one lookup. */
export interface VerifiedCache<T> {
  get: (token: string) => T | undefined
  /** Remembers a verified token (a copy of the string: see `detached`), evicting the oldest when full. */
  add: (token: string, admitted: T) => void
}

export function createVerifiedCache<T> (size: number): VerifiedCache<T> {
  const verified = new Map<string, T>()
  // The remembered tokens in the order they came, a ring: the next slot holds the oldest, the one to evict. (Not the
  // Map's own order: finding its first key walks past every entry deleted since the Map last rehashed.)
  const order: string[] = []
  let oldest = 0
  return {
    get: (token) => verified.get(token),
    add (token, admitted) {
      const copy = detached(token)
      if (order.length < size) {
        order.push(copy)
      } else {
        verified.delete(order[oldest])
        order[oldest] = copy
        oldest = oldest + 1 === size ? 0 : oldest + 1
      }
      verified.set(copy, admitted)
    }
  }
}

/** What `admit` makes of a payload, or the refusal it throws; any other error is a bug, and thrown. */
export function admitted<T> (admit: Admit<T>, payload: VerifiedPayload): T | InvalidToken {
  try {
    return admit(payload)
  } catch (error) {
    if (isInvalidToken(error)) return error
    throw error
  }
}

/**
 * Signs with the first key that may sign now (see `signerOf`); verifies with the key the token's `kid` names (a single secret has no `kid`).
 * Structure, key, algorithm and signature are checked once per token string, not once per request: what
 * `admit` made of a verified token is remembered (bounded). Time claims and revocation are the caller's,
 * checked on every request.
 */
export function createCodec<T> (keys: CodecKey[], admit: Admit<T>, options: CodecOptions = {}): SigningCodec<T> {
  const { cacheSize = verifiedCacheSize, verify: verifyOptions = {}, maxTokenBytes: maxBytes = maxTokenBytes } = options
  const [first] = keys
  const checks = claimChecksOf(verifyOptions)
  // HS* keys, verified here when the codec can make every check fast-jwt would.
  const hmacKeys = new Map<CodecKey, HmacKey>()
  for (const key of keys) {
    if (key.hmacSecret !== undefined && checks !== undefined) hmacKeys.set(key, { hash: hmacHashes[key.algorithm]!, secret: createSecretKey(Buffer.from(key.hmacSecret)) })
  }
  const byKid = new Map(keys.map((key) => [key.kid, key]))
  const cache = createVerifiedCache<T>(cacheSize)
  const knownHeaders = new Map<string, CodecKey>()

  return {
    sign: signerOf(keys),
    verify (token) {
      const known = cache.get(token)
      if (known !== undefined) return known
      const payload = verifyUncached(token)
      if (isInvalidToken(payload)) return payload
      const result = admitted(admit, payload)
      if (!isInvalidToken(result)) cache.add(token, result)
      return result
    }
  }

  function verifyUncached (token: string): Record<string, unknown> | InvalidToken {
    if (token.length > maxBytes) return new TokenInvalidError(`longer than ${maxBytes} bytes`)
    // Exactly two dots before the character check: most garbage has none, and fails here for next to nothing.
    const firstDot = token.indexOf('.')
    const lastDot = token.lastIndexOf('.')
    if (firstDot === lastDot || token.indexOf('.', firstDot + 1) !== lastDot || !compactJws.test(token)) return new TokenInvalidError('not a signed JWT')
    // One spelling per signature: unused low bits in its last character would give copies of a token other strings.
    if (!isCanonicalBase64url(token, lastDot + 1)) return new TokenInvalidError('the signature is not canonical base64url')
    const headerSegment = token.slice(0, firstDot)
    const knownKey = knownHeaders.get(headerSegment)
    const key = knownKey ?? keyOf(headerSegment)
    if (isInvalidToken(key)) return key
    if (isEcdsa(key.algorithm) && !isLowS(key.algorithm, token.slice(lastDot + 1))) return new TokenInvalidError('the ECDSA signature is not in low-S form')
    const hmacKey = hmacKeys.get(key)
    const payload = hmacKey === undefined ? verifiedByFastJwt(key, token) : verifiedHere(hmacKey, token, firstDot, lastDot)
    if (isInvalidToken(payload)) return payload
    if (hasPrototypeKey(payload)) return new TokenInvalidError('the payload has a __proto__, constructor or prototype key')
    // A pure function of the header text, remembered for the few headers of tokens that verified.
    if (knownKey === undefined && knownHeaders.size < maxKnownHeaders) knownHeaders.set(detached(headerSegment), key)
    return payload
  }

  /** The key a token's header names, or why it names none: decoded and parsed once per header text, not per token. */
  function keyOf (headerSegment: string): CodecKey | InvalidToken {
    const header = headerOf(headerSegment)
    if (typeof header === 'string') return new TokenInvalidError(header)
    // Never a fallback: an unknown or missing kid names no key.
    const key = first.kid === undefined ? first : typeof header.kid === 'string' ? byKid.get(header.kid) : undefined
    if (key === undefined) return new TokenInvalidError(`no key for kid ${describe(header.kid)}`)
    // Pinned per key: `none`, another HMAC size or another key type never reaches the verifier.
    if (header.alg !== key.algorithm) return new TokenInvalidError(`algorithm ${describe(header.alg)} is not ${key.algorithm}`)
    // fast-jwt's `checkTyp` (which it checks again for the tokens it verifies).
    if (checks?.typ !== undefined && (typeof header.typ !== 'string' || normalizedTyp(header.typ) !== checks.typ)) return new TokenInvalidError('Invalid typ.')
    return key
  }

  /** An HS* token: one HMAC compared in constant time, then the payload and fast-jwt's claim checks. */
  function verifiedHere ({ hash, secret }: HmacKey, token: string, firstDot: number, lastDot: number): Record<string, unknown> | InvalidToken {
    const expected = createHmac(hash, secret).update(token.slice(0, lastDot)).digest()
    const given = Buffer.from(token.slice(lastDot + 1), 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return new TokenInvalidError('The token signature is invalid.')
    // Signed with our key: what follows only fails for a token we (or whoever holds the key) signed.
    return checkedPayload(checks!, Buffer.from(token.slice(firstDot + 1, lastDot), 'base64url').toString())
  }
}

/** The claims of a token whose signature (or encryption) is good, as JSON text: an object that passes `checks`. */
export function checkedPayload (checks: ClaimChecks, text: string): Record<string, unknown> | InvalidToken {
  let payload: unknown
  try {
    payload = JSON.parse(text)
  } catch {
    return new TokenInvalidError('The token payload is not a valid base64url serialized JSON.')
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return new TokenInvalidError('The payload must be an object')
  let problem: string | undefined
  try {
    problem = claimProblem(checks, payload as Record<string, unknown>, Date.now())
  } catch (error) {
    // A matcher of the app's that throws (a frozen global RegExp, say): refused, as by fast-jwt's verifier.
    problem = error instanceof Error ? error.message : 'a claim check failed'
  }
  return problem === undefined ? payload as Record<string, unknown> : new TokenInvalidError(problem)
}

/** Signs with the key that signs now (`signingKeyOf`), ECDSA in low-S form; looked up only where `signFrom` is used. */
function signerOf (keys: CodecKey[]): (claims: Record<string, unknown>) => string {
  const signWith = (key: CodecKey, claims: Record<string, unknown>): string =>
    isEcdsa(key.algorithm) ? withLowS(key.algorithm, key.jwt.sign(claims)) : key.jwt.sign(claims)
  if (keys[0].signFrom === undefined) return (claims) => signWith(keys[0], claims)
  return (claims) => signWith(signingKeyOf(keys), claims)
}

/** A token of another key type (or of a codec that cannot make fast-jwt's checks itself): fast-jwt verifies it. */
function verifiedByFastJwt (key: CodecKey, token: string): Record<string, unknown> | InvalidToken {
  let payload: unknown
  try {
    payload = withoutStackTraces(() => key.jwt.verify(token))
  } catch (error) {
    return new TokenInvalidError(error instanceof Error ? error.message : 'the token did not verify')
  }
  // fast-jwt 6 already refuses payloads that are not objects; kept so a change there cannot let one through.
  /* c8 ignore next */
  if (!isPlainObject(payload)) return new TokenInvalidError('the payload is not a JSON object')
  return payload
}

/**
 * A copy of a string the cache keeps: a token is a slice of the Cookie header, which would stay alive behind it.
 * Slicing a concatenation copies both parts into one new string first, so the slice refers to that copy alone: one
 * character longer than the token, and no Buffer on the way.
 */
export function detached (text: string): string {
  return `${text} `.slice(0, -1)
}

/**
 * Whether `token` from `start` on is base64url as Buffer writes it: no unused low bits set in its last character,
 * and no length that leaves one character over (the characters themselves are checked by the caller).
 */
export function isCanonicalBase64url (token: string, start: number): boolean {
  const rest = (token.length - start) % 4
  if (rest === 0) return true
  if (rest === 1) return false
  // The 6-bit value of the last character: 2 characters carry 1 byte (4 bits unused), 3 carry 2 (2 bits unused).
  const value = base64urlAlphabet.indexOf(token[token.length - 1])
  return (value & (rest === 2 ? 15 : 3)) === 0
}

/** The header of what may be a token of ours, or why it cannot be one. */
export function headerOf (segment: string): Record<string, unknown> | string {
  const headerText = Buffer.from(segment, 'base64url').toString()
  // A JSON object starts with `{`: anything else is refused without JSON.parse, whose SyntaxError costs microseconds.
  const trimmed = headerText.trim()
  if (trimmed[0] !== '{' || trimmed[trimmed.length - 1] !== '}') return 'the header is not a JSON object'
  // Text between braces parses to an object, or not at all.
  let header: Record<string, unknown>
  try {
    header = withoutStackTraces(() => JSON.parse(headerText))
  } catch {
    return 'the header is not JSON'
  }
  for (const name of refusedHeaders) {
    if (Object.hasOwn(header, name)) return `header ${name} is not accepted`
  }
  return header
}

/** Runs `call` with stack traces off: the errors of a refused token are never read, and capturing one costs microseconds. */
export function withoutStackTraces<R> (call: () => R): R {
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return call()
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
}

// Random bytes fetched 4 KB at a time: one call to the system's generator per 256 ids, not one per id.
const randomPool = Buffer.alloc(4096)
let randomOffset = randomPool.length

/** 128 random bits, base64url: session ids (`sid`) and token ids (`jti`). */
export function randomId (): string {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool)
    randomOffset = 0
  }
  randomOffset += 16
  return randomPool.toString('base64url', randomOffset - 16, randomOffset)
}

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) &&
    (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)
}

/** Whether `value` holds a `__proto__`, `constructor` or `prototype` key at any depth. */
export function hasPrototypeKey (value: unknown): boolean {
  // Iterative: a 4 KB token can nest 2000 levels deep.
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const current = pending.pop()
    if (current === null || typeof current !== 'object') continue
    for (const key of Object.keys(current)) {
      if (prototypeKeys.has(key)) return true
      pending.push((current as Record<string, unknown>)[key])
    }
  }
  return false
}

// Past this depth a copy goes on without recursion: chunked tokens (up to 40 KB) can nest deeper than the stack.
const maxRecursiveDepth = 1000

/**
 * A copy of a JSON value (what JSON.parse gives: plain objects, arrays, primitives), several times cheaper than a
 * JSON round trip: a spread copies an object's own properties in one step, then nested objects and arrays are
 * copied in turn. Each request gets its own copy of a payload shared through the cache of verified tokens.
 */
export function copyJson<V> (value: V): V {
  return copyAt(value, 0)
}

function copyAt<V> (value: V, depth: number): V {
  if (value === null || typeof value !== 'object') return value
  if (depth === maxRecursiveDepth) return copyIteratively(value)
  if (Array.isArray(value)) return value.map((entry: unknown) => copyAt(entry, depth + 1)) as V
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const key in copy) {
    const child = copy[key]
    if (child !== null && typeof child === 'object') copy[key] = copyAt(child, depth + 1)
  }
  return copy as V
}

/** The same copy, level by level from a list of copies whose children are still the originals. */
function copyIteratively<V extends object> (value: V): V {
  const shallow = (original: object): Record<string, unknown> =>
    (Array.isArray(original) ? original.slice() : { ...original }) as Record<string, unknown>
  const root = shallow(value)
  const pending = [root]
  while (pending.length > 0) {
    const copy = pending.pop()!
    for (const key in copy) {
      const child = copy[key]
      if (child === null || typeof child !== 'object') continue
      const childCopy = shallow(child)
      copy[key] = childCopy
      pending.push(childCopy)
    }
  }
  return root as V
}
