// Registration options: parsed and validated once, so the per-request path reads plain values.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { resolveCsrf, type CsrfOptions } from './csrf.js'
import { toSeconds } from './duration.js'
import { OptionsError } from './errors.js'
import {
  checkNames, cookieOptions, fastifyRegisterOptions, keyOptions, ownedSignOptions, ownedVerifyOptions, signOptions, topLevelOptions, verifyOptions,
  verifyTokenOptions
} from './option-names.js'
import { policies, type Lifetime } from './policy.js'
import { memoryStore, type RevocationStore } from './store.js'
import type { EncryptionKey } from './encrypted-token.js'
import { canSign, verifiedCacheSize } from './token.js'
import type {
  Algorithm, AsymmetricKey, CookieAttributes, HmacKey, IsRevoked, KeyPair, LoginOptions, SignOptions, TokenCookieOptions, VerifyOptions, VerifyTokenOptions
} from '../types/index.js'

export interface ResolvedCookieAttributes {
  httpOnly: boolean
  secure: boolean | 'auto'
  sameSite: 'lax' | 'strict' | 'none'
  path: string
  domain?: string
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

export interface ResolvedOptions {
  lifetime: Lifetime
  renewAfter: number
  cookieName: string
  cookie: ResolvedCookieAttributes
  /** Keys: the first whose `signFrom` is past signs; with more than one, each token names its key by `kid`. */
  keys: SigningKey[]
  /** How tokens are made: signed (JWS), or with `encrypt: true` encrypted (JWE) under keys derived from HMAC secrets. */
  format: TokenFormat
  /** Sign options for @fastify/jwt, less the algorithm (per key). */
  sign: Record<string, unknown>
  /** Verify options for @fastify/jwt, less the algorithm (per key); expiry is left to the lifetime policy. */
  verify: Record<string, unknown>
  /** Allowed clock skew, seconds. */
  clockTolerance: number
  bearer: boolean
  isRevoked?: IsRevoked
  expiryHint: boolean
  csrf: CsrfOptions
  store: RevocationStore | undefined
  /** Seconds. */
  storeTimeout: number
  failOpen: boolean
  /** How many verified tokens are remembered. */
  cacheSize: number
  /** How many cookies one token may be split over: 1 writes and reads `<cookieName>` alone. */
  maxChunks: number
}

export interface SigningKey {
  /** Undefined for a single secret, which needs no `kid`. */
  kid: string | undefined
  algorithm: Algorithm
  /** What @fastify/jwt gets as `secret`. */
  secret: string | Buffer | KeyPair
  /** When the key starts signing, ms since epoch (it verifies at once); undefined: it may sign from the start. */
  signFrom: number | undefined
}

export type TokenFormat = { kind: 'signed' } | { kind: 'encrypted', keys: EncryptionKey[] }

export const defaultLifetime: Lifetime = { policy: 'sliding', maxAge: 30 * 60, absoluteMaxAge: 12 * 60 * 60, sessionCookie: false }
export const defaultCookie: ResolvedCookieAttributes = { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }

const minimumSecretBytes = 32
// RFC 6265 §4.1.1: a cookie name is an RFC 2616 token.
const cookieNamePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// What a Domain or Path attribute can carry: printable ASCII, no `;`.
const domainPattern = /^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const pathPattern = /^[\u0020-\u003A\u003C-\u007E]*$/
const sameSiteValues = ['lax', 'strict', 'none']
const priorityValues = ['low', 'medium', 'high']
const hmacAlgorithms: readonly Algorithm[] = ['HS256', 'HS384', 'HS512']
// Chunk names carry one digit: `.0` to `.9`.
export const maxChunksLimit = 10
export function resolveOptions (options: TokenCookieOptions): ResolvedOptions {
  checkNamesOf(options)
  const keys = resolveKeys(options.secret, options.sign?.algorithm)
  const format = resolveFormat(options, keys)
  const cookieName = options.cookieName ?? 'token'
  if (typeof cookieName !== 'string' || !cookieNamePattern.test(cookieName)) {
    fail('cookieName', 'must be a cookie name (letters, digits and !#$%&\'*+-.^_`|~)')
  }
  const renewAfter = options.renewAfter ?? 0.5
  if (typeof renewAfter !== 'number' || !(renewAfter >= 0 && renewAfter <= 1)) fail('renewAfter', 'must be a number in [0, 1]')
  const tolerance = options.verify?.clockTolerance
  const clockTolerance = tolerance === undefined || tolerance === 0 ? 0 : duration('verify.clockTolerance', tolerance)
  checkFlags(options)
  const { cacheSize, maxChunks } = resolveSizes(options)
  return {
    lifetime: resolveLifetime(options, defaultLifetime),
    renewAfter,
    cookieName,
    cookie: resolveCookie(cookieName, options.cookie),
    keys,
    format,
    sign: { ...options.sign },
    verify: {
      ...options.verify,
      requiredClaims: requiredClaims(options.verify),
      ignoreExpiration: true,
      clockTolerance: clockTolerance * 1000
    },
    clockTolerance,
    bearer: options.bearer ?? false,
    isRevoked: options.isRevoked,
    expiryHint: options.expiryHint ?? false,
    csrf: resolveCsrf(options.csrf),
    store: resolveStore(options.store),
    storeTimeout: options.storeTimeout === undefined ? 0.1 : duration('storeTimeout', options.storeTimeout),
    failOpen: options.failOpen ?? false,
    cacheSize,
    maxChunks
  }
}

/** The options that are a boolean or a function, left as they are when valid. */
function checkFlags ({ bearer, isRevoked, expiryHint, failOpen }: TokenCookieOptions): void {
  if (bearer !== undefined && typeof bearer !== 'boolean') fail('bearer', 'must be a boolean')
  if (isRevoked !== undefined && typeof isRevoked !== 'function') fail('isRevoked', 'must be a function')
  if (expiryHint !== undefined && typeof expiryHint !== 'boolean') fail('expiryHint', 'must be a boolean')
  if (failOpen !== undefined && typeof failOpen !== 'boolean') fail('failOpen', 'must be a boolean')
}

function resolveSizes (options: TokenCookieOptions): { cacheSize: number, maxChunks: number } {
  const { cacheSize = verifiedCacheSize, maxChunks = 1 } = options
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) fail('cacheSize', 'must be a positive integer')
  if (!Number.isInteger(maxChunks) || maxChunks < 1 || maxChunks > maxChunksLimit) fail('maxChunks', `must be an integer from 1 to ${maxChunksLimit}`)
  return { cacheSize, maxChunks }
}

