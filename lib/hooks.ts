// The life of a request: the onRequest hook verifies its token once and applies the lifetime policy, the
// decorators read and change the request's state, and onSend writes the one cookie change it came to.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { privateCacheControl, sharedCacheable, sharedCacheHeaders } from './cache-control.js'
import type { CookieWriter } from './cookie.js'
import { crossSiteAllowed } from './csrf.js'
import { TokenCrossSiteError, TokenExpiredError, TokenInvalidError, TokenRevokedError } from './errors.js'
import { checkNames, loginOptions } from './option-names.js'
import { resolveLifetime, resolveVerifyCheck, plainCheck, type ResolvedOptions } from './options.js'
import {
  absoluteExpiresAt, checkTimes, expiresAt, lifetimeClaim, loginClaims, renewal, toLifetimeClaim, type AdmittedToken, type Lifetime, type TimeClaims,
  type Verified
} from './policy.js'
import {
  authenticate, expiryOf, genuineTokens, logout, missing, payloadOf, refusal, rejectionOf, sendHookRan, stateOf, tokenExpiryOf, settled,
  type CookieChange, type Outcome, type RequestState
} from './request-state.js'
import { findToken, noCookies, readCookie, type CarriedCookies, type FoundToken } from './request-token.js'
import type { Revocations, Verdict } from './revocation.js'
import { hasPrototypeKey, isInvalidToken, isPlainObject, randomId, type InvalidToken, type TokenCodec } from './token.js'
import type { LoginOptions, TokenExpiry, TokenPayload, VerifyTokenOptions } from '../types/index.js'

export interface RequestLife {
  onRequest: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
  onSend: (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => void
  verifyToken: (this: FastifyRequest, options?: VerifyTokenOptions) => Promise<TokenPayload | null>
  setTokenCookie: (this: FastifyReply, payload: object, login?: LoginOptions) => Promise<string>
  updateTokenCookie: (this: FastifyReply, claims: object) => Promise<string>
  clearTokenCookie: (this: FastifyReply) => Promise<void>
  tokenExpiry: (this: FastifyRequest) => TokenExpiry | null
}

/** What the request life works with, built once at registration. */
export interface RequestLifeDeps {
  options: ResolvedOptions
  codec: TokenCodec<Verified>
  cookie: CookieWriter
  revocations: Revocations
  /** Told of each login's lifetime: revocations made without a TTL must outlive the longest. */
  noteLogin: (lifetime: Lifetime) => void
}

const nowSeconds = (): number => Date.now() / 1000
const invalid = (reason: string): Outcome => ({ kind: 'invalid', error: new TokenInvalidError(reason) })

/** Why a token with a good signature is refused at `now`, if it is. */
function refusalOf (token: AdmittedToken, now: number, tolerance: number, sidRequired: boolean): Outcome | undefined {
  const { claims, lifetime } = token
  const times = checkTimes(claims, lifetime, now, tolerance)
  if (times === 'invalid') return invalid('missing, non-numeric or future iat, exp or auth_time')
  if (times === 'expired') return { kind: 'expired', error: new TokenExpiredError(), token }
  // With a store, logout revokes by session id: a token without one could not be logged out.
  if (sidRequired && (typeof claims.sid !== 'string' || claims.sid === '')) return invalid('no sid claim')
  return undefined
}

function decide (verified: Verified, verdict: Verdict): Outcome {
  switch (verdict.kind) {
    case 'clear': return verified
    case 'revoked': return { kind: 'revoked', error: new TokenRevokedError() }
    case 'unavailable': return { kind: 'unchecked', error: verdict.error, token: verified.token }
    case 'failed': return { kind: 'failed', error: verdict.error }
  }
}

/** Applies the lifetime policy to a settled outcome; returns the error the request fails with, if any. */
function applyPolicy (request: FastifyRequest, state: RequestState, outcome: Outcome, renewAfter: number): Error | undefined {
  switch (outcome.kind) {
    case 'failed': return outcome.error
    case 'invalid':
    case 'expired':
    case 'revoked':
    case 'missing':
      // A bad cookie goes: the browser stops sending it. A bad header is the client's to drop (and no token, nothing).
      if (state.found?.source === 'cookie') state.change ??= refusal
      return undefined
    case 'verified':
      queueRenewal(request, state, outcome.token, renewAfter)
      return undefined
    case 'unchecked':
      return undefined
  }
}

/** Queues a sliding renewal when one is due: for a cookie (a header token is never renewed through one). */
function queueRenewal (request: FastifyRequest, state: RequestState, { claims, lifetime }: AdmittedToken, renewAfter: number): void {
  if (state.found?.source !== 'cookie') return
  const renewed = renewal(claims, lifetime, renewAfter, nowSeconds())
  // Some routes (polling) must not extend a session. (routeOptions is built anew on each read: only when due.)
  if (renewed === undefined || request.routeOptions.config?.tokenCookie?.renew === false) return
  // A fresh object of the verified claims (which never have prototype keys), only ever serialized.
  state.change ??= { kind: 'renew', claims: { ...claims, ...renewed }, lifetime }
}

/** The app's claims for a new token: a plain object without prototype keys (a programming error otherwise). */
function checkPayload (method: string, payload: object): void {
  if (!isPlainObject(payload)) throw new TypeError(`${method}: the payload must be a plain object`)
  if (hasPrototypeKey(payload)) throw new TypeError(`${method}: the payload must not have __proto__, constructor or prototype keys`)
}

/** The claims a token of a session carries that are the plugin's: an update keeps them, whatever the app passes. */
const ownClaims = new Set(['iat', 'exp', 'auth_time', 'sid', 'jti', lifetimeClaim])

function appClaimsOf (claims: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !ownClaims.has(name)))
}

