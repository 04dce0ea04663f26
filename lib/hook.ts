// The onRequest hook, the onSend cookie writer and the decorators: one verification per request, shared by all.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { CookieWriter } from './cookie.js'
import { TokenCrossSiteError, TokenExpiredError, TokenInvalidError, TokenMissingError, TokenRevokedError } from './errors.js'
import { normaliseOrigin, resolveLifetime, type ResolvedOptions } from './options.js'
import {
  absoluteExpiresAt, checkTimes, lifetimeClaim, lifetimeOf, loginClaims, renewal, toLifetimeClaim, type Lifetime, type TimeClaims
} from './policy.js'
import { findToken, type TokenSource } from './request-token.js'
import type { Revocations, Verdict } from './revocation.js'
import { copyJson, hasPrototypeKey, isInvalidToken, isPlainObject, randomId, type TokenCodec, type VerifiedPayload } from './token.js'
import type { LoginOptions, TokenExpiry, TokenPayload } from '../types/index.js'

export const kSession = Symbol('fastify-token-cookie.session')

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS'])

/** A verified token: its claims (shared by every request that sends it, so never handed out) and lifetime. */
export interface AdmittedToken {
  claims: VerifiedPayload & TokenPayload
  lifetime: Lifetime
}

/**
 * What the codec remembers of a verified token. It is also the outcome of every request that sends the token
 * while its time checks pass: one object for them all, none made per request.
 */
export interface Verified { verified: AdmittedToken }

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

/**
 * What this request does to the cookie, written once, in onSend: the last of a login, a logout, the clearing of a
 * bad cookie and a renewal wins. A renewal is signed there, and only if the response is a success.
 */
type CookieChange =
  | { set: string[], expiry: TokenExpiry }
  | { clear: true }
  | { renew: TimeClaims & Record<string, unknown>, lifetime: Lifetime }

interface Session {
  source: TokenSource | undefined
  outcome: Outcome | Promise<Outcome>
  cookie: CookieChange | undefined
  /** Set once onSend has run: a later change is written at once. */
  sent: boolean
  /** This request's own copy of the verified payload (`request.user`), made on first use. */
  payload: TokenPayload | undefined
}

type RequestWithSession = FastifyRequest & { [kSession]: Session | null, user?: unknown }

// Shared by the requests without a token (no allocation for anonymous traffic), before and after onSend.
const noToken: Session = Object.freeze({ source: undefined, outcome: Object.freeze({ missing: true }), cookie: undefined, sent: false, payload: undefined })
const noTokenSent: Session = Object.freeze({ ...noToken, sent: true })
const isShared = (session: Session): boolean => session === noToken || session === noTokenSent

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

/** This request's own copy of the verified payload: no request can change what another one sees. */
function payloadOf (session: Session, admitted: AdmittedToken): TokenPayload {
  session.payload ??= copyJson(admitted.claims) as TokenPayload
  return session.payload
}

/**
 * Adds Set-Cookie lines to the reply, one string at a time: Fastify (and @fastify/cookie after it) may push into an
 * array it was given, and the clearing lines are shared by every response.
 */
function setCookieLines (reply: FastifyReply, lines: readonly string[]): void {
  for (const line of lines) reply.header('set-cookie', line)
}

function expiryOf (claims: TimeClaims, lifetime: Lifetime): TokenExpiry {
  return { expiresAt: claims.exp, absoluteExpiresAt: absoluteExpiresAt(lifetime, claims) }
}

/** What a verified payload means to the plugin, worked out once per token: its lifetime, from its `tc` claim. */
export function admitterFor (appLifetime: Lifetime): (payload: VerifiedPayload) => Verified {
  return (payload) => {
    const lifetime = lifetimeOf(payload[lifetimeClaim], appLifetime)
    if (lifetime === undefined) throw new TokenInvalidError(`malformed ${lifetimeClaim} claim`)
    return { verified: { claims: payload as AdmittedToken['claims'], lifetime } }
  }
}

