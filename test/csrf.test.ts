// The cross-site request guard: unsafe requests carrying the cookie must come from this origin.
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import { buildApp, fakeClock, login, secret, tokenCookieOf } from './helpers/app.js'

async function guardedApp (t: Parameters<typeof buildApp>[0], options: Partial<TokenCookieOptions> = {}) {
  const app = await buildApp(t, options)
  const handled: string[] = []
  // GET also answers HEAD (Fastify's exposeHeadRoute).
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'GET', 'OPTIONS'] as const) {
    app.route({ method, url: '/action', handler: async (request) => { handled.push(request.method); return { ok: true } } })
  }
  app.post('/webhook', { config: { tokenCookie: { csrf: false } } }, async () => { handled.push('webhook'); return { ok: true } })
  const { cookie } = await login(app)
  return { app, cookie, handled }
}

const CROSS_SITE = 'FST_TOKEN_COOKIE_CROSS_SITE'

test('a cross-site POST with the cookie is a 403 before the handler, without logout or renewal', async (t) => {
  const clock = fakeClock(t)
  const { app, cookie, handled } = await guardedApp(t, { renewAfter: 0 })
  clock.tick(10 * 1000)
  for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }, { origin: 'null' }]) {
    const response = await app.inject({ method: 'POST', url: '/action', headers: { cookie, ...headers } })
    t.equal(response.statusCode, 403, JSON.stringify(headers))
    t.same(response.json(), { statusCode: 403, code: CROSS_SITE, error: 'Forbidden', message: 'Cross-site request refused: it carries the session cookie but does not come from this site' })
    t.equal(response.headers['set-cookie'], undefined, 'the cookie is neither cleared nor renewed')
  }
  t.same(handled, [], 'no handler ran')
})

test('same-origin requests pass: Sec-Fetch-Site same-origin or none, or no fetch metadata and no or our own Origin', async (t) => {
  const { app, cookie, handled } = await guardedApp(t)
  const allowed = [
    { 'sec-fetch-site': 'same-origin' },
    { 'sec-fetch-site': 'none' },
    {},
    { host: 'shop.example', origin: 'http://shop.example' },
    { host: 'shop.example', origin: 'http://shop.example:80' },
    { host: 'shop.example:8080', origin: 'http://SHOP.example:8080' }
  ]
  for (const headers of allowed) {
    t.equal((await app.inject({ method: 'POST', url: '/action', headers: { cookie, ...headers } })).statusCode, 200, JSON.stringify(headers))
  }
  t.equal(handled.length, allowed.length)
  const refused = [
    { host: 'shop.example', origin: 'https://shop.example' },
    { host: 'shop.example', origin: 'http://shop.example:8080' },
    { host: 'shop.example', origin: 'http://evil.shop.example' },
    { host: 'shop.example', origin: 'http://shop.example/path' },
    { host: 'shop.example', origin: 'not an origin' },
    { host: 'shop.example', origin: 'http://shop.example', 'sec-fetch-site': 'cross-site' }
  ]
  for (const headers of refused) {
    t.equal((await app.inject({ method: 'POST', url: '/action', headers: { cookie, ...headers } })).statusCode, 403, JSON.stringify(headers))
  }
})

