// Session ids and the revocation store: logout that holds, "log out everywhere", and a store that fails.
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie, { memoryStore, type RevocationStore, type TokenCookieOptions } from '../index.js'
import { buildApp, claimsOf, fakeClock, login, secret, start, tokenCookieOf } from './helpers/app.js'

const minutes = 60 * 1000
const idPattern = /^[A-Za-z0-9_-]{22}$/

/** A store that counts its calls and can be made to fail or hang. */
function instrumented (inner: RevocationStore = memoryStore()) {
  const calls = { check: 0, revokeSession: [] as Array<[string, number]>, revokeUser: [] as Array<[string, number, number]> }
  const state = { failing: false, hanging: false }
  const gate = async (): Promise<void> => {
    if (state.hanging) await new Promise(() => {})
    if (state.failing) throw new Error('connection refused')
  }
  const store: RevocationStore = {
    async check (sid, sub) { calls.check++; await gate(); return inner.check(sid, sub) },
    async revokeSession (sid, ttl) { calls.revokeSession.push([sid, ttl]); await gate(); return inner.revokeSession(sid, ttl) },
    async revokeUser (sub, at, ttl) { calls.revokeUser.push([sub, at, ttl]); await gate(); return inner.revokeUser(sub, at, ttl) }
  }
  return { store, calls, state }
}

async function storeApp (t: Parameters<typeof buildApp>[0], options: Partial<TokenCookieOptions> = {}) {
  const app = await buildApp(t, { store: true, ...options })
  app.post('/logout-await', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  return app
}

test('every login gets a session id that renewals keep, and every token its own jti', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const first = await login(app, { payload: { sub: 'alice', sid: 'mine', jti: 'mine' } })
  const second = await login(app)
  const claims = claimsOf(first.token)
  t.match(claims, { sid: idPattern, jti: idPattern }, 'the payload\'s own sid and jti are replaced')
  t.not(claims.sid, claimsOf(second.token).sid, 'one session id a login')
  t.not(claims.sid, claims.jti)
  clock.tick(20 * minutes)
  const renewed = tokenCookieOf(await app.inject({ url: '/private', headers: { cookie: first.cookie } }))!
  t.equal(claimsOf(renewed.value).sid, claims.sid, 'the renewal keeps the sid')
  t.not(claimsOf(renewed.value).jti, claims.jti, 'and gets a new jti')
  const me = await app.inject({ url: '/private', headers: { cookie: first.cookie } })
  t.equal(me.json().sid, claims.sid, 'request.user.sid')
})

test('without a store: logout resolves, revocations reject with FST_TOKEN_COOKIE_OPTIONS', async (t) => {
  const app = await buildApp(t)
  app.post('/logout-await', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  const { cookie } = await login(app)
  t.equal((await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie } })).statusCode, 200)
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200, 'stateless: the copy still works')
  await t.rejects(app.tokenCookie.revokeSession('abc'), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /store/ })
  await t.rejects(app.tokenCookie.revokeUser('alice'), { code: 'FST_TOKEN_COOKIE_OPTIONS' })
})

test('logout revokes the session: the old token, its copies and a renewal from a request in flight', async (t) => {
  const clock = fakeClock(t)
  const app = await storeApp(t)
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let entered!: () => void
  const inHandler = new Promise<void>((resolve) => { entered = resolve })
  app.get('/slow', async () => {
    entered()
    await released
    return { ok: true }
  })
  const { cookie } = await login(app)
  clock.tick(20 * minutes)
  // A request that verified before logout, renews, and answers after it.
  const inFlight = app.inject({ url: '/slow', headers: { cookie } })
  await inHandler // past the plugin's hooks: the token was checked
  const logout = await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie } })
  t.equal(logout.statusCode, 200)
  t.equal(tokenCookieOf(logout)?.value, '', 'the cookie is cleared')
  release()
  const renewed = tokenCookieOf(await inFlight)
  t.ok(renewed?.value, 'the in-flight request still sent its renewal')
  for (const [name, copy] of [['the old token', cookie], ['a copy sent as Bearer-less cookie again', cookie], ['the in-flight renewal', `token=${renewed!.value}`]]) {
    const response = await app.inject({ url: '/private', headers: { cookie: copy } })
    t.equal(response.json().code, 'FST_TOKEN_COOKIE_REVOKED', name)
    t.equal(tokenCookieOf(response)?.value, '', `${name}: cleared`)
  }
  const again = await login(app)
  t.equal((await app.inject({ url: '/private', headers: { cookie: again.cookie } })).statusCode, 200, 'a new login works')
})

