// Public types of fastify-token-cookie and the declaration merging for its decorators.
// Typed sessions ride on @fastify/jwt's own declaration merging: an app declares `payload` and `user` once in
// its `FastifyJWT` interface, and both plugins agree. Importing its types here also brings in its declaration
// of `request.user` (declaring it a second time would clash in apps that use both).
import type { FastifyJWT, SignPayloadType, UserType } from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import type { Duration } from '../lib/duration.js'
import type { RevocationStore, SessionInfo } from '../lib/store.js'

export type { Duration, DurationUnit } from '../lib/duration.js'
export type { MemoryStoreOptions, RevocationState, RevocationStore, SessionInfo } from '../lib/store.js'

/** How long a login lasts: see "Lifetime policies" in the README. */
export type Policy = 'session' | 'persistent' | 'sliding'

export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512'
export type AsymmetricAlgorithm =
  | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'
export type Algorithm = HmacAlgorithm | AsymmetricAlgorithm

/** A PEM key pair. */
export interface KeyPair {
  private: string | Buffer
  public: string | Buffer
}

/** One key of a rotation list: an HMAC secret of at least 32 bytes. */
export interface HmacKey {
  /** Names the key in the token header: `[A-Za-z0-9._-]`, 1 to 64 characters, unique in the list. */
  kid: string
  secret: string | Buffer
  /** Default HS256. */
  algorithm?: HmacAlgorithm
  /**
   * When this key starts signing: a `Date`, or an ISO 8601 date, or date and time with an offset
   * (`'2026-12-05T09:00:00Z'`). It verifies tokens at once. The first key of the list that may sign does: one
   * deploy of `[{ kid: 'k2', secret, signFrom }, { kid: 'k1', secret }]` switches every instance to `k2` at the
   * same moment.
   */
  signFrom?: Date | string
}

/** One key of a rotation list: a PEM key pair. */
export interface AsymmetricKey extends KeyPair {
  kid: string
  /** Default from the key: RS256 for RSA, ES256/384/512 for P-256/384/521, EdDSA for Ed25519. */
  algorithm?: AsymmetricAlgorithm
  /** When this key starts signing; see `HmacKey.signFrom`. */
  signFrom?: Date | string
}

/**
 * An HMAC secret of at least 32 bytes, a PEM key pair, or a list of keys for rotation:
 * tokens are signed with the first that may sign (see `signFrom`) and verified with the one their `kid` names.
 */
export type Secret = string | Buffer | KeyPair | ReadonlyArray<HmacKey | AsymmetricKey>

