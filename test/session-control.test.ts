// Session control: optional login, step-up (maxAuthAge), claim updates (updateTokenCookie), and cookie changes
// that never ride on a response a shared cache may store.
import { test } from 'tap'
import { memoryStore, type RevocationStore } from '../index.js'
import { buildApp, claimsOf, fakeClock, login, setCookies, tokenCookieOf } from './helpers/app.js'

const second = 1000
const minute = 60 * second

test('verifyToken({ optional: true }): the payload, or null for the 401 cases', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { isRevoked: (payload) => payload.sub === 'revoked' })
  app.get('/hello', async (request) => {
    const user = await request.verifyToken({ optional: true })
    return { hello: user === null ? 'guest' : user.sub }
  })
  const hello = async (cookie?: string) => await app.inject({ url: '/hello', ...(cookie === undefined ? {} : { headers: { cookie } }) })
  const alice = await login(app)
  t.same((await hello(alice.cookie)).json(), { hello: 'alice' }, 'a signed-in user')
  t.same((await hello()).json(), { hello: 'guest' }, 'no cookie')
  const invalid = await hello('token=not.a.token')
  t.same([invalid.statusCode, invalid.json()], [200, { hello: 'guest' }], 'an invalid cookie')
  t.equal(tokenCookieOf(invalid)?.attributes['max-age'], '0', 'and it is cleared')
  const revoked = await login(app, { payload: { sub: 'revoked' } })
  t.same((await hello(revoked.cookie)).json(), { hello: 'guest' }, 'a revoked token')
  clock.tick(31 * minute)
  t.same((await hello(alice.cookie)).json(), { hello: 'guest' }, 'an expired token')
})

test('verifyToken({ optional: true }) still rejects when the check itself failed', async (t) => {
  const failing: RevocationStore = { ...memoryStore(), check: async () => { throw new Error('down') } }
  const app = await buildApp(t, { store: failing, isRevoked: (payload) => { if (payload.sub === 'broken') throw new Error('broken check'); return false } })
  app.get('/hello', async (request) => ({ user: await request.verifyToken({ optional: true }) }))
  const { cookie } = await login(app)
  t.match((await app.inject({ url: '/hello', headers: { cookie } })).json(), { statusCode: 503, code: 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE' })
  const app2 = await buildApp(t, { isRevoked: (payload) => { if (payload.sub === 'broken') throw new Error('broken check'); return false } })
  app2.get('/hello', async (request) => ({ user: await request.verifyToken({ optional: true }) }))
  const broken = await login(app2, { payload: { sub: 'broken' } })
  t.match((await app2.inject({ url: '/hello', headers: { cookie: broken.cookie } })).json(), { statusCode: 500, message: 'broken check' })
})

test('verifyToken({ maxAuthAge }): REAUTH for an older login, the cookie kept; a new login passes', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { renewAfter: 1 })
  app.post('/email', async (request) => {
    const user = await request.verifyToken({ maxAuthAge: '5m' })
    return { changed: user.sub }
  })
  app.get('/optional-step-up', async (request) => ({ user: await request.verifyToken({ optional: true, maxAuthAge: 60 }) }))
  const first = await login(app)
  t.same((await app.inject({ method: 'POST', url: '/email', headers: { cookie: first.cookie } })).json(), { changed: 'alice' }, 'a fresh login passes')
  clock.tick(5 * minute)
  t.equal((await app.inject({ method: 'POST', url: '/email', headers: { cookie: first.cookie } })).statusCode, 200, 'exactly 5 minutes is not older')
  clock.tick(second)
  const refused = await app.inject({ method: 'POST', url: '/email', headers: { cookie: first.cookie } })
  t.match(refused.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_REAUTH' })
  t.same(setCookies(refused), [], 'the cookie is kept')
  t.equal((await app.inject({ url: '/private', headers: { cookie: first.cookie } })).statusCode, 200, 'the session goes on elsewhere')
  t.match((await app.inject({ url: '/optional-step-up', headers: { cookie: first.cookie } })).json(), { code: 'FST_TOKEN_COOKIE_REAUTH' }, 'optional does not turn REAUTH into null')
  t.same((await app.inject({ url: '/optional-step-up' })).json(), { user: null }, 'optional: no login is null')
  const again = await login(app)
  t.same((await app.inject({ method: 'POST', url: '/email', headers: { cookie: again.cookie } })).json(), { changed: 'alice' }, 'the new login passes')
})

test('verifyToken with bad options rejects with FST_TOKEN_COOKIE_OPTIONS', async (t) => {
  const app = await buildApp(t)
  app.get('/null', async (request) => await request.verifyToken(null as never))
  app.get('/bad', async (request) => await request.verifyToken((request.query as { kind: string }).kind === 'name' ? { maxAuthage: '5m' } as never : (request.query as { kind: string }).kind === 'type' ? { optional: 'yes' } as never : { maxAuthAge: 'soon' } as never))
  for (const [kind, message] of [['name', /maxAuthage is not an option: did you mean verifyToken options\.maxAuthAge/], ['type', /optional must be a boolean/], ['duration', /maxAuthAge must be a positive duration/]] as const) {
    t.match((await app.inject({ url: `/bad?kind=${kind}` })).json(), { statusCode: 500, code: 'FST_TOKEN_COOKIE_OPTIONS', message }, kind)
  }
  t.match((await app.inject({ url: '/null' })).json(), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /must be an object/ })
})

