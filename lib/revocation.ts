// Revocation: the app's `isRevoked` and the revocation store, with the store's timeout, outage logging
// and fail-closed default; and `app.tokenCookie`, the API that writes revocations.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { OptionsError, RevocationCheckError, StoreUnavailableError } from './errors.js'
import { wholeSeconds, type ResolvedOptions } from './options.js'
import { absoluteExpiresAt, type AdmittedToken, type Lifetime } from './policy.js'
import type { RevocationState, SessionInfo } from './store.js'
import type { RevokeOptions, TokenCookieApi, TokenPayload } from '../types/index.js'

/** What the revocation checks say of a verified token. */
export type Verdict =
  | { kind: 'clear' }
  | { kind: 'revoked' }
  /** The store is down or too slow, and `failOpen` is off: nobody can tell. */
  | { kind: 'unavailable', error: InstanceType<typeof StoreUnavailableError> }
  /** `isRevoked` threw: the request fails with its error. */
  | { kind: 'failed', error: Error }

const clear: Verdict = Object.freeze({ kind: 'clear' })
const revoked: Verdict = Object.freeze({ kind: 'revoked' })

export interface Revocations {
  /** Whether there is anything to check; without, verification stays synchronous. */
  active: boolean
  /**
   * At most one store round trip and one `isRevoked` call. The store reads the shared `claims`;
   * `isRevoked` gets the request's own copy of the payload, made only if it runs. Synchronous when the store
   * answers synchronously and there is no `isRevoked`.
   */
  verdict: (claims: Readonly<TokenPayload>, payloadOf: () => TokenPayload, request: FastifyRequest) => Verdict | Promise<Verdict>
  /**
   * Revokes the session of `token` for as long as the token (or a renewal of it) could still be accepted:
   * to the session's absolute end, plus the clock tolerance. Rejects with a 503 when the store is down.
   */
  revokeToken: (token: AdmittedToken, now: number) => Promise<void>
  /** Rejects with `FST_TOKEN_COOKIE_STORE_UNAVAILABLE` when the store is down. */
  revokeSession: (sid: string, ttl: number) => Promise<void>
  revokeUser: (sub: string, at: number, ttl: number) => Promise<void>
  /**
   * Lists a login or moves its `lastSeenAt`, where the store lists sessions. Never rejects: a store that is down
   * (logged once) leaves the session out of the list, and the login or renewal goes on.
   */
  recordSession: (sub: string, session: SessionInfo) => Promise<void>
  /** Live sessions of `sub`, newest first; `FST_TOKEN_COOKIE_OPTIONS` for a store that does not list. */
  listSessions: (sub: string) => Promise<SessionInfo[]>
}

type StoreCall = <T>(call: () => PromiseLike<T>) => Promise<T>

/** The store's state as the log tells it: one warning when it goes, one note when it is back, not one line per request. */
interface Outage {
  up: () => void
  down: (error: unknown) => InstanceType<typeof StoreUnavailableError>
}

export function createRevocations (options: ResolvedOptions, log: FastifyBaseLogger): Revocations {
  const outage = outageLog(options.failOpen, log)
  const storeCall = storeCaller(options.storeTimeout, outage)
  return { ...checks(options, outage, storeCall), ...storeWrites(options, storeCall) }
}

function isPromiseLike<T> (value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown }).then === 'function'
}

/**
 * The store's verdict on a token: synchronous when the store answers synchronously (no promise, no timer), else
 * through the timeout of `storeCall`.
 */
function storeVerdictOf ({ store, failOpen }: ResolvedOptions, outage: Outage, storeCall: StoreCall): ((claims: Readonly<TokenPayload>) => Verdict | Promise<Verdict>) | undefined {
  if (store === undefined) return undefined
  const verdictOf = (state: RevocationState, claims: Readonly<TokenPayload>): Verdict =>
    state.sessionRevoked || (state.userRevokedAt !== undefined && claims.auth_time <= state.userRevokedAt) ? revoked : clear
  const unavailable = (error: unknown): Verdict => failOpen ? clear : { kind: 'unavailable', error: error as InstanceType<typeof StoreUnavailableError> }
  return (claims) => {
    let answer: RevocationState | PromiseLike<RevocationState>
    try {
      answer = store.check(claims.sid as string, typeof claims.sub === 'string' ? claims.sub : undefined)
    } catch (error) {
      return unavailable(outage.down(error))
    }
    if (isPromiseLike(answer)) {
      const pending = answer
      return storeCall(() => pending).then((state) => verdictOf(state, claims), unavailable)
    }
    outage.up()
    return verdictOf(answer, claims)
  }
}