export function createSessionHandlers (
  options: ResolvedOptions, codec: TokenCodec<Verified>, cookie: CookieWriter, revocations: Revocations
): SessionHandlers {
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
      session = { source: found.source, outcome: noToken.outcome, cookie: undefined, sent: false, payload: undefined }
      session.outcome = 'token' in found
        ? verify(found.token, request, session)
        : rejected(new TokenInvalidError(found.problem === 'duplicate' ? 'the cookie was sent more than once' : 'malformed Authorization header'))
    }
    (request as RequestWithSession)[kSession] = session
    return session
  }

  function verify (token: string, request: FastifyRequest, session: Session): Outcome | Promise<Outcome> {
    const verified = codec.verify(token)
    if (isInvalidToken(verified)) return rejected(verified)
    const { claims, lifetime } = verified.verified
    const times = checkTimes(claims, lifetime, Date.now() / 1000, clockTolerance)
    if (times === 'invalid') return rejected(new TokenInvalidError('missing, non-numeric or future iat, exp or auth_time'))
    if (times === 'expired') return rejected(new TokenExpiredError())
    // With a store, logout revokes by session id: a token without one could not be logged out.
    if (store !== undefined && (typeof claims.sid !== 'string' || claims.sid === '')) return rejected(new TokenInvalidError('no sid claim'))
    if (!revocations.active) return verified
    return revocations.verdict(claims, () => payloadOf(session, verified.verified), request).then((verdict) => decide(verified, verdict))
  }

  /** Revokes the session of this request's token, if it has one, for the rest of its absolute lifetime. */
  async function revokeCurrent (session: Session): Promise<void> {
    if (store === undefined) return
    const outcome = await session.outcome
    const token = 'verified' in outcome ? outcome : 'unchecked' in outcome ? outcome.unchecked : undefined
    if (token === undefined) return
    const { claims, lifetime } = token.verified
    const ttl = Math.max(1, Math.ceil(absoluteExpiresAt(lifetime, claims) - Date.now() / 1000))
    // With a store, every verified token has a sid (checked in verify).
    await revocations.revokeSession(claims.sid as string, ttl)
  }

  /** Applies the lifetime policy to a settled outcome; returns the error the request fails with, if any. */
  function applyPolicy (request: FastifyRequest, session: Session, outcome: Outcome): unknown {
    if ('error' in outcome) {
      if (outcome.fatal) return outcome.error
      // A bad cookie goes: the browser stops sending it. A bad header is the client's to drop.
      if (outcome.clearCookie && session.source === 'cookie') session.cookie ??= { clear: true }
      return undefined
    }
    // A header token is never renewed through a cookie.
    if (!('verified' in outcome) || session.source !== 'cookie') return undefined
    const { claims, lifetime } = outcome.verified
    const renewed = renewal(claims, lifetime, renewAfter, Date.now() / 1000)
    // Some routes (polling) must not extend a session. (routeOptions is built anew on each read: only when due.)
    if (renewed === undefined || request.routeOptions.config?.tokenCookie?.renew === false) return undefined
    // A fresh object of the verified claims (which never have prototype keys), only ever serialized.
    session.cookie ??= { renew: { ...claims, ...renewed }, lifetime }
    return undefined
  }

  /** The session to record a cookie change in: the request's own (not the shared one of requests without a token). */
  function ownSession (request: FastifyRequest): Session {
    const current = (request as RequestWithSession)[kSession]
    if (current !== null && !isShared(current)) return current
    const session = { ...(current ?? noToken) }
    ;(request as RequestWithSession)[kSession] = session
    return session
  }

  /** Records this request's last word on the cookie; after onSend (a hook that runs later changed it), writes it at once. */
  function change (reply: FastifyReply, next: CookieChange): void {
    const session = ownSession(reply.request)
    session.cookie = next
    if (session.sent) write(reply, session)
  }

  /** Writes the cookie change of `session`, if any; a renewal only with a success response. */
  function write (reply: FastifyReply, session: Session): void {
    const pending = session.cookie
    if (pending === undefined) return
    if ('set' in pending) {
      setCookieLines(reply, pending.set)
    } else if ('clear' in pending) {
      setCookieLines(reply, cookie.clear(reply.request))
    } else if (!renew(reply, pending)) {
      // Not sent: tokenExpiry() in later hooks reports the token the client still holds.
      session.cookie = undefined
    }
  }

  /** Signs and writes a renewal, for a success response; whether it went out. */
  function renew (reply: FastifyReply, { renew: claims, lifetime }: Extract<CookieChange, { renew: unknown }>): boolean {
    if (reply.statusCode >= 400) return false
    try {
      // Same session (sid), new token id.
      setCookieLines(reply, cookie.set(reply.request, codec.sign({ ...claims, jti: randomId() }), lifetime, claims))
      return true
    } catch (error) {
      // Only a cookie over 4096 bytes gets here; the current cookie stays valid until its exp.
      reply.request.log.warn({ err: error }, 'fastify-token-cookie: renewal not sent')
      return false
    }
  }

  /** What `verifyToken()` settles with: the request's own copy of the verified payload, or the error. */
  function authenticate (request: FastifyRequest, session: Session, outcome: Outcome): Promise<TokenPayload> {
    if ('verified' in outcome) {
      const payload = payloadOf(session, outcome.verified)
      ;(request as RequestWithSession).user = payload
      return Promise.resolve(payload)
    }
    return Promise.reject('error' in outcome ? outcome.error : new TokenMissingError())
  }

  return {
    onRequest (request, reply, done) {
      const existing = (request as RequestWithSession)[kSession]
      const found = existing ? undefined : findToken(request.headers, cookieName, bearer)
      // Anonymous traffic: nothing to verify, apply or remember (verifyToken() works it out if asked).
      if (existing === null && found === undefined) {
        done()
        return
      }
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
          done(applyPolicy(request, session, settled) as Error | undefined)
        }, done)
        return
      }
      done(applyPolicy(request, session, outcome) as Error | undefined)
    },

    onSend (request, reply, payload, done) {
      const session = (request as RequestWithSession)[kSession]
      if (session === null || isShared(session)) {
        (request as RequestWithSession)[kSession] = noTokenSent
      } else {
        write(reply, session)
        session.sent = true
      }
      done(null, payload)
    },

    verifyToken (this: FastifyRequest) {
      const session = sessionOf(this)
      const outcome = session.outcome
      // Settled by the onRequest hook in all but the earliest hooks: no await, no extra microtask.
      if (outcome instanceof Promise) return outcome.then((settled) => authenticate(this, session, settled))
      return authenticate(this, session, outcome)
    },

    async setTokenCookie (this: FastifyReply, payload, login) {
      if (!isPlainObject(payload)) throw new TypeError('setTokenCookie: the payload must be a plain object')
      if (hasPrototypeKey(payload)) throw new TypeError('setTokenCookie: the payload must not have __proto__, constructor or prototype keys')
      if (login !== undefined && (login === null || typeof login !== 'object')) throw new TypeError('setTokenCookie: options must be an object')
      const lifetime = login === undefined ? options.lifetime : resolveLifetime(login, options.lifetime)
      const times = loginClaims(lifetime, Date.now() / 1000)
      // The plugin's claims last: a payload cannot set its own times, lifetime, session id or token id.
      const token = codec.sign({ ...payload, [lifetimeClaim]: toLifetimeClaim(lifetime), ...times, sid: randomId(), jti: randomId() })
      change(this, { set: cookie.set(this.request, token, lifetime, times), expiry: expiryOf(times, lifetime) })
      return token
    },

    clearTokenCookie (this: FastifyReply) {
      const session = sessionOf(this.request)
      change(this, { clear: true })
      const revoked = revokeCurrent(session)
      // Awaiting is the caller's choice: a rejection it ignores must not become an unhandled one.
      revoked.catch(() => {})
      return revoked
    },

    tokenExpiry (this: FastifyRequest) {
      const session = sessionOf(this)
      const pending = session.cookie
      if (pending !== undefined && 'set' in pending) return pending.expiry
      if (pending !== undefined && 'clear' in pending) return null
      if (pending !== undefined && 'renew' in pending) return expiryOf(pending.renew, pending.lifetime)
      const outcome = session.outcome
      return 'verified' in outcome ? expiryOf(outcome.verified.claims, outcome.verified.lifetime) : null
    }
  }
}
