// The onRequest hook, the onSend renewal writer and the decorators: one verification per request, shared by all.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { CookieWriter } from './cookie.js'
import { TokenCrossSiteError, TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import { normaliseOrigin, resolveLifetime, type ResolvedOptions } from './options.js'
import {
  absoluteExpiresAt, checkTimes, lifetimeClaim, lifetimeOf, loginClaims, renewal, toLifetimeClaim, type Lifetime, type TimeClaims
} from './policy.js'
import { findToken, type TokenSource } from './request-token.js'
import type { Revocations, Verdict } from './revocation.js'
import { hasPrototypeKey, isPlainObject, randomId, type TokenCodec } from './token.js'
import type { LoginOptions, TokenExpiry, TokenPayload } from '../types/index.js'

export const kSession = Symbol('fastify-token-cookie.session')

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS'])

interface Verified { verified: TokenPayload, lifetime: Lifetime }

/** What verifying a request's token came to. */
type Outcome =
  | Verified
  | {
    error: unknown
    /** `isRevoked` failed: so does the request. Otherwise the request goes on unauthenticated. */
    fatal: boolean
    /** A bad token's cookie is cleared; one whose revocation nobody could check (store down) is kept. */
    clearCookie: boolean
    /** The good token whose revocation could not be checked: logout still tries to revoke it. */
    unchecked?: Verified
  }
  | { missing: true }

interface Session {
  source: TokenSource | undefined
  outcome: Outcome | Promise<Outcome>
  /** The renewed token's claims, signed in onSend only if the response is a success. */
  renewal: { claims: TimeClaims & Record<string, unknown>, lifetime: Lifetime } | undefined
  /** Once this request sets or clears the cookie: the expiry of what the client will hold. */
  issued?: TokenExpiry | null
}

type RequestWithSession = FastifyRequest & { [kSession]: Session | null, user?: unknown }

const noToken: Session = Object.freeze({ source: undefined, outcome: Object.freeze({ missing: true }), renewal: undefined })

export interface SessionHandlers {
  onRequest: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
  onSend: (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => void
  verifyToken: (this: FastifyRequest) => Promise<TokenPayload>
  setTokenCookie: (this: FastifyReply, payload: object, login?: LoginOptions) => Promise<string>
  clearTokenCookie: (this: FastifyReply) => Promise<void>
  tokenExpiry: (this: FastifyRequest) => TokenExpiry | null
}

function rejected (error: unknown): Outcome {
  return { error, fatal: false, clearCookie: true }
}

function decide (verified: Verified, verdict: Verdict): Outcome {
  if ('failed' in verdict) return { error: verdict.failed, fatal: true, clearCookie: false }
  if ('unavailable' in verdict) return { error: verdict.unavailable, fatal: false, clearCookie: false, unchecked: verified }
  return verdict.revoked ? rejected(new TokenRevokedError()) : verified
}

function expiryOf (claims: TimeClaims, lifetime: Lifetime): TokenExpiry {
  return { expiresAt: claims.exp, absoluteExpiresAt: absoluteExpiresAt(lifetime, claims) }
}

export function createSessionHandlers (options: ResolvedOptions, codec: TokenCodec, cookie: CookieWriter, revocations: Revocations): SessionHandlers {
  const { cookieName, bearer, renewAfter, clockTolerance, csrf, store } = options

  /**
   * The cross-site request guard, as Go's http.CrossOriginProtection decides, for requests that carry the cookie:
   * safe methods pass; then a trusted Origin; then Sec-Fetch-Site; then, without it, Origin against this origin.
   */
  function crossSiteAllowed (request: FastifyRequest): boolean {
    if (csrf === false || safeMethods.has(request.method) || request.routeOptions.config?.tokenCookie?.csrf === false) return true
    const origin = request.headers.origin
    if (origin !== undefined && csrf.trustedOrigins.has(normaliseOrigin(origin) ?? '')) return true
    const site = request.headers['sec-fetch-site']
    if (site !== undefined) return site === 'same-origin' || site === 'none'
    // Not a browser that sends fetch metadata: an Origin, if any, must be our own.
    return origin === undefined || normaliseOrigin(origin) === normaliseOrigin(`${request.protocol}://${request.host}`)
  }

  /** Finds and verifies the request's token, once: the hook and `verifyToken()` share the result. */
  function sessionOf (request: FastifyRequest, found = findToken(request.headers, cookieName, bearer)): Session {
    const existing = (request as RequestWithSession)[kSession]
    if (existing) return existing
    let session: Session = noToken
    if (found !== undefined) {
      const outcome = 'token' in found
        ? verify(found.token, request)
        : rejected(new TokenInvalidError(found.problem === 'duplicate' ? 'the cookie was sent more than once' : 'malformed Authorization header'))
      session = { source: found.source, outcome, renewal: undefined }
    }
    (request as RequestWithSession)[kSession] = session
    return session
  }

  function verify (token: string, request: FastifyRequest): Outcome | Promise<Outcome> {
    let payload: Record<string, unknown>
    try {
      payload = codec.verify(token)
    } catch (error) {
      return rejected(error)
    }
    const lifetime = lifetimeOf(payload[lifetimeClaim], options.lifetime)
    if (lifetime === undefined) return rejected(new TokenInvalidError(`malformed ${lifetimeClaim} claim`))
    const times = checkTimes(payload, lifetime, Date.now() / 1000, clockTolerance)
    if (times === 'invalid') return rejected(new TokenInvalidError('missing, non-numeric or future iat, exp or auth_time'))
    if (times === 'expired') return rejected(new TokenExpiredError())
    // With a store, logout revokes by session id: a token without one could not be logged out.
    if (store !== undefined && (typeof payload.sid !== 'string' || payload.sid === '')) return rejected(new TokenInvalidError('no sid claim'))
    const verified: Verified = { verified: payload as TokenPayload, lifetime }
    if (!revocations.active) return verified
    return revocations.verdict(verified.verified, request).then((verdict) => decide(verified, verdict))
  }

  /** Revokes the session of this request's token, if it has one, for the rest of its absolute lifetime. */
  async function revokeCurrent (session: Session): Promise<void> {
    if (store === undefined) return
    const outcome = await session.outcome
    const token = 'verified' in outcome ? outcome : 'unchecked' in outcome ? outcome.unchecked : undefined
    if (token === undefined) return
    const { verified: claims, lifetime } = token
    const ttl = Math.max(1, Math.ceil(absoluteExpiresAt(lifetime, claims) - Date.now() / 1000))
    // With a store, every verified token has a sid (checked in verify).
    await revocations.revokeSession(claims.sid as string, ttl)
  }

  /** Applies the lifetime policy to a settled outcome; returns the error the request fails with, if any. */
  function applyPolicy (request: FastifyRequest, reply: FastifyReply, session: Session, outcome: Outcome): unknown {
    if ('error' in outcome) {
      if (outcome.fatal) return outcome.error
      // A bad cookie goes: the browser stops sending it. A bad header is the client's to drop.
      if (outcome.clearCookie && session.source === 'cookie') cookie.clear(reply)
      return undefined
    }
    // A header token is never renewed through a cookie.
    if (!('verified' in outcome) || session.source !== 'cookie') return undefined
    const renewed = renewal(outcome.verified, outcome.lifetime, renewAfter, Date.now() / 1000)
    // Some routes (polling) must not extend a session. (routeOptions is built anew on each read: only when due.)
    if (renewed === undefined || request.routeOptions.config?.tokenCookie?.renew === false) return undefined
    // Claims copied into a fresh object; the verified payload never has prototype keys.
    session.renewal = { claims: { ...outcome.verified, ...renewed }, lifetime: outcome.lifetime }
    return undefined
  }

  /** Records that this request set (or, with `null`, cleared) the cookie: it wins over a queued renewal. */
  function issued (request: FastifyRequest, expiry: TokenExpiry | null): void {
    const current = (request as RequestWithSession)[kSession]
    const session = current === null || current === noToken ? { ...noToken } : current
    session.renewal = undefined
    session.issued = expiry
    ;(request as RequestWithSession)[kSession] = session
  }

  return {
    onRequest (request, reply, done) {
      const existing = (request as RequestWithSession)[kSession]
      const found = existing ? undefined : findToken(request.headers, cookieName, bearer)
      // Before any verification: a forged request costs no crypto, and is neither logged out nor renewed.
      if ((existing?.source ?? found?.source) === 'cookie' && !crossSiteAllowed(request)) {
        done(new TokenCrossSiteError())
        return
      }
      const session = existing ?? sessionOf(request, found)
      const outcome = session.outcome
      if (outcome instanceof Promise) {
        outcome.then((settled) => {
          session.outcome = settled
          done(applyPolicy(request, reply, session, settled) as Error | undefined)
        }, done)
        return
      }
      done(applyPolicy(request, reply, session, outcome) as Error | undefined)
    },

    onSend (request, reply, payload, done) {
      const session = (request as RequestWithSession)[kSession]
      const pending = session?.renewal
      if (pending !== undefined && reply.statusCode < 400) {
        session!.renewal = undefined
        try {
          // Same session (sid), new token id.
          cookie.set(reply, codec.sign({ ...pending.claims, jti: randomId() }), pending.lifetime, pending.claims)
        } catch (error) {
          // Only a cookie over 4096 bytes gets here; the current cookie stays valid until its exp.
          request.log.warn({ err: error }, 'fastify-token-cookie: renewal not sent')
        }
      }
      done(null, payload)
    },

    async verifyToken (this: FastifyRequest) {
      const outcome = await sessionOf(this).outcome
      if ('verified' in outcome) {
        (this as RequestWithSession).user = outcome.verified
        return outcome.verified
      }
      if ('error' in outcome) throw outcome.error
      throw new TokenMissingError()
    },

    async setTokenCookie (this: FastifyReply, payload, login) {
      if (!isPlainObject(payload)) throw new TypeError('setTokenCookie: the payload must be a plain object')
      if (hasPrototypeKey(payload)) throw new TypeError('setTokenCookie: the payload must not have __proto__, constructor or prototype keys')
      if (login !== undefined && (login === null || typeof login !== 'object')) throw new TypeError('setTokenCookie: options must be an object')
      const lifetime = login === undefined ? options.lifetime : resolveLifetime(login, options.lifetime)
      const times = loginClaims(lifetime, Date.now() / 1000)
      // The plugin's claims last: a payload cannot set its own times, lifetime, session id or token id.
      const token = codec.sign({ ...payload, [lifetimeClaim]: toLifetimeClaim(lifetime), ...times, sid: randomId(), jti: randomId() })
      cookie.set(this, token, lifetime, times)
      issued(this.request, expiryOf(times, lifetime))
      return token
    },

    clearTokenCookie (this: FastifyReply) {
      cookie.clear(this)
      const session = sessionOf(this.request)
      issued(this.request, null)
      const revoked = revokeCurrent(session)
      // Awaiting is the caller's choice: a rejection it ignores must not become an unhandled one.
      revoked.catch(() => {})
      return revoked
    },

    tokenExpiry (this: FastifyRequest) {
      const session = sessionOf(this)
      if (session.issued !== undefined) return session.issued
      if (session.renewal !== undefined) return expiryOf(session.renewal.claims, session.renewal.lifetime)
      const outcome = session.outcome
      return 'verified' in outcome ? expiryOf(outcome.verified, outcome.lifetime) : null
    }
  }
}
