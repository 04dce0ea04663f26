// Token signing and verification: cheap structural checks first, then @fastify/jwt (fast-jwt) for the crypto.
import { createHmac, createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto'
import { TokenInvalidError } from './errors.js'
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

export interface TokenCodec {
  sign: (claims: Record<string, unknown>) => string
  /** The payload of a well-formed token with a good signature; throws `FST_TOKEN_COOKIE_INVALID` otherwise. */
  verify: (token: string) => Record<string, unknown>
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

/** Signs with the first key; verifies with the key the token's `kid` names (a single secret has no `kid`). */
export function createCodec (keys: CodecKey[]): TokenCodec {
  const [current] = keys
  const hmacKeys = new Map(keys.filter((key) => key.hmacSecret !== undefined).map((key) => [key, createSecretKey(Buffer.from(key.hmacSecret!))]))
  const byKid = new Map(keys.map((key) => [key.kid, key]))
  const keyFor = (header: Record<string, unknown>): CodecKey => {
    if (current.kid === undefined) return current
    // Never a fallback: an unknown or missing kid names no key.
    const key = typeof header.kid === 'string' ? byKid.get(header.kid) : undefined
    if (key === undefined) throw new TokenInvalidError(`no key for kid ${JSON.stringify(header.kid)}`)
    return key
  }
  // Token string → its verified payload as JSON: structure, key, algorithm and signature are checked once per
  // token, not once per request. Time claims and revocation are the caller's, checked on every request.
  // Each hit parses its own copy, so no request can change another's payload.
  const verified = new Map<string, string>()

  return {
    sign: (claims) => current.jwt.sign(claims),
    verify (token) {
      const known = verified.get(token)
      if (known !== undefined) return JSON.parse(known)
      // A rejected token throws on the way (JSON, fast-jwt) and every throw would capture a stack trace nobody
      // reads: a bad token is a 401 with its own code. Off for this synchronous call only, so garbage is cheap.
      const stackTraceLimit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      let payload: Record<string, unknown>
      try {
        payload = verifyUncached(token)
      } finally {
        Error.stackTraceLimit = stackTraceLimit
      }
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value as string)
      // A copy: the token is a slice of the Cookie header, which would stay alive behind it.
      verified.set(Buffer.from(token, 'latin1').toString('latin1'), JSON.stringify(payload))
      return payload
    }
  }

  function verifyUncached (token: string): Record<string, unknown> {
    const header = checkStructure(token)
    const key = keyFor(header)
    // Pinned per key: `none`, another HMAC size or another key type never reaches the verifier.
    if (header.alg !== key.algorithm) throw new TokenInvalidError(`algorithm ${String(header.alg)} is not ${key.algorithm}`)
    // This check can only refuse: a token that passes is still verified in full by fast-jwt below.
    const hmacKey = hmacKeys.get(key)
    if (hmacKey !== undefined && !hmacMatches(token, key.algorithm, hmacKey)) throw new TokenInvalidError('The token signature is invalid.')
    let payload: unknown
    try {
      payload = key.jwt.verify(token)
    } catch (error) {
      throw new TokenInvalidError((error as Error).message)
    }
    // fast-jwt 6 already refuses payloads that are not objects; kept so a change there cannot let one through.
    /* c8 ignore next */
    if (!isPlainObject(payload)) throw new TokenInvalidError('the payload is not a JSON object')
    if (hasPrototypeKey(payload)) throw new TokenInvalidError('the payload has a __proto__, constructor or prototype key')
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

/** Rejects, before any crypto, what cannot be a token of ours; returns its header. */
function checkStructure (token: string): Record<string, unknown> {
  if (token.length > maxTokenBytes) throw new TokenInvalidError(`longer than ${maxTokenBytes} bytes`)
  if (!compactJws.test(token)) throw new TokenInvalidError('not a signed JWT')
  // One spelling per signature: unused low bits in its last character would give copies of a token other strings.
  const signature = token.slice(token.lastIndexOf('.') + 1)
  if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) throw new TokenInvalidError('the signature is not canonical base64url')
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString())
  } catch {
    throw new TokenInvalidError('the header is not JSON')
  }
  if (!isPlainObject(header)) throw new TokenInvalidError('the header is not a JSON object')
  for (const name of refusedHeaders) {
    if (Object.hasOwn(header, name)) throw new TokenInvalidError(`header ${name} is not accepted`)
  }
  return header
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