test('updateTokenCookie: new claims, same session and lifetime; a non-sliding login is never extended', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  app.post<{ Body: Record<string, unknown> }>('/update', async (request, reply) => ({ token: await reply.updateTokenCookie(request.body) }))
  for (const [policy, extends_] of [['sliding', true], ['persistent', false], ['session', false]] as const) {
    const { token, cookie } = await login(app, { login: { policy }, payload: { sub: 'alice', role: 'user' } })
    const before = claimsOf(token)
    clock.tick(10 * minute)
    const response = await app.inject({ method: 'POST', url: '/update', headers: { cookie }, payload: { sub: 'alice', role: 'admin', sid: 'forged', auth_time: 1, exp: 9e9, tc: { policy: 'persistent' } } })
    const updated = claimsOf(response.json().token)
    t.equal(tokenCookieOf(response)?.value, response.json().token, `${policy}: the cookie is set to the new token`)
    t.equal(updated.role, 'admin', `${policy}: the new claim`)
    t.same([updated.sid, updated.auth_time, updated.tc], [before.sid, before.auth_time, before.tc], `${policy}: same sid, auth_time and lifetime`)
    t.not(updated.jti, before.jti, `${policy}: a new jti`)
    t.equal(updated.iat, (before.iat as number) + 600, `${policy}: a new iat`)
    t.equal(updated.exp, extends_ ? (updated.iat as number) + 1800 : before.exp, extends_ ? 'sliding: exp moves as a renewal would' : `${policy}: exp kept`)
    t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${response.json().token}` } })).json().role, 'admin', `${policy}: the new token works`)
  }
})

test('updateTokenCookie rejects without a verified token, on bad claims and past the size limit; the last change wins', async (t) => {
  const app = await buildApp(t)
  app.post<{ Body: { claims: Record<string, unknown>, then?: string } }>('/update', async (request, reply) => {
    const token = await reply.updateTokenCookie(request.body.claims)
    if (request.body.then === 'clear') await reply.clearTokenCookie()
    return { token }
  })
  app.post('/update-array', async (_request, reply) => await reply.updateTokenCookie([] as never))
  t.match((await app.inject({ method: 'POST', url: '/update', payload: { claims: {} } })).json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_MISSING' })
  t.match((await app.inject({ method: 'POST', url: '/update', headers: { cookie: 'token=a.b.c' }, payload: { claims: {} } })).json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_INVALID' })
  const { cookie } = await login(app)
  t.match((await app.inject({ method: 'POST', url: '/update-array', headers: { cookie } })).json(), { statusCode: 500, message: /updateTokenCookie: the payload must be a plain object/ })
  const proto = await app.inject({ method: 'POST', url: '/update', headers: { cookie, 'content-type': 'application/json' }, payload: '{"claims":{"nested":{"constructor":{}}}}' })
  t.match(proto.json(), { statusCode: 500, message: /updateTokenCookie: the payload must not have __proto__, constructor or prototype keys/ })
  t.match((await app.inject({ method: 'POST', url: '/update', headers: { cookie }, payload: { claims: { big: 'x'.repeat(4000) } } })).json(), { statusCode: 500, code: 'FST_TOKEN_COOKIE_TOO_LARGE' })
  const cleared = await app.inject({ method: 'POST', url: '/update', headers: { cookie }, payload: { claims: { sub: 'alice' }, then: 'clear' } })
  t.same(setCookies(cleared).map((set) => set.attributes['max-age']), ['0'], 'an update then a logout: the logout wins')
})

test('every response that carries the plugin\'s cookie is private: public removed, private or no-store kept', async (t) => {
  const app = await buildApp(t)
  app.post<{ Querystring: { cc?: string } }>('/login-cc', async (request, reply) => {
    if (request.query.cc !== undefined) reply.header('cache-control', request.query.cc)
    return { token: await reply.setTokenCookie({ sub: 'alice' }) }
  })
  const cacheControl = async (cc?: string) => (await app.inject({ method: 'POST', url: `/login-cc${cc === undefined ? '' : `?cc=${encodeURIComponent(cc)}`}` })).headers['cache-control']
  t.equal(await cacheControl(), 'private')
  t.equal(await cacheControl('public, max-age=60'), 'max-age=60, private')
  t.equal(await cacheControl('PUBLIC, s-maxage=60'), 's-maxage=60, private')
  t.equal(await cacheControl('private, max-age=60'), 'private, max-age=60')
  t.equal(await cacheControl('no-store'), 'no-store')
  const logout = await app.inject({ method: 'POST', url: '/logout' })
  t.equal(logout.headers['cache-control'], 'private', 'logout')
  t.equal((await app.inject({ url: '/public' })).headers['cache-control'], undefined, 'a response without the plugin\'s cookie is left alone')
})

test('a renewal or a clearing never rides on a 304 or a response the app made public; explicit changes always go', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  app.get<{ Querystring: { as: string } }>('/feed', async (request, reply) => {
    if (request.query.as === '304') return await reply.code(304).send()
    reply.header('cache-control', request.query.as === 'public' ? 'public, max-age=60' : 's-maxage=60')
    return { feed: [] }
  })
  app.get('/feed-login', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    await reply.setTokenCookie({ sub: 'bob' })
    return { ok: true }
  })
  const { cookie } = await login(app)
  clock.tick(16 * minute)
  for (const as of ['304', 'public', 's-maxage']) {
    const response = await app.inject({ url: `/feed?as=${as}`, headers: { cookie } })
    t.same(setCookies(response), [], `${as}: no renewal`)
    t.equal(response.headers['cache-control'], as === '304' ? undefined : as === 'public' ? 'public, max-age=60' : 's-maxage=60', `${as}: the app's Cache-Control as it was`)
  }
  const later = await app.inject({ url: '/private', headers: { cookie } })
  t.ok(tokenCookieOf(later)?.value, 'the renewal goes out with a later response')
  t.equal(later.headers['cache-control'], 'private')
  const bad = await app.inject({ url: '/feed?as=public', headers: { cookie: 'token=a.b.c' } })
  t.same(setCookies(bad), [], 'a refused cookie is not cleared on a public response')
  t.equal(tokenCookieOf(await app.inject({ url: '/public', headers: { cookie: 'token=a.b.c' } }))?.attributes['max-age'], '0', 'but on the next one')
  const explicit = await app.inject({ url: '/feed-login' })
  t.ok(tokenCookieOf(explicit)?.value, 'a login always goes')
  t.equal(explicit.headers['cache-control'], 'max-age=60, private', 'and makes the response private')
})
