// Revocation: the app's `isRevoked` and the revocation store, with the store's timeout, outage logging
// and fail-closed default; and `app.tokenCookie`, the API that writes revocations.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { OptionsError, StoreUnavailableError } from './errors.js'
import { wholeSeconds, type ResolvedOptions } from './options.js'
import type { RevokeOptions, TokenCookieApi, TokenPayload } from '../types/index.js'

/** What the revocation checks say of a verified token. */
export type Verdict =
  | { revoked: boolean }
  /** The store is down or too slow, and `failOpen` is off: nobody can tell. */
  | { unavailable: Error }
  /** `isRevoked` threw: the request fails with its error. */
  | { failed: unknown }

export interface Revocations {
  /** Whether there is anything to check; without, verification stays synchronous. */
  active: boolean
  /**
   * At most one store round trip and one `isRevoked` call. The store reads the shared `claims`;
   * `isRevoked` gets the request's own copy of the payload, made only if it runs.
   */
  verdict: (claims: Readonly<TokenPayload>, payloadOf: () => TokenPayload, request: FastifyRequest) => Promise<Verdict>
  /** Rejects with `FST_TOKEN_COOKIE_STORE_UNAVAILABLE` when the store is down. */
  revokeSession: (sid: string, ttl: number) => Promise<void>
  revokeUser: (sub: string, at: number, ttl: number) => Promise<void>
}

export function createRevocations (options: ResolvedOptions, log: FastifyBaseLogger): Revocations {
  const { store, storeTimeout, failOpen, isRevoked } = options
  let storeDown = false

  // One warning when the store goes, one note when it is back: not one line per request.
  function storeCall<T> (call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${storeTimeout * 1000} ms`)), storeTimeout * 1000)
      call().then(resolve, reject).finally(() => clearTimeout(timer))
    }).then((value) => {
      if (storeDown) {
        storeDown = false
        log.info('fastify-token-cookie: the revocation store is back')
      }
      return value
    }, (error: unknown) => {
      if (!storeDown) {
        storeDown = true
        log.warn({ err: error }, `fastify-token-cookie: the revocation store is unavailable; ${failOpen ? 'tokens pass unchecked (failOpen)' : 'protected routes answer 503'}`)
      }
      throw new StoreUnavailableError()
    })
  }

  const storeVerdict = store === undefined
    ? undefined
    : async (claims: Readonly<TokenPayload>): Promise<Verdict> => {
      try {
        const state = await storeCall(() => store.check(claims.sid as string, typeof claims.sub === 'string' ? claims.sub : undefined))
        return { revoked: state.sessionRevoked || (state.userRevokedAt !== undefined && claims.auth_time <= state.userRevokedAt) }
      } catch (error) {
        return failOpen ? { revoked: false } : { unavailable: error as Error }
      }
    }

  function storeOrFail (): NonNullable<typeof store> {
    if (store === undefined) throw new OptionsError('store is needed to revoke sessions: register with store: true or a RevocationStore')
    return store
  }

  return {
    active: store !== undefined || isRevoked !== undefined,
    async verdict (claims, payloadOf, request) {
      if (storeVerdict !== undefined) {
        const verdict = await storeVerdict(claims)
        if (!('revoked' in verdict) || verdict.revoked) return verdict
      }
      if (isRevoked === undefined) return { revoked: false }
      // A check that failed never counts as "not revoked".
      try {
        return { revoked: Boolean(await isRevoked(payloadOf(), request)) }
      } catch (error) {
        return { failed: error }
      }
    },
    async revokeSession (sid, ttl) {
      const target = storeOrFail()
      await storeCall(() => target.revokeSession(sid, ttl))
    },
    async revokeUser (sub, at, ttl) {
      const target = storeOrFail()
      await storeCall(() => target.revokeUser(sub, at, ttl))
    }
  }
}

/** `app.tokenCookie`: revoke a session or all of a user's sessions, on every instance that shares the store. */
export function createRevocationApi (revocations: Revocations, options: ResolvedOptions): TokenCookieApi {
  const { lifetime } = options
  // A revocation must outlive every token it names: the longest lifetime the app's options allow.
  const longestLifetime = lifetime.policy === 'sliding' ? lifetime.absoluteMaxAge : lifetime.maxAge
  const ttlOf = (revoke: RevokeOptions | undefined): number => revoke?.ttl === undefined ? longestLifetime : wholeSeconds('ttl', revoke.ttl)
  const check = (name: string, value: unknown): void => {
    if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`)
  }
  return {
    async revokeSession (sid, revoke) {
      check('sid', sid)
      await revocations.revokeSession(sid, ttlOf(revoke))
    },
    async revokeUser (sub, revoke) {
      check('sub', sub)
      // Whole seconds: sessions that started at or before this second are revoked.
      await revocations.revokeUser(sub, Math.floor(Date.now() / 1000), ttlOf(revoke))
    }
  }
}