test('logout revokes for the rest of the session\'s absolute lifetime; revocations default to the longest lifetime', async (t) => {
  const clock = fakeClock(t)
  const { store, calls } = instrumented()
  const app = await storeApp(t, { store })
  const sliding = await login(app)
  clock.tick(60 * minutes)
  const fresh = await login(app)
  await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: fresh.cookie } })
  t.same(calls.revokeSession, [[claimsOf(fresh.token).sid, 12 * 3600]], 'a sliding session: up to its 12-hour cap')
  const persistent = await login(app, { login: { policy: 'persistent', maxAge: '30d' } })
  clock.tick(10 * 24 * 60 * minutes)
  await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: persistent.cookie } })
  t.same(calls.revokeSession[1], [claimsOf(persistent.token).sid, 20 * 24 * 3600], 'a persistent one: until its exp')
  await app.tokenCookie.revokeSession(String(claimsOf(sliding.token).sid))
  t.same(calls.revokeSession[2], [claimsOf(sliding.token).sid, 30 * 24 * 3600], 'revokeSession: the longest lifetime a login here used (30 days)')
  await app.tokenCookie.revokeUser('alice', { ttl: '30d' })
  t.same(calls.revokeUser[0], ['alice', Math.floor(Date.now() / 1000), 30 * 24 * 3600], 'revokeUser with its own ttl')
  await t.rejects(app.tokenCookie.revokeUser('alice', { ttl: 'forever' } as never), { code: 'FST_TOKEN_COOKIE_OPTIONS' })
  await t.rejects(app.tokenCookie.revokeSession(''), TypeError)
  await t.rejects(app.tokenCookie.revokeUser(42 as never), TypeError)
  const persistentApp = await storeApp(t, { store: instrumented().store, policy: 'persistent', maxAge: '7d' })
  const spy = instrumented()
  const other = await storeApp(t, { store: spy.store, policy: 'persistent', maxAge: '7d' })
  await other.tokenCookie.revokeUser('bob')
  t.equal(spy.calls.revokeUser[0][2], 7 * 24 * 3600, 'a persistent app: its maxAge')
  t.ok(persistentApp)
})