/** What a `verifyToken()` call asks beyond a verified token. */
export interface VerifyCheck {
  /** Resolve to `null` for the 401 cases. */
  optional: boolean
  /** Seconds since login past which the call rejects with `FST_TOKEN_COOKIE_REAUTH`. */
  maxAuthAge: number | undefined
}

export const plainCheck: VerifyCheck = Object.freeze({ optional: false, maxAuthAge: undefined })

/** The options of one `verifyToken()` call; bad ones are a programming error (`FST_TOKEN_COOKIE_OPTIONS`). */
export function resolveVerifyCheck (options: VerifyTokenOptions | undefined): VerifyCheck {
  if (options === undefined) return plainCheck
  if (options === null || typeof options !== 'object') fail('verifyToken options', 'must be an object')
  checkNames('verifyToken options', options, verifyTokenOptions)
  const { optional = false, maxAuthAge } = options
  if (typeof optional !== 'boolean') fail('verifyToken options.optional', 'must be a boolean')
  return { optional, maxAuthAge: maxAuthAge === undefined ? undefined : duration('verifyToken options.maxAuthAge', maxAuthAge) }
}

/** A lifetime from `options` over `base`: used at registration and again for each login's overrides. */
export function resolveLifetime (options: LoginOptions, base: Lifetime): Lifetime {
  const policy = options.policy ?? base.policy
  if (!policies.includes(policy)) fail('policy', `must be one of ${policies.join(', ')}`)
  const maxAge = options.maxAge === undefined ? base.maxAge : wholeSeconds('maxAge', options.maxAge)
  const absoluteMaxAge = options.absoluteMaxAge === undefined ? base.absoluteMaxAge : wholeSeconds('absoluteMaxAge', options.absoluteMaxAge)
  const sessionCookie = options.sessionCookie ?? base.sessionCookie
  if (typeof sessionCookie !== 'boolean') fail('sessionCookie', 'must be a boolean')
  if (policy === 'sliding' && absoluteMaxAge < maxAge) fail('absoluteMaxAge', `(${absoluteMaxAge}s) must not be shorter than maxAge (${maxAge}s)`)
  return { policy, maxAge, absoluteMaxAge, sessionCookie: policy === 'sliding' && sessionCookie }
}

