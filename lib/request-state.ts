// The request's state: where its token came from, what verifying it came to, and the one change to the cookie
// that its response will carry. Made on first use and kept on the request behind a symbol.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { TokenMissingError, TokenReauthError, type StoreUnavailableError, type TokenError } from './errors.js'
import type { VerifyCheck } from './options.js'
import { absoluteExpiresAt, type AdmittedToken, type Lifetime, type TimeClaims, type Verified } from './policy.js'
import type { FoundToken } from './request-token.js'
import { copyJson } from './token.js'
import type { TokenExpiry, TokenPayload } from '../types/index.js'

export const kState = Symbol('fastify-token-cookie.state')
/** On the reply, once the plugin's onSend hook has run: a cookie change made after it is written at once. */
export const kSendHookRan = Symbol('fastify-token-cookie.sendHookRan')

/** What verifying the request's token came to. */
export type Outcome =
  | { kind: 'missing' }
  | Verified
  /** Malformed, forged, or refused by a rule: the request goes on unauthenticated. */
  | { kind: 'invalid', error: TokenError }
  /** Genuine but expired: the request goes on unauthenticated, and a logout still revokes its session. */
  | { kind: 'expired', error: TokenError, token: AdmittedToken }
  | { kind: 'revoked', error: TokenError }
  /** Genuine, but the store cannot say whether it is revoked: the cookie stays, protected routes answer 503. */
  | { kind: 'unchecked', error: InstanceType<typeof StoreUnavailableError>, token: AdmittedToken }
  /** `isRevoked` failed: so does the request. */
  | { kind: 'failed', error: Error }

/** What this request does to the cookie: the last of a login, an update, a logout, a clearing and a renewal wins. */
export type CookieChange =
  | { kind: 'set', lines: string[], expiry: TokenExpiry }
  /** By a logout (always sent), or the clearing of a refused cookie (never with a response shared caches keep). */
  | { kind: 'clear', by: 'logout' | 'refusal' }
  /** Signed in onSend, and sent only with a response below 400 that shared caches do not keep. */
  | { kind: 'renew', claims: TimeClaims & Record<string, unknown>, lifetime: Lifetime }

export interface RequestState {
  found: FoundToken | undefined
  outcome: Outcome | Promise<Outcome>
  change: CookieChange | undefined
  /** This request's own copy of the verified payload (`request.user`), made on first use. */
  payload: TokenPayload | undefined
}

export const missing: Outcome = Object.freeze({ kind: 'missing' })
export const logout: CookieChange = Object.freeze({ kind: 'clear', by: 'logout' })
export const refusal: CookieChange = Object.freeze({ kind: 'clear', by: 'refusal' })

/**
 * The request's state, if it has one; with `fresh`, attaches it first when there is none. The slot is `null`
 * where the plugin decorated the request and `undefined` in contexts registered before it: both mean none.
 */
export function stateOf (request: FastifyRequest): RequestState | undefined
export function stateOf (request: FastifyRequest, fresh: RequestState): RequestState
export function stateOf (request: FastifyRequest, fresh?: RequestState): RequestState | undefined {
  const slot = request as FastifyRequest & { [kState]?: RequestState | null }
  if (fresh !== undefined) slot[kState] ??= fresh
  return slot[kState] ?? undefined
}

/** Whether the plugin's onSend hook has run for `reply`; with `ran`, records that it has. */
export function sendHookRan (reply: FastifyReply, ran?: true): boolean {
  const slot = reply as FastifyReply & { [kSendHookRan]?: boolean }
  if (ran) slot[kSendHookRan] = ran
  return slot[kSendHookRan] === true
}

/** The outcome once settled (it is pending while a revocation check is on its way), remembered when it is. */
export async function settled (state: RequestState): Promise<Outcome> {
  state.outcome = await state.outcome
  return state.outcome
}

/** This request's own copy of the verified payload: no request can change what another one sees. */
export function payloadOf (state: RequestState, token: AdmittedToken): TokenPayload {
  state.payload ??= copyJson(token.claims) as TokenPayload
  return state.payload
}

/**
 * What `verifyToken()` settles with: the request's own copy of the verified payload, `null` for an optional
 * call that would answer 401, or the error. A login older than `maxAuthAge` rejects even an optional call.
 */
export function authenticate (request: FastifyRequest, state: RequestState, outcome: Outcome, check: VerifyCheck): Promise<TokenPayload | null> {
  switch (outcome.kind) {
    case 'verified': {
      const { claims } = outcome.token
      if (check.maxAuthAge !== undefined && Date.now() / 1000 - claims.auth_time > check.maxAuthAge) return Promise.reject(new TokenReauthError())
      const payload = payloadOf(state, outcome.token)
      ;(request as FastifyRequest & { user?: unknown }).user = payload
      return Promise.resolve(payload)
    }
    case 'missing':
    case 'invalid':
    case 'expired':
    case 'revoked':
      return check.optional ? Promise.resolve(null) : Promise.reject(rejectionOf(outcome))
    case 'unchecked':
    case 'failed':
      return Promise.reject(rejectionOf(outcome))
  }
}

/** The error a request without a verified token answers with. */
export function rejectionOf (outcome: Exclude<Outcome, Verified>): Error {
  return outcome.kind === 'missing' ? new TokenMissingError() : outcome.error
}

export function expiryOf (claims: TimeClaims, lifetime: Lifetime): TokenExpiry {
  return { expiresAt: claims.exp, absoluteExpiresAt: absoluteExpiresAt(lifetime, claims) }
}

/** `request.tokenExpiry()`: the token the client will hold after this response, or `null`. */
export function tokenExpiryOf (state: RequestState): TokenExpiry | null {
  const { change, outcome } = state
  switch (change?.kind) {
    case 'set': return change.expiry
    case 'clear': return null
    case 'renew': return expiryOf(change.claims, change.lifetime)
    case undefined: break
  }
  if (outcome instanceof Promise || outcome.kind !== 'verified') return null
  return expiryOf(outcome.token.claims, outcome.token.lifetime)
}

/** The genuine tokens a logout revokes: the one verified (even past its idle end), or each of a duplicated cookie. */
export async function genuineTokens (state: RequestState, outcome: Outcome, admit: (token: string) => Promise<AdmittedToken | undefined>): Promise<AdmittedToken[]> {
  switch (outcome.kind) {
    case 'verified':
    case 'expired':
    case 'unchecked':
      return [outcome.token]
    case 'invalid': {
      const found = state.found
      if (found?.kind !== 'duplicate') return []
      const tokens = await Promise.all(found.tokens.map(admit))
      return tokens.filter((token): token is AdmittedToken => token !== undefined)
    }
    case 'missing':
    case 'revoked':
    case 'failed':
      return []
  }
}