test('revokeUser: every session of that user that started at or before this second, none of another\'s', async (t) => {
  const clock = fakeClock(t)
  const app = await storeApp(t)
  const laptop = await login(app, { payload: { sub: 'alice' } })
  const phone = await login(app, { payload: { sub: 'alice' }, login: { policy: 'persistent', maxAge: '30d' } })
  const bob = await login(app, { payload: { sub: 'bob' } })
  clock.tick(5 * minutes)
  await app.tokenCookie.revokeUser('alice')
  for (const session of [laptop, phone]) {
    t.equal((await app.inject({ url: '/private', headers: { cookie: session.cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED')
  }
  t.equal((await app.inject({ url: '/private', headers: { cookie: bob.cookie } })).statusCode, 200, 'bob is untouched')
  const sameSecond = await login(app, { payload: { sub: 'alice' } })
  t.equal((await app.inject({ url: '/private', headers: { cookie: sameSecond.cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED', 'whole seconds: a login in the same second is revoked too')
  clock.tick(1000)
  const later = await login(app, { payload: { sub: 'alice' } })
  t.equal((await app.inject({ url: '/private', headers: { cookie: later.cookie } })).statusCode, 200, 'a login in a later second works')
})

test('the store check: once per request with a token, beside isRevoked, never without a token', async (t) => {
  const { store, calls } = instrumented()
  let isRevokedCalls = 0
  const app = await storeApp(t, { store, isRevoked: () => { isRevokedCalls++; return false } })
  app.get('/twice', async (request) => {
    await request.verifyToken()
    await request.verifyToken()
    return 'ok'
  })
  const { cookie } = await login(app)
  await app.inject({ url: '/twice', headers: { cookie } })
  t.same([calls.check, isRevokedCalls], [1, 1], 'one store round trip and one isRevoked call')
  await app.inject({ url: '/public', headers: { cookie } })
  t.same([calls.check, isRevokedCalls], [2, 2], 'public routes too')
  await app.inject({ url: '/public' })
  await app.inject({ url: '/private', headers: { cookie: 'token=garbage' } })
  t.equal(calls.check, 2, 'nothing for requests without a good token')
  await app.tokenCookie.revokeUser('alice')
  await app.inject({ url: '/twice', headers: { cookie } })
  t.same([calls.check, isRevokedCalls], [3, 2], 'a store revocation answers before isRevoked')
})

test('with a store, a token without a sid is INVALID', async (t) => {
  const app = await storeApp(t)
  const plain = await buildApp(t)
  plain.get('/no-sid', async (request, reply) => reply.setTokenCookie({ sub: 'x' }))
  // The same key, but a token with its sid removed: signed by a third app sharing the secret.
  const crafted = Fastify()
  t.teardown(() => crafted.close())
  await crafted.register((await import('@fastify/jwt')).default, { secret })
  const now = Math.floor(Date.now() / 1000)
  const token = crafted.jwt.sign({ sub: 'x', iat: now, exp: now + 60, auth_time: now })
  t.equal((await plain.inject({ url: '/private', headers: { cookie: `token=${token}` } })).statusCode, 200, 'accepted without a store')
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })).json().code, 'FST_TOKEN_COOKIE_INVALID')
})

test('a store that fails: 503 on protected routes, unauthenticated on public ones, cookie kept, logged once', async (t) => {
  const logs: Array<{ level: number, msg: string }> = []
  const { store, state } = instrumented()
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, store })
  app.get('/login', async (request, reply) => reply.setTokenCookie({ sub: 'alice' }))
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async () => 'secret')
  app.get('/public', async (request) => ({ user: request.tokenExpiry() === null ? null : 'someone' }))
  app.post('/logout', async (request, reply) => {
    await reply.clearTokenCookie()
    return 'bye'
  })
  const cookie = `token=${(await app.inject({ url: '/login' })).body}`
  state.failing = true
  for (let i = 0; i < 3; i++) {
    const protectedResponse = await app.inject({ url: '/private', headers: { cookie } })
    t.equal(protectedResponse.statusCode, 503)
    t.equal(protectedResponse.json().code, 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE')
    t.equal(protectedResponse.headers['set-cookie'], undefined, 'the cookie is kept')
    const publicResponse = await app.inject({ url: '/public', headers: { cookie } })
    t.same([publicResponse.statusCode, publicResponse.json()], [200, { user: null }], 'a public route goes on unauthenticated')
    t.equal(publicResponse.headers['set-cookie'], undefined)
  }
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(logout.statusCode, 503, 'logout tells the store is down')
  t.equal(tokenCookieOf(logout)?.value, '', 'but the cookie is cleared all the same')
  state.failing = false
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200, 'back by itself')
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  // Fastify's own error handler logs each 5xx response, as for any error; the plugin logs the outage once.
  const ours = logs.filter((line) => line.msg.startsWith('fastify-token-cookie'))
  t.same(ours.map((line) => [line.level, line.msg.replace(/;.*/, '')]), [
    [40, 'fastify-token-cookie: the revocation store is unavailable'],
    [30, 'fastify-token-cookie: the revocation store is back']
  ], 'one warning for the outage, one note for its end')
})

test('a store that hangs times out after storeTimeout; failOpen lets tokens through', async (t) => {
  const slow = instrumented()
  slow.state.hanging = true
  const app = await storeApp(t, { store: slow.store, storeTimeout: '50ms' })
  const { cookie } = await login(app)
  const began = performance.now()
  const response = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(response.json().code, 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE')
  // A store that hangs would leave the request unanswered (tap's timeout); the margin is for a loaded machine.
  t.ok(performance.now() - began < 10_000, 'answered after the timeout, not never')
  const open = instrumented()
  open.state.failing = true
  const openApp = await storeApp(t, { store: open.store, failOpen: true })
  const openLogin = await login(openApp)
  t.equal((await openApp.inject({ url: '/private', headers: { cookie: openLogin.cookie } })).statusCode, 200, 'failOpen: not revoked')
})

test('memoryStore: revocations expire with their ttl; revokeUser never moves back in time', async (t) => {
  const clock = fakeClock(t)
  const store = memoryStore()
  await store.revokeSession('s1', 60)
  await store.revokeUser('alice', 1000, 60)
  await store.revokeUser('alice', 900, 10)
  t.same(await store.check('s1', 'alice'), { sessionRevoked: true, userRevokedAt: 1000 })
  t.same(await store.check('s2', undefined), { sessionRevoked: false, userRevokedAt: undefined })
  clock.tick(60 * 1000)
  t.same(await store.check('s1', 'alice'), { sessionRevoked: false, userRevokedAt: undefined }, 'gone after the ttl')
  t.throws(() => memoryStore({ max: 0 }), TypeError)
})

test('memoryStore at max: drops what expires soonest, warns once', async (t) => {
  fakeClock(t)
  const warnings: string[] = []
  const store = memoryStore({ max: 10, onEvict: (message) => warnings.push(message) })
  for (let i = 0; i < 10; i++) await store.revokeSession(`s${i}`, 100 + i)
  await store.revokeSession('long', 1000)
  t.same(await store.check('s0', undefined), { sessionRevoked: false, userRevokedAt: undefined }, 'the soonest to expire went')
  t.same(await store.check('s1', undefined), { sessionRevoked: true, userRevokedAt: undefined })
  t.same(await store.check('long', undefined), { sessionRevoked: true, userRevokedAt: undefined })
  await store.revokeSession('another', 1000)
  t.equal(warnings.length, 1, 'warned once')
  t.match(warnings[0], /max 10/)
})

test('memoryStore warns through process warnings by default; store: true uses it', async (t) => {
  const seen: string[] = []
  const listener = (warning: Error): void => { seen.push(warning.message) }
  process.on('warning', listener)
  t.teardown(() => { process.off('warning', listener) })
  const store = memoryStore({ max: 1 })
  await store.revokeSession('a', 10)
  await store.revokeSession('b', 10)
  await new Promise((resolve) => setImmediate(resolve))
  t.match(seen, [/memoryStore is full/])
})

for (const [name, options, message] of [
  ['a store without its methods', { store: { check: async () => ({}) } }, /store/],
  ['a store of the wrong type', { store: 'redis' }, /store/],
  ['a bad storeTimeout', { store: true, storeTimeout: 'soon' }, /storeTimeout/],
  ['failOpen not a boolean', { store: true, failOpen: 'yes' }, /failOpen/]
] as const) {
  test(`registration fails: ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(tokenCookie, { secret, ...options } as unknown as TokenCookieOptions)
      await app.ready()
    }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message })
  })
}

test('store: false is no store', async (t) => {
  const app = await buildApp(t, { store: false })
  await t.rejects(app.tokenCookie.revokeUser('alice'), { code: 'FST_TOKEN_COOKIE_OPTIONS' })
  t.equal(start > 0, true)
})

test('logout without a good token revokes nothing; a non-string sub is not looked up as a user', async (t) => {
  const { store, calls } = instrumented()
  const app = await storeApp(t, { store })
  t.equal((await app.inject({ method: 'POST', url: '/logout-await' })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: 'token=a.b.c' } })).statusCode, 200)
  t.same(calls.revokeSession, [], 'no session to revoke')
  const numeric = await login(app, { payload: { sub: 42 } })
  await app.tokenCookie.revokeUser('42')
  t.equal((await app.inject({ url: '/private', headers: { cookie: numeric.cookie } })).statusCode, 200, 'revokeUser takes string subjects')
})

test('memoryStore at max first drops what has expired, without a warning', async (t) => {
  const clock = fakeClock(t)
  const warnings: string[] = []
  const store = memoryStore({ max: 2, onEvict: (message) => warnings.push(message) })
  await store.revokeSession('a', 1)
  await store.revokeSession('b', 1)
  clock.tick(2000)
  await store.revokeSession('c', 60)
  t.same(warnings, [])
  t.same(await store.check('c', undefined), { sessionRevoked: true, userRevokedAt: undefined })
})