const kidPattern = /^[A-Za-z0-9._-]{1,64}$/

function resolveKeys (secret: TokenCookieOptions['secret'], requested: SignOptions['algorithm']): SigningKey[] {
  if (!Array.isArray(secret)) return [{ kid: undefined, ...resolveKey(secret as string | Buffer | KeyPair, requested), signFrom: undefined }]
  if (secret.length === 0) fail('secret', 'must list at least one key')
  const kids = new Set<string>()
  const keys = secret.map((entry: HmacKey | AsymmetricKey, index): SigningKey => {
    if (entry === null || typeof entry !== 'object') fail(`secret[${index}]`, 'must be { kid, secret } or { kid, private, public }')
    checkNames(`secret[${index}]`, entry, keyOptions)
    const { kid } = entry
    if (typeof kid !== 'string' || !kidPattern.test(kid)) fail(`secret[${index}].kid`, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -')
    if (kids.has(kid)) fail(`secret[${index}].kid`, `${kid} is not unique`)
    kids.add(kid)
    const material = 'secret' in entry ? entry.secret : { private: entry.private, public: entry.public }
    return { kid, ...resolveKey(material, entry.algorithm ?? requested), signFrom: signFromOf(`secret[${index}].signFrom`, entry.signFrom) }
  })
  const now = Date.now()
  if (!keys.some((key) => canSign(key, now))) fail('secret', 'has no key that can sign now: every key has a signFrom in the future')
  return keys
}

// A date, or a date and time with its offset: a time without one would be local, so a moment that differs between
// instances in different time zones.
const isoDateTime = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/

function signFromOf (name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  const time = value instanceof Date ? value.getTime() : typeof value === 'string' && isCalendarDate(value) ? Date.parse(value) : NaN
  if (!Number.isFinite(time)) fail(name, 'must be a Date or an ISO 8601 date, or date and time with an offset (2026-12-05T09:00:00Z)')
  return time
}

/** An ISO 8601 string whose day exists in its month (Date.parse takes February 30 as March 2). */
function isCalendarDate (value: string): boolean {
  const match = isoDateTime.exec(value)
  if (match === null) return false
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  const date = new Date(Date.UTC(year, month - 1, day))
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day
}

const signed: TokenFormat = Object.freeze({ kind: 'signed' })
const claimOptions = ['iss', 'sub', 'nonce', 'typ'] as const

/** `encrypt: true`: HMAC secrets only, and no algorithm to choose (tokens are encrypted with A256GCM, not signed). */
function resolveFormat ({ encrypt, secret, sign }: TokenCookieOptions, keys: SigningKey[]): TokenFormat {
  if (encrypt === undefined || encrypt === false) return signed
  if (encrypt !== true) fail('encrypt', 'must be a boolean')
  if (sign?.algorithm !== undefined) fail('sign.algorithm', 'cannot be set with encrypt: true (tokens are encrypted with dir and A256GCM, not signed)')
  if (Array.isArray(secret)) {
    const index = secret.findIndex((entry: HmacKey | AsymmetricKey) => entry.algorithm !== undefined)
    if (index !== -1) fail(`secret[${index}].algorithm`, 'cannot be set with encrypt: true (tokens are encrypted with dir and A256GCM, not signed)')
  }
  // fast-jwt checks these when it signs; with encrypt: true it does not.
  const claims: Record<string, unknown> = { ...sign }
  for (const name of claimOptions) if (claims[name] !== undefined && typeof claims[name] !== 'string') fail(`sign.${name}`, 'must be a string')
  const { aud } = claims
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((entry) => typeof entry === 'string'))) {
    fail('sign.aud', 'must be a string or an array of strings')
  }
  return {
    kind: 'encrypted',
    keys: keys.map((key) => {
      const { secret } = key
      if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) fail('encrypt', 'needs HMAC secrets (a secret, or { kid, secret } keys), not a { private, public } key pair')
      return { ...key, secret }
    })
  }
}