test('behind a proxy, the request\'s own origin follows trustProxy', async (t) => {
  const app = Fastify({ trustProxy: true })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  app.post('/action', async () => ({ ok: true }))
  const cookie = 'token=x.y.z'
  const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example', cookie }
  t.equal((await app.inject({ method: 'POST', url: '/action', headers: { ...proxied, origin: 'https://app.example:443' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/action', headers: { ...proxied, origin: 'http://app.example' } })).statusCode, 403)
})

test('every unsafe method is guarded; GET, HEAD and OPTIONS are not', async (t) => {
  const { app, cookie, handled } = await guardedApp(t)
  const headers = { cookie, 'sec-fetch-site': 'cross-site' }
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    t.equal((await app.inject({ method, url: '/action', headers })).statusCode, 403, method)
  }
  for (const method of ['GET', 'HEAD', 'OPTIONS'] as const) {
    t.equal((await app.inject({ method, url: '/action', headers })).statusCode, 200, method)
  }
  t.same(handled, ['GET', 'HEAD', 'OPTIONS'])
})

test('the cookie is guarded valid or not, on any route, even one that does not exist', async (t) => {
  const { app } = await guardedApp(t)
  const headers = { 'sec-fetch-site': 'cross-site' }
  for (const cookie of ['token=garbage', 'token=a.b.c; token=d.e.f']) {
    const response = await app.inject({ method: 'POST', url: '/action', headers: { ...headers, cookie } })
    t.equal(response.json().code, CROSS_SITE, cookie)
    t.equal(response.headers['set-cookie'], undefined, 'a forged request cannot log anyone out')
  }
  t.equal((await app.inject({ method: 'POST', url: '/nowhere', headers: { ...headers, cookie: 'token=a.b.c' } })).statusCode, 403)
})

test('requests without the cookie, and bearer-authenticated requests, are not guarded', async (t) => {
  const { app, handled } = await guardedApp(t)
  t.equal((await app.inject({ method: 'POST', url: '/action', headers: { 'sec-fetch-site': 'cross-site', cookie: 'theme=dark' } })).statusCode, 200)
  const bearerApp = await guardedApp(t, { bearer: true })
  const { token } = await login(bearerApp.app)
  const response = await bearerApp.app.inject({
    method: 'POST',
    url: '/action',
    headers: { authorization: `Bearer ${token}`, cookie: bearerApp.cookie, 'sec-fetch-site': 'cross-site' }
  })
  t.equal(response.statusCode, 200, 'the Bearer header decides, and a cross-site page cannot set it')
  t.same(handled, ['POST'])
})

test('trustedOrigins widen the guard; csrf: false and a route opt-out turn it off', async (t) => {
  const trusted = await guardedApp(t, { csrf: { trustedOrigins: ['https://admin.example', 'http://localhost:3001'] } })
  for (const origin of ['https://admin.example', 'https://admin.example:443', 'http://localhost:3001']) {
    const response = await trusted.app.inject({ method: 'POST', url: '/action', headers: { cookie: trusted.cookie, origin, 'sec-fetch-site': 'cross-site' } })
    t.equal(response.statusCode, 200, origin)
  }
  const off = await guardedApp(t, { csrf: false })
  t.equal((await off.app.inject({ method: 'POST', url: '/action', headers: { cookie: off.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 200)
  const empty = await guardedApp(t, { csrf: {} })
  t.equal((await empty.app.inject({ method: 'POST', url: '/action', headers: { cookie: empty.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 403, 'csrf: {} is the default guard')
  const on = await guardedApp(t, { csrf: true })
  t.equal((await on.app.inject({ method: 'POST', url: '/action', headers: { cookie: on.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 403)
  t.equal((await on.app.inject({ method: 'POST', url: '/webhook', headers: { cookie: on.cookie, 'sec-fetch-site': 'cross-site' } })).statusCode, 200, 'route opt-out')
  t.same(on.handled, ['webhook'])
})

for (const [name, csrf] of [
  ['not an origin', { trustedOrigins: ['admin.example'] }],
  ['an origin with a path', { trustedOrigins: ['https://admin.example/app'] }],
  ['a trailing slash', { trustedOrigins: ['https://admin.example/'] }],
  ['null', { trustedOrigins: ['null'] }],
  ['a number', { trustedOrigins: [42] }],
  ['not a list', { trustedOrigins: 'https://admin.example' }],
  ['not an object', 'strict']
] as const) {
  test(`registration fails: csrf with ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(tokenCookie, { secret, csrf } as unknown as TokenCookieOptions)
      await app.ready()
    }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /csrf/ })
  })
}

test('a route that opts out of the guard renews like any other', async (t) => {
  const clock = fakeClock(t)
  const { app, cookie } = await guardedApp(t, { renewAfter: 0 })
  clock.tick(5000)
  const response = await app.inject({ method: 'POST', url: '/webhook', headers: { cookie, 'sec-fetch-site': 'cross-site' } })
  t.equal(response.statusCode, 200)
  t.ok(tokenCookieOf(response), 'an opted-out route behaves as any other: a 200 renews')
})
