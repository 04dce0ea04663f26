// Token signing and verification: cheap structural checks first, then @fastify/jwt (fast-jwt) for the crypto.
import { createHmac, createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto'
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
  /** The HMAC secret, for HS* keys: forged signatures are refused before fast-jwt's (costly) failure path. */
  hmacSecret?: string | Buffer
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

export interface TokenCodec<T> {
  sign: (claims: Record<string, unknown>) => string
  /**
   * What `admit` made of the payload of a well-formed token with a good signature, or else the error that says
   * why the token is refused: returned, not thrown, because refusing garbage is a path attackers choose.
   */
  verify: (token: string) => T | InvalidToken
}

/** Browsers keep cookies up to 4096 bytes, so no token of ours is longer. */
export const maxTokenBytes = 4096

/**
 * How many verified tokens are remembered. A session sends the same token until it renews, so a few thousand
 * cover every active session of a busy instance, in a few MB; more distinct tokens only evict the oldest.
 */
export const verifiedCacheSize = 4096

// Three base64url segments: a JWS in compact form, nothing else (no JWE, no padding).
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
// Header parameters that ask the verifier to trust something the token itself brings.
const refusedHeaders = ['crit', 'jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256']
// Keys that would reach an object's prototype when copied.
const prototypeKeys = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * Signs with the first key; verifies with the key the token's `kid` names (a single secret has no `kid`).
 * Structure, key, algorithm and signature are checked once per token string, not once per request: what
 * `admit` made of a verified token is remembered (bounded). Time claims and revocation are the caller's,
 * checked on every request.
 */
export function createCodec<T> (keys: CodecKey[], admit: Admit<T>): TokenCodec<T> {
  const [current] = keys
  const hmacKeys = new Map(keys.filter((key) => key.hmacSecret !== undefined).map((key) => [key, createSecretKey(Buffer.from(key.hmacSecret!))]))
  const byKid = new Map(keys.map((key) => [key.kid, key]))
  const keyFor = (header: Record<string, unknown>): CodecKey | undefined => {
    if (current.kid === undefined) return current
    // Never a fallback: an unknown or missing kid names no key.
    return typeof header.kid === 'string' ? byKid.get(header.kid) : undefined
  }
  // Oldest first: a Map keeps insertion order, so the first key is the one to evict.
  const verified = new Map<string, T>()

  return {
    sign: isEcdsa(current.algorithm) ? (claims) => withLowS(current.algorithm, current.jwt.sign(claims)) : (claims) => current.jwt.sign(claims),
    verify (token) {
      const known = verified.get(token)
      if (known !== undefined) return known
      const payload = verifyUncached(token)
      if (isInvalidToken(payload)) return payload
      let admitted: T
      try {
        admitted = admit(payload)
      } catch (error) {
        if (isInvalidToken(error)) return error
        throw error
      }
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value as string)
      // A copy: the token is a slice of the Cookie header, which would stay alive behind it.
      verified.set(Buffer.from(token, 'latin1').toString('latin1'), admitted)
      return admitted
    }
  }

  function verifyUncached (token: string): Record<string, unknown> | InvalidToken {
    const header = headerOf(token)
    if (typeof header === 'string') return new TokenInvalidError(header)
    const key = keyFor(header)
    if (key === undefined) return new TokenInvalidError(`no key for kid ${describe(header.kid)}`)
    // Pinned per key: `none`, another HMAC size or another key type never reaches the verifier.
    if (header.alg !== key.algorithm) return new TokenInvalidError(`algorithm ${describe(header.alg)} is not ${key.algorithm}`)
    if (isEcdsa(key.algorithm) && !isLowS(key.algorithm, token.slice(token.lastIndexOf('.') + 1))) return new TokenInvalidError('the ECDSA signature is not in low-S form')
    // This check can only refuse: a token that passes is still verified in full by fast-jwt below.
    const hmacKey = hmacKeys.get(key)
    if (hmacKey !== undefined && !hmacMatches(token, key.algorithm, hmacKey)) return new TokenInvalidError('The token signature is invalid.')
    let payload: unknown
    try {
      payload = withoutStackTraces(() => key.jwt.verify(token))
    } catch (error) {
      return new TokenInvalidError((error as Error).message)
    }
    // fast-jwt 6 already refuses payloads that are not objects; kept so a change there cannot let one through.
    /* c8 ignore next */
    if (!isPlainObject(payload)) return new TokenInvalidError('the payload is not a JSON object')
    if (hasPrototypeKey(payload)) return new TokenInvalidError('the payload has a __proto__, constructor or prototype key')
    return payload
  }
}

const hmacHashes: Partial<Record<Algorithm, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }

/** Whether the token's signature is the HMAC of its first two segments, compared in constant time. */
function hmacMatches (token: string, algorithm: Algorithm, key: KeyObject): boolean {
  const dot = token.lastIndexOf('.')
  const expected = createHmac(hmacHashes[algorithm]!, key).update(token.slice(0, dot)).digest()
  const given = Buffer.from(token.slice(dot + 1), 'base64url')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** The header of what may be a token of ours, or why it cannot be one: checked before any crypto. */
function headerOf (token: string): Record<string, unknown> | string {
  if (token.length > maxTokenBytes) return `longer than ${maxTokenBytes} bytes`
  // Exactly two dots before the character check: most garbage has none, and fails here for next to nothing.
  const firstDot = token.indexOf('.')
  const lastDot = token.lastIndexOf('.')
  if (firstDot === lastDot || token.indexOf('.', firstDot + 1) !== lastDot || !compactJws.test(token)) return 'not a signed JWT'
  // One spelling per signature: unused low bits in its last character would give copies of a token other strings.
  const signature = token.slice(lastDot + 1)
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) return 'the signature is not canonical base64url'
  const headerText = Buffer.from(token.slice(0, firstDot), 'base64url').toString()
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
function withoutStackTraces<R> (call: () => R): R {
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

/**
 * A copy of a JSON value (what JSON.parse gives: plain objects, arrays, primitives), several times cheaper than a
 * JSON round trip: a spread copies an object's own properties in one step, then nested objects and arrays are
 * copied in turn. Each request gets its own copy of a payload shared through the cache of verified tokens.
 * Recursive: a token of at most 4096 bytes nests at most some 1500 levels deep.
 */
export function copyJson<V> (value: V): V {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(copyJson) as V
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const key in copy) {
    const child = copy[key]
    if (child !== null && typeof child === 'object') copy[key] = copyJson(child)
  }
  return copy as V
}