/** What a request's verified token is checked against: the store, then `isRevoked`. */
function checks (options: ResolvedOptions, outage: Outage, storeCall: StoreCall): Pick<Revocations, 'active' | 'verdict'> {
  const { store, isRevoked } = options
  const storeVerdict = storeVerdictOf(options, outage, storeCall)
  // A check that failed never counts as "not revoked", whatever it threw.
  const appVerdict = isRevoked === undefined
    ? undefined
    : async (payload: TokenPayload, request: FastifyRequest): Promise<Verdict> => {
      try {
        return await isRevoked(payload, request) ? revoked : clear
      } catch (error) {
        return { kind: 'failed', error: error instanceof Error ? error : new RevocationCheckError(describeThrown(error), { cause: error }) }
      }
    }
  return {
    active: store !== undefined || isRevoked !== undefined,
    verdict (claims, payloadOf, request) {
      const fromStore = storeVerdict === undefined ? clear : storeVerdict(claims)
      if (appVerdict === undefined) return fromStore
      if (fromStore instanceof Promise) return fromStore.then((verdict) => verdict.kind === 'clear' ? appVerdict(payloadOf(), request) : verdict)
      return fromStore.kind === 'clear' ? appVerdict(payloadOf(), request) : fromStore
    }
  }
}

/** What is written to and listed from the store: revocations and the sessions a user can see. */
function storeWrites ({ store, clockTolerance }: ResolvedOptions, storeCall: StoreCall): Omit<Revocations, 'active' | 'verdict'> {
  function storeOrFail (): NonNullable<typeof store> {
    if (store === undefined) throw new OptionsError('store is needed to revoke sessions: register with store: true or a RevocationStore')
    return store
  }
  const revokeSession = async (sid: string, ttl: number): Promise<void> => {
    const target = storeOrFail()
    await storeCall(() => target.revokeSession(sid, ttl))
  }
  return {
    async revokeToken ({ claims, lifetime }, now) {
      const ttl = Math.ceil(absoluteExpiresAt(lifetime, claims) + clockTolerance - now)
      // A token past its session's end (and the tolerance) is accepted nowhere: nothing to revoke.
      // With a store, every verified token has a sid (checked before it is admitted).
      if (ttl > 0) await revokeSession(claims.sid as string, ttl)
    },
    revokeSession,
    async revokeUser (sub, at, ttl) {
      const target = storeOrFail()
      await storeCall(() => target.revokeUser(sub, at, ttl))
    },
    async recordSession (sub, session) {
      const record = store?.recordSession
      if (record !== undefined) await storeCall(() => record.call(store, sub, session)).catch(() => {})
    },
    async listSessions (sub) {
      const target = storeOrFail()
      const list = target.listSessions
      if (list === undefined) throw new OptionsError('store does not list sessions: memoryStore and redisStore do')
      const now = Date.now() / 1000
      const sessions = await storeCall(() => list.call(target, sub))
      return sessions.filter((session) => session.expiresAt > now).sort((a, b) => b.authTime - a.authTime || b.lastSeenAt - a.lastSeenAt)
    }
  }
}

function outageLog (failOpen: boolean, log: FastifyBaseLogger): Outage {
  let storeDown = false
  return {
    up () {
      if (!storeDown) return
      storeDown = false
      log.info('fastify-token-cookie: the revocation store is back')
    },
    down (error) {
      if (!storeDown) {
        storeDown = true
        log.warn({ err: error }, `fastify-token-cookie: the revocation store is unavailable; ${failOpen ? 'tokens pass unchecked (failOpen)' : 'protected routes answer 503'}`)
      }
      return new StoreUnavailableError({ cause: error })
    }
  }
}

/** Store calls with a timeout, their outages logged. */
function storeCaller (timeout: number, outage: Outage): StoreCall {
  return <T>(call: () => PromiseLike<T>) => new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeout * 1000} ms`)), timeout * 1000)
    call().then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, (error: unknown) => {
      clearTimeout(timer)
      reject(error)
    })
  }).then((value) => {
    outage.up()
    return value
  }, (error: unknown) => {
    throw outage.down(error)
  })
}

function describeThrown (value: unknown): string {
  return value === null ? 'null' : typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value
}

/** The longest a token of this app can be accepted, seconds: its own lifetime, or a longer one a login chose. */
export function longestAcceptance (lifetime: Lifetime): number {
  return lifetime.policy === 'sliding' ? lifetime.absoluteMaxAge : lifetime.maxAge
}

/**
 * `app.tokenCookie`: revoke a session or all of a user's sessions, on every instance that shares the store.
 * `noteLogin` widens the default TTL to the longest lifetime a login of this instance has used.
 */
export function createRevocationApi (revocations: Revocations, options: ResolvedOptions): { api: TokenCookieApi, noteLogin: (lifetime: Lifetime) => void } {
  let longest = longestAcceptance(options.lifetime)
  // A revocation must outlive every token it names, clock tolerance included.
  const ttlOf = (revoke: RevokeOptions | undefined): number =>
    revoke?.ttl === undefined ? Math.ceil(longest + options.clockTolerance) : wholeSeconds('ttl', revoke.ttl)
  const check = (name: string, value: unknown): void => {
    if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`)
  }
  const api: TokenCookieApi = {
    async revokeSession (sid, revoke) {
      check('sid', sid)
      await revocations.revokeSession(sid, ttlOf(revoke))
    },
    async revokeUser (sub, revoke) {
      check('sub', sub)
      // Whole seconds: sessions that started at or before this second are revoked.
      await revocations.revokeUser(sub, Math.floor(Date.now() / 1000), ttlOf(revoke))
    },
    async listSessions (sub) {
      check('sub', sub)
      return await revocations.listSessions(sub)
    }
  }
  return { api, noteLogin: (lifetime) => { longest = Math.max(longest, longestAcceptance(lifetime)) } }
}
