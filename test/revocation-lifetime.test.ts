// A revoked token is never accepted again while it could otherwise be accepted: revocations last to the end of
// the session plus verify.clockTolerance, on every path (logout, revokeSession, revokeUser), on memoryStore
// (a fake clock runs the store's expiry too) and on a real Redis (its key TTLs are read back).
// Logout revokes a genuine token past its idle end, and every genuine value of a duplicated cookie.
import { performance } from 'node:perf_hooks'
import type { Redis } from 'ioredis'
import { test, type Test } from 'tap'
import { memoryStore, type RevocationStore, type TokenCookieOptions } from '../index.js'
import { buildApp, claimsOf, fakeClock, login, tokenCookieOf } from './helpers/app.js'
import { haveRedis, redisStoreFor } from './helpers/redis.js'

const second = 1000
const minute = 60 * second

interface Backend {
  name: string
  store: (t: Test) => Promise<RevocationStore>
  /**
   * How long, in ms from `since` (performance.now() before the revocation), the store keeps session `sid`
   * revoked; `undefined` where the store runs on the fake clock.
   */
  keptFor?: (sid: string, since: number) => Promise<number>
}

const backends: Backend[] = [{ name: 'memoryStore', store: async () => memoryStore() }]
if (haveRedis()) {
  let client: Redis | undefined
  backends.push({
    name: 'Redis',
    async store (t) {
      const redis = await redisStoreFor(t)
      client = redis.client
      return redis.store
    },
    async keptFor (sid, since) {
      const pttl = await client!.pttl(`tc:s:${sid}`)
      // Redis counts down in real time while the app's clock is fake: add back the real time since the revocation.
      return pttl + (performance.now() - since)
    }
  })
}

async function appWith (t: Test, backend: Backend, options: Partial<TokenCookieOptions>) {
  const clock = fakeClock(t)
  const app = await buildApp(t, { store: await backend.store(t), ...options })
  app.post('/logout-await', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  const status = async (cookie: string): Promise<number | string> => {
    const response = await app.inject({ url: '/private', headers: { cookie } })
    return response.statusCode === 200 ? 200 : response.json().code
  }
  return { app, clock, status }
}

/**
 * Checks that session `sid` stays revoked until `end` (ms since epoch, fake clock): with a store on the fake
 * clock, by asking at the last second the token could be accepted; with Redis, by its key's TTL.
 */
async function revokedUntil (
  t: Test, backend: Backend, probe: () => Promise<number | string>, sid: string, end: number, tick: (ms: number) => void, since: number
): Promise<void> {
  if (backend.keptFor !== undefined) {
    const kept = await backend.keptFor(sid, since)
    // Whole seconds: Redis's own clock and this one may read a few milliseconds apart; the defect was whole seconds.
    t.ok(Math.round(kept / 1000) >= Math.round((end - Date.now()) / 1000), `Redis keeps the revocation ${Math.round(kept / 1000)} s, the token could live ${Math.round((end - Date.now()) / 1000)} s`)
  }
  tick(end - Date.now() - second)
  t.equal(await probe(), 'FST_TOKEN_COOKIE_REVOKED', 'refused as revoked in the last second it could otherwise be accepted')
  tick(second)
  t.equal(await probe(), 'FST_TOKEN_COOKIE_EXPIRED', 'and expired after it')
}

for (const backend of backends) {
  for (const tolerance of [0, 90]) {
    const options = tolerance === 0 ? {} : { verify: { clockTolerance: tolerance } }

    test(`${backend.name}, clockTolerance ${tolerance}s: logout of a token past its idle end revokes the renewed copy`, async (t) => {
      const { app, clock, status } = await appWith(t, backend, { maxAge: '30m', absoluteMaxAge: '1h', ...options })
      const first = await login(app)
      // A thief renews a copy, twice: it lives to the session's absolute end (the cap).
      let stolen = first.cookie
      for (const wait of [20, 25]) {
        clock.tick(wait * minute)
        stolen = `token=${tokenCookieOf(await app.inject({ url: '/private', headers: { cookie: stolen } }))!.value}`
      }
      t.equal(claimsOf(stolen.slice(6)).exp, claimsOf(first.token).auth_time as number + 3600, 'the copy reaches the cap')
      clock.tick(5 * minute)
      t.equal(await status(first.cookie), 'FST_TOKEN_COOKIE_EXPIRED', 'the victim\'s token is past its idle end')
      const since = performance.now()
      t.equal((await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: first.cookie } })).statusCode, 200)
      const end = (claimsOf(first.token).auth_time as number + 3600 + tolerance) * 1000
      await revokedUntil(t, backend, () => status(stolen), claimsOf(first.token).sid as string, end, (ms) => clock.tick(ms), since)
    })

    test(`${backend.name}, clockTolerance ${tolerance}s: revokeSession and revokeUser outlive the tokens they name`, async (t) => {
      const { app, clock, status } = await appWith(t, backend, { policy: 'persistent', maxAge: '1h', ...options })
      for (const revoke of ['revokeSession', 'revokeUser'] as const) {
        const { cookie, token } = await login(app)
        const { sid, sub, exp } = claimsOf(token) as { sid: string, sub: string, exp: number }
        // In the second of the login: the revocation must last as long as the token, tolerance included.
        const since = performance.now()
        await (revoke === 'revokeSession' ? app.tokenCookie.revokeSession(sid) : app.tokenCookie.revokeUser(sub))
        const probe = revoke === 'revokeUser' ? { ...backend, keptFor: undefined } : backend
        await revokedUntil(t, probe, () => status(cookie), sid, (exp + tolerance) * 1000, (ms) => clock.tick(ms), since)
        clock.tick(2 * 3600 * second)
      }
    })
  }

  test(`${backend.name}: logout with the cookie sent twice revokes every genuine session among the values`, async (t) => {
    const { app, status } = await appWith(t, backend, {})
    const victim = await login(app, { payload: { sub: 'victim' } })
    const planted = await login(app, { payload: { sub: 'attacker' } })
    const twice = `${victim.cookie}; ${planted.cookie}; token=not.a.token`
    const logout = await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: twice } })
    t.equal(logout.statusCode, 200)
    t.equal(tokenCookieOf(logout)?.attributes['max-age'], '0', 'the cookie is cleared')
    t.equal(await status(victim.cookie), 'FST_TOKEN_COOKIE_REVOKED', 'the victim\'s session is revoked')
    t.equal(await status(planted.cookie), 'FST_TOKEN_COOKIE_REVOKED', 'and the planted one')
  })
}