export interface CookieAttributes {
  httpOnly?: boolean
  /** `'auto'`: Secure when the request came over HTTPS. */
  secure?: boolean | 'auto'
  sameSite?: 'lax' | 'strict' | 'none'
  path?: string
  domain?: string
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

/** Claims and algorithm for signing, passed to @fastify/jwt. The plugin owns `iat`, `exp` and `auth_time`. */
export interface SignOptions {
  algorithm?: Algorithm
  iss?: string
  aud?: string | string[]
  sub?: string
  typ?: string
}

type ClaimMatcher = string | RegExp | Array<string | RegExp>

/** Checks on verification, passed to @fastify/jwt. */
export interface VerifyOptions {
  allowedIss?: ClaimMatcher
  allowedAud?: ClaimMatcher
  allowedSub?: ClaimMatcher
  requiredClaims?: string[]
  /** Slack for clock skew between servers on `exp`, `iat`, `nbf` and `auth_time`. */
  clockTolerance?: Duration
}

/** The claims every token of this plugin carries, beside the app's own. */
export interface TokenClaims {
  /**
   * The session id: 128 random bits, base64url, the same for a login and all its renewals. In every token
   * this plugin issues; only a token signed elsewhere with the same key may lack it (refused with a store).
   */
  sid?: string
  /** This token's unique id, in every token this plugin issues. */
  jti?: string
  /** Issued at, seconds since epoch; a renewal moves it. */
  iat: number
  /** Expires at, seconds since epoch. */
  exp: number
  /** Login time, seconds since epoch (OpenID Connect); renewals keep it. */
  auth_time: number
}

/** A verified token's payload: the app's claims and the plugin's. */
export type TokenPayload = TokenClaims & Record<string, unknown>

/** An object payload: arrays and functions are refused. */
type PlainObject<T> = T extends readonly unknown[] | ((...args: never[]) => unknown) ? never : T

/**
 * What `setTokenCookie()` accepts: the `payload` of the app's `FastifyJWT` declaration (see docs/typescript.md),
 * or, without one, any plain object. Only an object `payload` counts: a string or Buffer cannot be a session.
 */
export type SessionPayload = FastifyJWT extends { payload: object } ? Extract<SignPayloadType, object> : Record<string, unknown>

/**
 * What `verifyToken()` resolves to beside the plugin's claims, and what `request.user` is: the `user` of the app's
 * `FastifyJWT` declaration (its `payload` when it declares no `user`), or, without one, `TokenPayload`.
 */
export type SessionUser = FastifyJWT extends { payload: object } | { user: object } ? Extract<UserType, object> : TokenPayload

/** `setTokenCookie()`: typed by the app's declared payload, or generic over any plain object without one. */
export type SetTokenCookie = FastifyJWT extends { payload: object }
  ? (payload: SessionPayload, options?: LoginOptions) => Promise<string>
  : <T extends object>(payload: T & PlainObject<T>, options?: LoginOptions) => Promise<string>

/** `updateTokenCookie()`: the app's claims of the session, typed like `setTokenCookie()`'s payload. */
export type UpdateTokenCookie = FastifyJWT extends { payload: object }
  ? (claims: SessionPayload) => Promise<string>
  : <T extends object>(claims: T & PlainObject<T>) => Promise<string>

/** Options of `request.verifyToken()`. */
export interface VerifyTokenOptions {
  /**
   * Resolve to `null` instead of rejecting when the token is missing, invalid, expired or revoked (the 401
   * cases). A 503, an `isRevoked` failure and `maxAuthAge` still reject.
   */
  optional?: boolean
  /**
   * Reject with 401 `FST_TOKEN_COOKIE_REAUTH` when the login (`auth_time`) is older than this ("confirm your
   * password to continue"); the cookie is kept and the session goes on for other routes.
   */
  maxAuthAge?: Duration
}

/** What a login may override ("remember me"). */
export interface LoginOptions {
  policy?: Policy
  maxAge?: Duration
  absoluteMaxAge?: Duration
  sessionCookie?: boolean
}

export type IsRevoked = (payload: TokenPayload, request: FastifyRequest) => boolean | Promise<boolean>

export interface TokenCookieOptions extends LoginOptions {
  secret: Secret
  /** Fraction of `maxAge` that must have passed before a sliding token is re-issued. */
  renewAfter?: number
  cookieName?: string
  cookie?: CookieAttributes
  sign?: SignOptions
  verify?: VerifyOptions
  /** Also accept `Authorization: Bearer <token>`; the header wins over the cookie. */
  bearer?: boolean
  isRevoked?: IsRevoked
  /**
   * The cross-site request guard (on by default): unsafe requests carrying the cookie must come from
   * this origin, or from one of `trustedOrigins` (`'https://app.example.com'`). `false` turns it off.
   */
  csrf?: boolean | { trustedOrigins?: string[] }
  /**
   * A revocation store, so that logout and `revokeUser` hold on every instance; `true` is
   * `memoryStore({ max: 100_000 })`. Without one, tokens are stateless.
   */
  store?: RevocationStore | boolean
  /** How long a store call may take before the store counts as down. Default `'100ms'`. */
  storeTimeout?: Duration
  /** With the store down: treat tokens as not revoked (`true`), or fail closed with a 503 (`false`, default). */
  failOpen?: boolean
  /**
   * Also set a readable `<cookieName>.exp` cookie, `e=<expiresAt>&a=<absoluteExpiresAt>`,
   * so scripts can warn before the session ends. The server never reads it.
   */
  expiryHint?: boolean
  /**
   * How many verified tokens each instance remembers (default 32768), so that a token's signature and JSON are
   * checked once, not on every request. Tokens beyond the last this many verified are verified again when they
   * come back. About 850 bytes each (a 350-byte token), so some 27 MB when full: an instance that must stay
   * smaller, or that serves more sessions than that in turn, sets its own bound.
   */
  cacheSize?: number
  /**
   * `true`: tokens are encrypted (JWE, `dir` and A256GCM, a key derived from each secret by HKDF-SHA256), so nobody
   * holding the cookie or the Bearer token can read its claims. HMAC secrets only. Default `false`: signed tokens (JWS).
   */
  encrypt?: boolean
  /**
   * How many cookies one token may be split over (1 to 10, default 1). A token whose cookie passes 4096 bytes is
   * written as `<cookieName>.0`, `<cookieName>.1`, … (see docs/chunked-cookies.md); past this many,
   * `FST_TOKEN_COOKIE_TOO_LARGE`.
   */
  maxChunks?: number
}

/** When the current token expires, in seconds since epoch. */
export interface TokenExpiry {
  /** The token's `exp`: for a sliding session, the end of the idle window. */
  expiresAt: number
  /** When the login ends whatever happens: the absolute cap for sliding sessions, else `exp`. */
  absoluteExpiresAt: number
}

export interface RevokeOptions {
  /** How long the revocation is kept; default the longest lifetime the app's options allow. */
  ttl?: Duration
}

/** `app.tokenCookie`: revocations, with a store. */
export interface TokenCookieApi {
  /** Revokes one session everywhere: its tokens, copies and renewals are `FST_TOKEN_COOKIE_REVOKED`. */
  revokeSession(sid: string, options?: RevokeOptions): Promise<void>
  /** Revokes every session of user `sub` that started at or before this second ("log out everywhere"). */
  revokeUser(sub: string, options?: RevokeOptions): Promise<void>
  /**
   * The live sessions of user `sub` (not revoked, not ended), newest first: "where you're signed in". Rejects with
   * `FST_TOKEN_COOKIE_OPTIONS` without a store, or with a store of the app's own that does not list sessions.
   */
  listSessions(sub: string): Promise<SessionInfo[]>
}

/** Per-route settings, under `config: { tokenCookie: { … } }`. */
export interface TokenCookieRouteConfig {
  /** `false`: requests to this route never renew the session (polling endpoints). */
  renew?: boolean
  /** `false`: the cross-site request guard lets this route's requests through (webhooks). */
  csrf?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Resolves to the verified payload and sets `request.user`; with `optional: true`, resolves to `null`
     * where it would otherwise reject with a 401. `T` defaults to the app's declared `user` (`SessionUser`).
     */
    verifyToken<T extends object = SessionUser>(options: VerifyTokenOptions & { optional: true }): Promise<(T & TokenClaims) | null>
    /** Resolves to the verified payload and sets `request.user`; rejects with a 401 otherwise. */
    verifyToken<T extends object = SessionUser>(options?: VerifyTokenOptions & { optional?: false }): Promise<T & TokenClaims>
    /** With `optional` known only at run time: `null` is possible. */
    verifyToken<T extends object = SessionUser>(options?: VerifyTokenOptions): Promise<(T & TokenClaims) | null>
    /** Expiry of the verified token (the renewed or newly set one, when this request renews or logs in), or `null`. */
    tokenExpiry(): TokenExpiry | null
  }
  interface FastifyReply {
    /** Signs `payload`, sets the token cookie and resolves to the token. */
    setTokenCookie: SetTokenCookie
    /**
     * Re-issues the request's verified token with the app's claims replaced by `claims`: same session (`sid`,
     * `auth_time`, lifetime policy), new `jti` and `iat`. A sliding token's `exp` moves as a renewal would; a
     * `session` or `persistent` one keeps its `exp`. Rejects with the request's 401 without a verified token.
     */
    updateTokenCookie: UpdateTokenCookie
    /**
     * Expires the token cookie and cancels a renewal queued for this request. With a store, also revokes the
     * session; the promise settles once the store has it (and rejects with a 503 when the store is down).
     */
    clearTokenCookie(): Promise<void>
  }
  interface FastifyInstance {
    tokenCookie: TokenCookieApi
  }
  interface FastifyContextConfig {
    tokenCookie?: TokenCookieRouteConfig
  }
}