function resolveKey (secret: string | Buffer | KeyPair, requested: SignOptions['algorithm']): Omit<SigningKey, 'kid' | 'signFrom'> {
  if (typeof secret === 'string' || Buffer.isBuffer(secret)) {
    if (Buffer.byteLength(secret) < minimumSecretBytes) fail('secret', `must be at least ${minimumSecretBytes} bytes`)
    const algorithm = requested ?? 'HS256'
    if (!hmacAlgorithms.includes(algorithm)) fail('sign.algorithm', `${String(algorithm)} needs a { private, public } key pair, not a secret`)
    return { algorithm, secret }
  }
  if (secret === null || typeof secret !== 'object') fail('secret', 'is required: a string or Buffer of at least 32 bytes, or { private, public } PEM keys')
  let publicKey: KeyObject
  try {
    publicKey = createPublicKey(secret.public)
    const privateKey = createPrivateKey(secret.private)
    if (!createPublicKey(privateKey).equals(publicKey)) fail('secret', 'private and public keys are not a pair')
  } catch (error) {
    if (error instanceof OptionsError) throw error
    fail('secret', `must hold PEM keys { private, public }: ${(error as Error).message}`)
  }
  const algorithms = algorithmsFor(publicKey)
  const algorithm = requested ?? algorithms[0]
  if (algorithm === undefined || !algorithms.includes(algorithm)) {
    fail('sign.algorithm', `${String(algorithm)} does not fit a ${String(publicKey.asymmetricKeyType)} key`)
  }
  return { algorithm, secret: { private: secret.private, public: secret.public } }
}

function resolveStore (store: TokenCookieOptions['store']): RevocationStore | undefined {
  if (store === undefined || store === false) return undefined
  if (store === true) return memoryStore({ max: 100_000 })
  const methods = ['check', 'revokeSession', 'revokeUser'] as const
  if (store === null || typeof store !== 'object' || methods.some((method) => typeof store[method] !== 'function')) {
    fail('store', 'must be true or a RevocationStore: { check, revokeSession, revokeUser }')
  }
  return store
}

function algorithmsFor (key: KeyObject): Algorithm[] {
  switch (key.asymmetricKeyType) {
    // PS* sign with a plain RSA key: fast-jwt cannot load 'rsa-pss' keys, so they fall to the default.
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return ['ES256']
      if (curve === 'secp384r1') return ['ES384']
      if (curve === 'secp521r1') return ['ES512']
      return []
    }
    case 'ed25519': return ['EdDSA']
    default: return []
  }
}

