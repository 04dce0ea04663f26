// Lifetime policy: pure functions of claims, a lifetime and `now` (seconds since epoch).
// No Fastify here, so every lifetime rule is tested alone.
import { TokenInvalidError } from './errors.js'
import type { Admit, VerifiedPayload } from './token.js'
import type { Policy, TokenPayload } from '../types/index.js'

export const policies: readonly Policy[] = ['session', 'persistent', 'sliding']

/** A policy with its durations in seconds. `absoluteMaxAge` and `sessionCookie` matter to `sliding` only. */
export interface Lifetime {
  policy: Policy
  maxAge: number
  absoluteMaxAge: number
  sessionCookie: boolean
}

/** The plugin's time claims. */
export interface TimeClaims {
  iat: number
  exp: number
  auth_time: number
}

/**
 * The claim that carries a login's lifetime, so its renewals keep the policy chosen at login.
 * `session` and `persistent` tokens are never renewed, so their lifetime is all in `exp`.
 */
export const lifetimeClaim = 'tc'

export interface LifetimeClaim {
  policy: Policy
  maxAge?: number
  absoluteMaxAge?: number
  sessionCookie?: true
}

export function toLifetimeClaim (lifetime: Lifetime): LifetimeClaim {
  if (lifetime.policy !== 'sliding') return { policy: lifetime.policy }
  const claim: LifetimeClaim = { policy: 'sliding', maxAge: lifetime.maxAge, absoluteMaxAge: lifetime.absoluteMaxAge }
  if (lifetime.sessionCookie) claim.sessionCookie = true
  return claim
}

/**
 * The lifetime a token was issued with, or `undefined` when its claim is malformed.
 * A token without the claim (signed elsewhere with the same key) gets the app's lifetime.
 */
export function lifetimeOf (claim: unknown, appLifetime: Lifetime): Lifetime | undefined {
  if (claim === undefined) return appLifetime
  if (claim === null || typeof claim !== 'object' || Array.isArray(claim)) return undefined
  const { policy, maxAge, absoluteMaxAge, sessionCookie } = claim as Record<string, unknown>
  if (policy === 'session' || policy === 'persistent') {
    return { policy, maxAge: appLifetime.maxAge, absoluteMaxAge: appLifetime.absoluteMaxAge, sessionCookie: false }
  }
  if (policy !== 'sliding' || !isPositiveNumber(maxAge) || !isPositiveNumber(absoluteMaxAge) || absoluteMaxAge < maxAge) {
    return undefined
  }
  if (sessionCookie !== undefined && sessionCookie !== true) return undefined
  return { policy, maxAge, absoluteMaxAge, sessionCookie: sessionCookie === true }
}

/** Time claims for a new login at `now`. */
export function loginClaims (lifetime: Lifetime, now: number): TimeClaims {
  const authTime = Math.floor(now)
  return { iat: authTime, exp: expiresAt(lifetime, authTime, authTime), auth_time: authTime }
}

/** `exp` for a token issued at `iat` of a login made at `authTime`: sliding tokens never pass the absolute cap. */
export function expiresAt (lifetime: Lifetime, iat: number, authTime: number): number {
  const idleExpiry = iat + lifetime.maxAge
  if (lifetime.policy !== 'sliding') return Math.floor(idleExpiry)
  return Math.floor(Math.min(idleExpiry, absoluteExpiresAt(lifetime, { exp: idleExpiry, auth_time: authTime })))
}

/** When the login ends whatever happens: the absolute cap for sliding, `exp` for the others. */
export function absoluteExpiresAt (lifetime: Lifetime, claims: Pick<TimeClaims, 'exp' | 'auth_time'>): number {
  return lifetime.policy === 'sliding' ? claims.auth_time + lifetime.absoluteMaxAge : claims.exp
}

export type TimeCheck = 'valid' | 'expired' | 'invalid'

/**
 * Checks the time claims of a token whose signature is good.
 * `tolerance` is the allowed clock skew, in seconds.
 */
export function checkTimes (claims: Record<string, unknown>, lifetime: Lifetime, now: number, tolerance: number): TimeCheck {
  const { iat, exp, auth_time: authTime } = claims
  if (!isTime(iat) || !isTime(exp) || !isTime(authTime)) return 'invalid'
  if (iat > now + tolerance || authTime > now + tolerance || authTime > iat) return 'invalid'
  if (now >= exp + tolerance) return 'expired'
  if (now >= absoluteExpiresAt(lifetime, { exp, auth_time: authTime }) + tolerance) return 'expired'
  return 'valid'
}

/**
 * The time claims of the renewed token, when a renewal is due at `now`:
 * sliding only, once `now - iat >= renewAfter * maxAge`, and only if it moves `exp`.
 */
export function renewal (claims: TimeClaims, lifetime: Lifetime, renewAfter: number, now: number): TimeClaims | undefined {
  if (lifetime.policy !== 'sliding') return undefined
  if (now - claims.iat < renewAfter * lifetime.maxAge) return undefined
  const iat = Math.floor(now)
  const exp = expiresAt(lifetime, iat, claims.auth_time)
  if (exp <= claims.exp) return undefined
  return { iat, exp, auth_time: claims.auth_time }
}

/** The cookie's `Max-Age` in whole seconds, or `undefined` for a browser-session cookie. */
export function cookieMaxAge (lifetime: Lifetime, exp: number, now: number): number | undefined {
  if (lifetime.policy === 'session' || lifetime.sessionCookie) return undefined
  return Math.max(0, Math.floor(exp - now))
}

function isIdClaim (value: unknown): boolean {
  return value === undefined || (typeof value === 'string' && value !== '')
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}

function isPositiveNumber (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

/** A token with a good signature, and the lifetime it was issued with. Its claims are shared: never handed out. */
export interface AdmittedToken {
  claims: VerifiedPayload & TokenPayload
  lifetime: Lifetime
}

/**
 * What the codec remembers of a verified token. It is also the outcome of every request that sends the token
 * while its time checks pass: one object for them all, none made per request.
 */
export interface Verified {
  kind: 'verified'
  token: AdmittedToken
}

/** What a verified payload means to the plugin, worked out once per token: its lifetime, from its `tc` claim. */
export function admitterFor (appLifetime: Lifetime): Admit<Verified> {
  return (payload) => {
    const lifetime = lifetimeOf(payload[lifetimeClaim], appLifetime)
    if (lifetime === undefined) throw new TokenInvalidError(`malformed ${lifetimeClaim} claim`)
    // The plugin's own ids: strings in every token it issues, and what revocation and listing key on.
    if (!isIdClaim(payload.sid) || !isIdClaim(payload.jti)) throw new TokenInvalidError('malformed sid or jti claim')
    return { kind: 'verified', token: { claims: payload as AdmittedToken['claims'], lifetime } }
  }
}