/** The login request's User-Agent, as a session list shows it. */
function userAgentOf (request: FastifyRequest): string | null {
  const agent = request.headers['user-agent']
  return typeof agent === 'string' && agent !== '' ? agent.slice(0, 256) : null
}

function checkLogin (payload: object, login: LoginOptions | undefined): void {
  checkPayload('setTokenCookie', payload)
  if (login === undefined) return
  if (login === null || typeof login !== 'object') throw new TypeError('setTokenCookie: options must be an object')
  checkNames('setTokenCookie options', login, loginOptions)
}

/** The request's state on first use: its token found and verified, once for the hook and every decorator. */
function open (life: RequestLifeDeps, request: FastifyRequest, found = tokenOf(life.options, request)): RequestState {
  const state: RequestState = { found, outcome: missing, change: undefined, payload: undefined }
  if (found !== undefined) state.outcome = outcomeOf(life, found, request, state)
  return state
}

/** The token the request carries, by the app's options. */
function tokenOf ({ cookieName, bearer, maxChunks }: ResolvedOptions, request: FastifyRequest): FoundToken | undefined {
  return findToken(request.headers, cookieName, bearer, maxChunks)
}

/** The token cookies the request carried: what its response replaces or clears. */
function carriedBy (life: RequestLifeDeps, request: FastifyRequest, state: RequestState): CarriedCookies {
  const { found } = state
  if (found === undefined) return noCookies
  if (found.source === 'cookie') return found.carried
  // A Bearer header decided, and the cookie was left unread: only chunks need looking for (`<cookieName>` is always cleared).
  const { cookieName, maxChunks } = life.options
  const cookie = maxChunks === 1 ? undefined : readCookie(request.headers.cookie, cookieName, maxChunks)
  return cookie === undefined ? noCookies : cookie.carried
}

function stateFor (life: RequestLifeDeps, request: FastifyRequest): RequestState {
  return stateOf(request) ?? stateOf(request, open(life, request))
}