/** Every name given must be known: a misspelled option is an error, never silently ignored. */
function checkNamesOf (options: TokenCookieOptions): void {
  if (options === null || typeof options !== 'object') fail('options', 'must be an object with at least a secret')
  checkNames('', options, topLevelOptions, [], fastifyRegisterOptions)
  for (const [scope, known, owned] of [
    ['cookie', cookieOptions, []], ['sign', signOptions, ownedSignOptions], ['verify', verifyOptions, ownedVerifyOptions]
  ] as const) {
    const value: unknown = options[scope]
    if (value === undefined) continue
    if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(scope, 'must be an object')
    checkNames(scope, value, known, owned)
  }
}

function resolveCookie (cookieName: string, attributes: CookieAttributes | undefined): ResolvedCookieAttributes {
  const cookie: ResolvedCookieAttributes = { ...defaultCookie, ...withoutUndefined(attributes ?? {}) }
  if (typeof cookie.httpOnly !== 'boolean') fail('cookie.httpOnly', 'must be a boolean')
  if (typeof cookie.secure !== 'boolean' && cookie.secure !== 'auto') fail('cookie.secure', 'must be true, false or \'auto\'')
  if (!sameSiteValues.includes(cookie.sameSite)) fail('cookie.sameSite', 'must be \'lax\', \'strict\' or \'none\'')
  if (cookie.sameSite === 'none' && cookie.secure !== true) fail('cookie.sameSite', '\'none\' needs cookie.secure: true (browsers reject it otherwise)')
  if (typeof cookie.path !== 'string' || !cookie.path.startsWith('/') || !pathPattern.test(cookie.path)) {
    fail('cookie.path', 'must start with / and hold printable ASCII without ;')
  }
  if (cookie.domain !== undefined && (typeof cookie.domain !== 'string' || !domainPattern.test(cookie.domain))) {
    fail('cookie.domain', 'must be a host name')
  }
  if (cookie.partitioned !== undefined && typeof cookie.partitioned !== 'boolean') fail('cookie.partitioned', 'must be a boolean')
  if (cookie.priority !== undefined && !priorityValues.includes(cookie.priority)) fail('cookie.priority', 'must be \'low\', \'medium\' or \'high\'')
  if (cookieName.startsWith('__Secure-') || cookieName.startsWith('__Host-')) {
    if (cookie.secure === false) fail('cookie.secure', `cannot be false with a ${cookieName.startsWith('__Host-') ? '__Host-' : '__Secure-'} cookie name`)
    // Browsers keep these names only over HTTPS, so 'auto' means always.
    cookie.secure = true
  }
  if (cookieName.startsWith('__Host-')) {
    // RFC 6265bis §4.1.3.2: a __Host- cookie is Secure, has Path=/ and no Domain.
    cookie.path = '/'
    delete cookie.domain
  }
  return cookie
}

// fast-jwt checks allowedIss (aud, sub) only when the token has the claim: a token without it must fail.
function requiredClaims (verify: VerifyOptions | undefined): string[] {
  const required = new Set(verify?.requiredClaims ?? [])
  if (verify?.allowedIss !== undefined) required.add('iss')
  if (verify?.allowedAud !== undefined) required.add('aud')
  if (verify?.allowedSub !== undefined) required.add('sub')
  return [...required]
}

/** A duration in whole seconds, at least 1; `FST_TOKEN_COOKIE_OPTIONS` otherwise. */
export function wholeSeconds (name: string, value: unknown): number {
  const seconds = Math.floor(duration(name, value))
  if (seconds < 1) fail(name, 'must be at least 1 second (token times are whole seconds)')
  return seconds
}

function duration (name: string, value: unknown): number {
  const seconds = toSeconds(value)
  if (seconds === undefined) fail(name, `must be a positive duration: seconds, or a string like '90s', '30m', '12h' (got ${JSON.stringify(value)})`)
  return seconds
}

function withoutUndefined<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>
}

function fail (option: string, problem: string): never {
  throw new OptionsError(`${option} ${problem}`)
}
