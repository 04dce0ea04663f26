// Requests of one session that renew at the same moment (tabs, a page loading many resources) never log the user
// out: each renewal is a new token of the same session, and the token it came from stays valid until its own exp,
// so whichever Set-Cookie the browser keeps last works. Without a store, with memoryStore, with Redis; through
// `app.inject` on a fake clock (to reach each token's exp - 1), and through real HTTP.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { TokenCookieOptions } from '../index.js'
import { buildApp, claimsOf, fakeClock, login, start, tokenCookieOf } from './helpers/app.js'
import { haveRedis, startRedis } from './helpers/redis.js'

const parallel = 20
// The default lifetime: sliding, maxAge 30 min, renewed once half of it has passed.
const maxAge = 30 * 60
const due = 16 * 60 * 1000

type StoreOption = Pick<TokenCookieOptions, 'store' | 'storeTimeout'>

const get = async (app: FastifyInstance, token: string): Promise<LightMyRequestResponse> =>
  await app.inject({ method: 'GET', url: '/private', headers: { cookie: `token=${token}` } })

/** Twenty requests of one session at a due renewal, then each token the session has had, at its exp - 1. */
async function renewTogether (t: Test, options: StoreOption): Promise<void> {
  const clock = fakeClock(t)
  const app = await buildApp(t, options)
  // A logout that answers once the revocation is stored (the helper's /logout does not wait for the store).
  app.post('/logout-awaited', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  const { token: original } = await login(app)
  const session = claimsOf(original)
  t.equal(session.exp, start / 1000 + maxAge)

  clock.tick(due)
  const responses = await Promise.all(Array.from({ length: parallel }, async () => await get(app, original)))
  t.same(responses.map(({ statusCode }) => statusCode), responses.map(() => 200), `all ${parallel} requests succeed`)
  const renewed = responses.map((response) => tokenCookieOf(response)?.value)
  t.ok(renewed.every((token) => typeof token === 'string' && token !== ''), 'each one renews the token')
  const tokens = renewed as string[]
  t.equal(new Set(tokens).size, parallel, 'twenty different tokens')
  t.equal(new Set(tokens.map((token) => claimsOf(token).jti)).size, parallel, 'each with its own jti')
  for (const token of tokens) {
    const claims = claimsOf(token)
    if (claims.sid !== session.sid || claims.sub !== session.sub || claims.auth_time !== session.auth_time || claims.exp !== (start + due) / 1000 + maxAge) {
      t.fail('a renewal of the same session, with a moved exp', { claims, session })
    }
  }
  t.pass('all of the same session, login time and subject, each with exp = now + maxAge')

  // In order of exp: the original first, then its twenty renewals (the same exp, later).
  clock.setSystemTime((session.exp as number) * 1000 - 1000)
  const late = await get(app, original)
  t.equal(late.statusCode, 200, 'the original token is still valid at its exp - 1')
  clock.setSystemTime((session.exp as number) * 1000)
  t.equal((await get(app, original)).statusCode, 401, 'and expired at its exp')

  const exp = claimsOf(tokens[0]).exp as number
  clock.setSystemTime(exp * 1000 - 1000)
  // Each as the one the browser kept last: it works, and the session goes on from it.
  const lastKept = await Promise.all(tokens.map(async (token) => await get(app, token)))
  t.same(lastKept.map(({ statusCode }) => statusCode), tokens.map(() => 200), 'every renewed token is valid at its exp - 1')
  const next = lastKept.map((response) => tokenCookieOf(response)?.value as string)
  t.ok(next.every((token) => claimsOf(token).sid === session.sid && (claimsOf(token).exp as number) > exp), 'and is renewed in turn')
  clock.setSystemTime(exp * 1000)
  const expired = await Promise.all(tokens.map(async (token) => await get(app, token)))
  t.same(expired.map(({ statusCode }) => statusCode), tokens.map(() => 401), 'expired at their exp')
  t.equal((await get(app, next[parallel - 1])).statusCode, 200, 'the session goes on with a token renewed from any of them')

  // One session: a logout with any of its tokens ends all of them (where a store can tell).
  if (options.store !== undefined) {
    const logout = await app.inject({ method: 'POST', url: '/logout-awaited', headers: { cookie: `token=${next[0]}` } })
    t.equal(logout.statusCode, 200)
    const after = await Promise.all(next.map(async (token) => await get(app, token)))
    t.same(after.map(({ statusCode }) => statusCode), next.map(() => 401), 'a logout ends every token of the session')
  }
}

t.test('twenty parallel renewals, no store', async (t) => {
  await renewTogether(t, {})
})

t.test('twenty parallel renewals, memoryStore', async (t) => {
  await renewTogether(t, { store: true })
})

if (haveRedis()) {
  t.test('twenty parallel renewals, redisStore', async (t) => {
    const { redisStore } = await import('../redis.js')
    const server = await startRedis(t)
    const client = new Redis({ host: server.host, port: server.port })
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    // A generous timeout: the machine is shared, and a slow store is a 503 by design, not what is tested here.
    await renewTogether(t, { store: redisStore({ client }), storeTimeout: '2s' })
  })
}

t.test('twenty parallel renewals through real HTTP', async (t) => {
  for (const store of [undefined, true]) {
    t.test(store === undefined ? 'no store' : 'memoryStore', async (t) => {
      // A real clock: renewed as soon as the second of the token's iat has passed.
      const app = await buildApp(t, { maxAge: '60s', renewAfter: 0, ...(store === undefined ? {} : { store }) })
      await app.listen({ host: '127.0.0.1', port: 0 })
      const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
      const fetchPrivate = async (token: string): Promise<{ status: number, token: string | undefined }> => {
        const response = await fetch(`${url}/private`, { headers: { cookie: `token=${token}` } })
        await response.arrayBuffer()
        const line = response.headers.getSetCookie().find((line) => line.startsWith('token='))
        return { status: response.status, token: line?.slice('token='.length, line.indexOf(';')) }
      }
      const loginResponse = await fetch(`${url}/login`, { method: 'POST' })
      const loginLine = loginResponse.headers.getSetCookie().find((line) => line.startsWith('token=')) as string
      const original = loginLine.slice('token='.length, loginLine.indexOf(';'))
      const session = claimsOf(original)
      for (;;) {
        const wait = ((session.iat as number) + 1) * 1000 - Date.now()
        if (wait <= 0) break
        await sleep(wait + 5)
      }

      // As a browser keeps them: in the order the responses arrive, the last one wins.
      const arrived: string[] = []
      const results = await Promise.all(Array.from({ length: parallel }, async () => {
        const result = await fetchPrivate(original)
        if (result.token !== undefined) arrived.push(result.token)
        return result
      }))
      t.same(results.map(({ status }) => status), results.map(() => 200), `all ${parallel} concurrent requests succeed`)
      t.equal(arrived.length, parallel, 'each one renews the token')
      t.ok(arrived.every((token) => claimsOf(token).sid === session.sid && claimsOf(token).sub === session.sub), 'all of the same session')
      t.ok(arrived.every((token) => (claimsOf(token).exp as number) === (claimsOf(token).iat as number) + 60), 'each valid for maxAge from its iat')

      const kept = arrived[arrived.length - 1]
      t.equal((await fetchPrivate(kept)).status, 200, 'the Set-Cookie the browser kept last works')
      const each = await Promise.all([original, ...arrived].map(fetchPrivate))
      t.same(each.map(({ status }) => status), each.map(() => 200), 'and so do the original and every other renewal')
    })
  }
})