function outcomeOf (life: RequestLifeDeps, found: FoundToken, request: FastifyRequest, state: RequestState): Outcome | Promise<Outcome> {
  switch (found.kind) {
    case 'duplicate': return invalid('the cookie was sent more than once')
    case 'malformed': return invalid(found.reason)
    case 'token': break
  }
  const verified = life.codec.verify(found.token)
  // Pending only on an encrypted token's first sight: it is decrypted once, then found in the codec's cache.
  if (verified instanceof Promise) return verified.then((verified) => outcomeOfVerified(life, verified, request, state))
  return outcomeOfVerified(life, verified, request, state)
}

/** What a token the codec verified (or refused) comes to: its time rules, then revocation. */
function outcomeOfVerified (life: RequestLifeDeps, verified: Verified | InvalidToken, request: FastifyRequest, state: RequestState): Outcome | Promise<Outcome> {
  const { options, revocations } = life
  if (isInvalidToken(verified)) return { kind: 'invalid', error: verified }
  const refusal = refusalOf(verified.token, nowSeconds(), options.clockTolerance, options.store !== undefined)
  if (refusal !== undefined) return refusal
  if (!revocations.active) return verified
  const verdict = revocations.verdict(verified.token.claims, () => payloadOf(state, verified.token), request)
  return verdict instanceof Promise ? verdict.then((verdict) => decide(verified, verdict)) : decide(verified, verdict)
}

function onRequest (life: RequestLifeDeps, request: FastifyRequest, done: HookHandlerDoneFunction): void {
  const { csrf, renewAfter } = life.options
  const existing = stateOf(request)
  const found = existing === undefined ? tokenOf(life.options, request) : existing.found
  // Anonymous traffic: nothing to verify, apply or remember (verifyToken() works it out if asked).
  if (found === undefined) return done()
  // Before any verification: a forged request costs no crypto, and is neither logged out nor renewed.
  if (found.source === 'cookie' && !crossSiteAllowed(csrf, request) && request.routeOptions.config?.tokenCookie?.csrf !== false) {
    return done(new TokenCrossSiteError())
  }
  const state = existing ?? stateOf(request, open(life, request, found))
  // Settled at once unless a revocation check is on its way: then no closure, no promise.
  const { outcome } = state
  if (!(outcome instanceof Promise)) return done(applyPolicy(request, state, outcome, renewAfter))
  settled(state).then((outcome) => done(applyPolicy(request, state, outcome, renewAfter)), done)
}

/** Records this request's last word on the cookie; after onSend (a hook that runs later changed it), writes it at once. */
function change (life: RequestLifeDeps, reply: FastifyReply, next: CookieChange): void {
  const state = stateFor(life, reply.request)
  state.change = next
  if (sendHookRan(reply)) write(life, reply, state)
}

/**
 * Writes the state's cookie change, if any, and keeps the response out of shared caches. Pending only while an
 * encrypted renewal is being encrypted.
 */
function write (life: RequestLifeDeps, reply: FastifyReply, state: RequestState): Promise<void> | undefined {
  const pending = state.change
  if (pending === undefined) return undefined
  const lines = linesFor(life, reply, pending)
  if (lines instanceof Promise) return lines.then((lines) => writeLines(reply, state, pending, lines))
  writeLines(reply, state, pending, lines)
  return undefined
}

function writeLines (reply: FastifyReply, state: RequestState, pending: CookieChange, lines: readonly string[] | undefined): void {
  if (lines === undefined) {
    // Not sent: it waits for another response, and tokenExpiry() in later hooks reports the token the client holds.
    state.change = undefined
    return
  }
  for (const line of lines) reply.header('set-cookie', line)
  reply.header('cache-control', privateCacheControl(reply.getHeader('cache-control')))
  // A CDN's own caching header would win over `private`: a response that sets the cookie goes without it. (A renewal
  // or a refusal's clearing is written only where no such header keeps the response: nothing to remove.)
  if (pending.kind === 'set' || (pending.kind === 'clear' && pending.by === 'logout')) {
    for (const name of sharedCacheHeaders) if (reply.hasHeader(name)) reply.removeHeader(name)
  }
}

type Lines = readonly string[] | undefined

/**
 * The Set-Cookie lines of a change. A login, an update and a logout always go; a renewal only with a success, and
 * neither it nor the clearing of a refused cookie with a response that shared caches may store.
 */
function linesFor (life: RequestLifeDeps, reply: FastifyReply, pending: CookieChange): Lines | Promise<Lines> {
  switch (pending.kind) {
    case 'set': return pending.lines
    case 'clear': return pending.by === 'refusal' && sharedCacheable(reply) ? undefined : clearingLines(life, reply.request, pending.by)
    case 'renew': return reply.statusCode >= 400 || sharedCacheable(reply) ? undefined : renewalLines(life, reply, pending)
  }
}

/** A refusal clears the token cookies the request carried; a logout `<cookieName>` too, whatever it carried. */
function clearingLines (life: RequestLifeDeps, request: FastifyRequest, by: 'logout' | 'refusal'): readonly string[] {
  const carried = carriedBy(life, request, stateFor(life, request))
  return life.cookie.clear(request, by === 'logout' && !carried.plain ? { plain: true, chunks: carried.chunks } : carried)
}

/** Signs (or encrypts) a renewal: same session (sid), new token id. */
function renewalLines (life: RequestLifeDeps, reply: FastifyReply, renewal: Extract<CookieChange, { kind: 'renew' }>): Lines | Promise<Lines> {
  try {
    const token = life.codec.sign({ ...renewal.claims, jti: randomId() })
    if (token instanceof Promise) return token.then((token) => renewalCookie(life, reply, token, renewal)).catch((error: unknown) => notRenewed(reply, error))
    return renewalCookie(life, reply, token, renewal)
  } catch (error) {
    return notRenewed(reply, error)
  }
}

function renewalCookie (life: RequestLifeDeps, reply: FastifyReply, token: string, { claims, lifetime }: Extract<CookieChange, { kind: 'renew' }>): Lines {
  const lines = life.cookie.set(reply.request, token, lifetime, claims, carriedBy(life, reply.request, stateFor(life, reply.request)))
  // Never rejects: a store that is down leaves the session's lastSeenAt where it was.
  if (life.options.store !== undefined) record(life, claims, lifetime, reply.request).catch(() => {})
  return lines
}

/** A token past `maxChunks` cookies of 4096 bytes (or, in theory, an encryption that failed): the current cookies stay valid until its exp. */
function notRenewed (reply: FastifyReply, error: unknown): undefined {
  reply.request.log.warn({ err: error }, 'fastify-token-cookie: renewal not sent')
  return undefined
}

/** Lists a login, or moves a listed session's lastSeenAt, where the store lists sessions. */
function record (life: RequestLifeDeps, claims: TimeClaims & Record<string, unknown>, lifetime: Lifetime, request: FastifyRequest): Promise<void> {
  const { sub, sid } = claims
  if (life.options.store === undefined || typeof sub !== 'string' || typeof sid !== 'string') return Promise.resolve()
  const session = { sid, authTime: claims.auth_time, lastSeenAt: claims.iat, expiresAt: absoluteExpiresAt(lifetime, claims), userAgent: userAgentOf(request) }
  return life.revocations.recordSession(sub, session)
}

function verifyToken (life: RequestLifeDeps, request: FastifyRequest, verifyOptions: VerifyTokenOptions | undefined): Promise<TokenPayload | null> {
  let check = plainCheck
  try {
    check = resolveVerifyCheck(verifyOptions)
  } catch (error) {
    return Promise.reject(error)
  }
  const state = stateFor(life, request)
  const { outcome } = state
  // Settled by the onRequest hook in all but the earliest hooks: no closure, no extra microtask.
  if (!(outcome instanceof Promise)) return authenticate(request, state, outcome, check)
  return settled(state).then((outcome) => authenticate(request, state, outcome, check))
}

async function setTokenCookie (life: RequestLifeDeps, reply: FastifyReply, payload: object, login: LoginOptions | undefined): Promise<string> {
  checkLogin(payload, login)
  const { options, codec, cookie } = life
  const lifetime = login === undefined ? options.lifetime : resolveLifetime(login, options.lifetime)
  const times = loginClaims(lifetime, nowSeconds())
  // The plugin's claims last: a payload cannot set its own times, lifetime, session id or token id.
  const claims = { ...payload, [lifetimeClaim]: toLifetimeClaim(lifetime), ...times, sid: randomId(), jti: randomId() }
  const token = await codec.sign(claims)
  life.noteLogin(lifetime)
  const carried = carriedBy(life, reply.request, stateFor(life, reply.request))
  change(life, reply, { kind: 'set', lines: cookie.set(reply.request, token, lifetime, times, carried), expiry: expiryOf(times, lifetime) })
  await record(life, claims, lifetime, reply.request)
  return token
}

async function updateTokenCookie (life: RequestLifeDeps, reply: FastifyReply, claims: object): Promise<string> {
  checkPayload('updateTokenCookie', claims)
  const state = stateFor(life, reply.request)
  const outcome = await settled(state)
  if (outcome.kind !== 'verified') throw rejectionOf(outcome)
  const { claims: current, lifetime } = outcome.token
  const iat = Math.floor(nowSeconds())
  // A sliding login's exp moves as a renewal's would; a session or persistent one never gets longer.
  const exp = lifetime.policy === 'sliding' ? expiresAt(lifetime, iat, current.auth_time) : current.exp
  const times: TimeClaims = { iat, exp, auth_time: current.auth_time }
  const token = await life.codec.sign({ ...appClaimsOf(claims), [lifetimeClaim]: toLifetimeClaim(lifetime), ...times, sid: current.sid, jti: randomId() })
  const lines = life.cookie.set(reply.request, token, lifetime, times, carriedBy(life, reply.request, state))
  change(life, reply, { kind: 'set', lines, expiry: expiryOf(times, lifetime) })
  return token
}

function clearTokenCookie (life: RequestLifeDeps, reply: FastifyReply): Promise<void> {
  const state = stateFor(life, reply.request)
  change(life, reply, logout)
  const revoked = revokeCarried(life, state)
  // Awaiting is the caller's choice: a rejection it ignores must not become an unhandled one.
  revoked.catch(() => {})
  return revoked
}

/** Revokes every session of a genuine token the request carried, for as long as it could still be accepted. */
async function revokeCarried (life: RequestLifeDeps, state: RequestState): Promise<void> {
  if (life.options.store === undefined) return
  // A token's claims when its signature is good, whatever its times: what a logout may revoke.
  const admit = async (token: string): Promise<AdmittedToken | undefined> => {
    const verified = await life.codec.verify(token)
    return isInvalidToken(verified) ? undefined : verified.token
  }
  const tokens = await genuineTokens(state, await settled(state), admit)
  const now = nowSeconds()
  await Promise.all(tokens.map((token) => life.revocations.revokeToken(token, now)))
}

function sent (reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void): void {
  sendHookRan(reply, true)
  done(null, payload)
}

/** The hooks and decorators, bound to what this registration of the plugin works with. */
export function createRequestLife (life: RequestLifeDeps): RequestLife {
  return {
    onRequest: (request, _reply, done) => onRequest(life, request, done),
    onSend (request, reply, payload, done) {
      const state = stateOf(request)
      const written = state === undefined ? undefined : write(life, reply, state)
      if (written === undefined) return sent(reply, payload, done)
      written.then(() => sent(reply, payload, done))
    },
    verifyToken (options) { return verifyToken(life, this, options) },
    setTokenCookie (payload, login) { return setTokenCookie(life, this, payload, login) },
    updateTokenCookie (claims) { return updateTokenCookie(life, this, claims) },
    clearTokenCookie () { return clearTokenCookie(life, this) },
    tokenExpiry () { return tokenExpiryOf(stateFor(life, this)) }
  }
}
