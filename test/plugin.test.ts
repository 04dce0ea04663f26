// The plugin through Fastify: policies over time (fake clock), decorators, the hook, bearer, isRevoked, cookie attributes.
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie from '../index.js'
import { buildApp, claimsOf, fakeClock, login, pemKeys, secret, setCookies, start, tokenCookieOf } from './helpers/app.js'

const seconds = 1000
const minutes = 60 * seconds
const hours = 60 * minutes
const startSeconds = start / 1000

test('login with the defaults: a strict, sliding, 30-minute cookie whose token is also returned', async (t) => {
  fakeClock(t)
  const app = await buildApp(t)
  const { response, token } = await login(app)
  const cookie = tokenCookieOf(response)!
  t.same(cookie.attributes, { 'max-age': '1800', path: '/', httponly: true, secure: true, samesite: 'Lax' })
  t.equal(response.json().access_token, token, 'setTokenCookie resolves to the token')
  t.match(claimsOf(token), { sub: 'alice', iat: startSeconds, exp: startSeconds + 1800, auth_time: startSeconds })
  const me = await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })
  t.equal(me.statusCode, 200)
  t.match(me.json(), { sub: 'alice', iat: startSeconds, exp: startSeconds + 1800, auth_time: startSeconds }, 'request.user is the payload')
})

test('session policy: browser-session cookie, exp = iat + maxAge, never renewed, expired at exp', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { policy: 'session', maxAge: '1h', renewAfter: 0 })
  const { response, cookie, token } = await login(app)
  const set = tokenCookieOf(response)!
  t.notOk('max-age' in set.attributes, 'no Max-Age')
  t.notOk('expires' in set.attributes, 'no Expires')
  t.equal(claimsOf(token).exp, startSeconds + 3600)
  clock.tick(59 * minutes)
  const late = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(late.statusCode, 200)
  t.equal(tokenCookieOf(late), undefined, 'not renewed, even with renewAfter 0')
  clock.tick(1 * minutes)
  const expired = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'FST_TOKEN_COOKIE_EXPIRED')
  t.equal(tokenCookieOf(expired)?.attributes['max-age'], '0', 'the expired cookie is cleared')
})

test('persistent policy: Max-Age = maxAge, never renewed, expired at exp', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { policy: 'persistent', maxAge: '7d', renewAfter: 0 })
  const { response, cookie, token } = await login(app)
  t.equal(tokenCookieOf(response)!.attributes['max-age'], String(7 * 24 * 3600))
  t.equal(claimsOf(token).exp, startSeconds + 7 * 24 * 3600)
  clock.tick(7 * 24 * hours - 1 * seconds)
  const late = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(late.statusCode, 200, 'valid past the sliding defaults: absoluteMaxAge does not apply')
  t.equal(tokenCookieOf(late), undefined, 'never renewed')
  clock.tick(1 * seconds)
  const expired = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(expired.json().code, 'FST_TOKEN_COOKIE_EXPIRED')
})

test('sliding policy: renewed once half the idle window has passed, keeping claims and auth_time', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie, token } = await login(app, { payload: { sub: 'alice', role: 'admin' } })
  clock.tick(15 * minutes - 1 * seconds)
  const before = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(before.statusCode, 200)
  t.equal(tokenCookieOf(before), undefined, 'before the threshold: no renewal')
  clock.tick(1 * seconds)
  const at = await app.inject({ url: '/private', headers: { cookie } })
  const renewed = tokenCookieOf(at)
  t.ok(renewed, 'at the threshold: renewed')
  t.equal(renewed!.attributes['max-age'], '1800', 'Max-Age is the time left until the new exp')
  t.match(renewed!.attributes, { httponly: true, secure: true, samesite: 'Lax', path: '/' })
  const claims = claimsOf(renewed!.value)
  const original = claimsOf(token)
  t.equal(claims.iat, startSeconds + 15 * 60, 'new iat')
  t.equal(claims.exp, startSeconds + 45 * 60, 'new exp')
  t.equal(claims.auth_time, original.auth_time, 'auth_time kept')
  t.equal(claims.role, 'admin', 'claims kept')
  t.same(claims.tc, original.tc, 'policy kept')
  const old = await app.inject({ url: '/public', headers: { cookie } })
  t.equal(old.statusCode, 200, 'the old token stays valid until its own exp')
})

test('sliding policy: expires after the idle window without activity', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie } = await login(app)
  clock.tick(30 * minutes)
  const response = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'FST_TOKEN_COOKIE_EXPIRED')
})

test('sliding policy: a session that keeps renewing ends at auth_time + absoluteMaxAge', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  let { cookie } = await login(app)
  let renewals = 0
  let lastExp = 0
  // Activity every 20 minutes, for 13 hours.
  for (let elapsed = 20; elapsed <= 13 * 60; elapsed += 20) {
    clock.tick(20 * minutes)
    const response = await app.inject({ url: '/private', headers: { cookie } })
    if (response.statusCode !== 200) {
      t.equal(response.json().code, 'FST_TOKEN_COOKIE_EXPIRED')
      t.equal(elapsed, 12 * 60, 'ends exactly at the 12-hour cap')
      t.equal(lastExp, startSeconds + 12 * 3600, 'the last renewal was capped')
      break
    }
    const renewed = tokenCookieOf(response)
    if (renewed) {
      renewals++
      lastExp = claimsOf(renewed.value).exp as number
      t.ok(lastExp <= startSeconds + 12 * 3600, 'no renewal passes the cap')
      t.equal(Number(renewed.attributes['max-age']), lastExp - (start + elapsed * minutes) / 1000, 'Max-Age = time left until exp')
      cookie = `token=${renewed.value}`
    }
  }
  t.equal(renewals, 12 * 3 - 1, 'renewed on every request until the cap stopped moving exp')
})

test('sessionCookie: a sliding browser-session cookie, no Max-Age on login or renewal', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { sessionCookie: true })
  const { response, cookie } = await login(app)
  t.notOk('max-age' in tokenCookieOf(response)!.attributes)
  clock.tick(20 * minutes)
  const renewed = tokenCookieOf(await app.inject({ url: '/private', headers: { cookie } }))
  t.ok(renewed, 'still slides server-side')
  t.notOk('max-age' in renewed!.attributes)
  t.notOk('expires' in renewed!.attributes)
})

test('remember me: a persistent login on a sliding app keeps its policy and is never renewed', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { response, cookie, token } = await login(app, { login: { policy: 'persistent', maxAge: '30d' } })
  t.equal(tokenCookieOf(response)!.attributes['max-age'], String(30 * 24 * 3600))
  t.equal(claimsOf(token).exp, startSeconds + 30 * 24 * 3600)
  clock.tick(20 * 24 * hours)
  const later = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(later.statusCode, 200, 'past the app\'s 12-hour absolute cap: persistent ignores it')
  t.equal(tokenCookieOf(later), undefined, 'never renewed')
})

test('a session login on a sliding app is never renewed', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { response, cookie } = await login(app, { login: { policy: 'session' } })
  t.notOk('max-age' in tokenCookieOf(response)!.attributes)
  clock.tick(20 * minutes)
  const later = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(later.statusCode, 200)
  t.equal(tokenCookieOf(later), undefined)
})

test('a login\'s own maxAge sets its renewal threshold and idle window', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie, token } = await login(app, { login: { maxAge: '10m', absoluteMaxAge: '1h' } })
  t.equal(claimsOf(token).exp, startSeconds + 600)
  clock.tick(5 * minutes)
  const renewed = tokenCookieOf(await app.inject({ url: '/private', headers: { cookie } }))
  t.equal(claimsOf(renewed!.value).exp, startSeconds + 900, 'renewed at half of its own 10 minutes')
  t.equal(renewed!.attributes['max-age'], '600')
})

test('a login override that breaks the sliding rules is rejected with FST_TOKEN_COOKIE_OPTIONS', async (t) => {
  fakeClock(t)
  const app = await buildApp(t)
  const tooLong = await app.inject({ method: 'POST', url: '/login', payload: { login: { maxAge: '1d' } } })
  t.equal(tooLong.json().code, 'FST_TOKEN_COOKIE_OPTIONS', 'a sliding maxAge beyond the absolute cap')
  t.match(tooLong.json().message, /absoluteMaxAge/)
  t.equal(tokenCookieOf(tooLong), undefined, 'no cookie set')
  const badPolicy = await app.inject({ method: 'POST', url: '/login', payload: { login: { policy: 'forever' } } })
  t.equal(badPolicy.json().code, 'FST_TOKEN_COOKIE_OPTIONS')
})

test('the plugin owns iat, exp, auth_time and the lifetime claim: a payload cannot set them', async (t) => {
  fakeClock(t)
  const app = await buildApp(t)
  const { token } = await login(app, { payload: { sub: 'mallory', iat: 1, exp: 9999999999, auth_time: 1, tc: { policy: 'persistent' } } })
  t.match(claimsOf(token), { sub: 'mallory', iat: startSeconds, exp: startSeconds + 1800, auth_time: startSeconds, tc: { policy: 'sliding' } })
})

test('setTokenCookie rejects payloads that are not plain objects', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  const results: string[] = []
  app.get('/', async (request, reply) => {
    for (const payload of [null, [], 'alice', 42, JSON.parse('{"__proto__":{"admin":true}}'), { a: { constructor: 1 } }, { b: [{ prototype: 1 }] }]) {
      try {
        await reply.setTokenCookie(payload)
        results.push('accepted')
      } catch (error) {
        results.push((error as Error).name)
      }
    }
    try {
      await reply.setTokenCookie({ sub: 'a' }, 'persistent' as never)
    } catch (error) {
      results.push((error as Error).name)
    }
    return results
  })
  const response = await app.inject({ url: '/' })
  t.same(response.json(), Array(8).fill('TypeError'))
  t.equal(tokenCookieOf(response), undefined)
})

test('routes with renew: false never extend the session', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie } = await login(app)
  clock.tick(20 * minutes)
  const poll = await app.inject({ url: '/poll', headers: { cookie } })
  t.equal(poll.statusCode, 200)
  t.equal(tokenCookieOf(poll), undefined, 'the poll does not renew')
  const active = await app.inject({ url: '/private', headers: { cookie } })
  t.ok(tokenCookieOf(active), 'another route does')
})

test('public routes renew too, and requests without a token pass untouched', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie } = await login(app)
  clock.tick(20 * minutes)
  t.ok(tokenCookieOf(await app.inject({ url: '/public', headers: { cookie } })), 'renewed on a public route')
  const anonymous = await app.inject({ url: '/public' })
  t.equal(anonymous.statusCode, 200)
  t.equal(anonymous.headers['set-cookie'], undefined)
})

test('verifyToken without a token: 401 FST_TOKEN_COOKIE_MISSING in Fastify\'s error shape', async (t) => {
  const app = await buildApp(t)
  for (const headers of [{}, { cookie: 'token=' }, { cookie: 'other=1' }]) {
    const response = await app.inject({ url: '/private', headers })
    t.equal(response.statusCode, 401)
    t.same(response.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_MISSING', error: 'Unauthorized', message: 'No token on the request' })
    t.equal(response.headers['set-cookie'], undefined, 'nothing to clear')
  }
})

test('the error codes are exported for instanceof checks', async (t) => {
  const app = await buildApp(t)
  const { TokenMissingError } = await import('../index.js')
  app.get('/check', async (request) => {
    try {
      await request.verifyToken()
      return 'verified'
    } catch (error) {
      return error instanceof TokenMissingError
    }
  })
  t.equal((await app.inject({ url: '/check' })).body, 'true')
})

test('isRevoked: runs once per request carrying a token, public routes included', async (t) => {
  const calls: string[] = []
  const revoked = new Set<string>()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, {
    secret,
    isRevoked: async (payload, request) => {
      calls.push(`${String(payload.sub)} ${request.url}`)
      return revoked.has(String(payload.sub))
    }
  })
  app.post('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: (request.body as { sub: string }).sub }) }))
  app.get('/twice', async (request) => {
    await request.verifyToken()
    const payload = await request.verifyToken()
    return payload.sub
  })
  app.get('/public', async () => 'ok')
  const token = (await app.inject({ method: 'POST', url: '/login', payload: { sub: 'bob' } })).json().token
  const cookie = `token=${token}`
  t.equal((await app.inject({ url: '/twice', headers: { cookie } })).body, 'bob')
  t.same(calls, ['bob /twice'], 'once, although verifyToken ran twice')
  await app.inject({ url: '/public', headers: { cookie } })
  await app.inject({ url: '/public' })
  t.same(calls, ['bob /twice', 'bob /public'], 'on public routes too, never without a token')
  revoked.add('bob')
  const rejected = await app.inject({ url: '/twice', headers: { cookie } })
  t.equal(rejected.statusCode, 401)
  t.equal(rejected.json().code, 'FST_TOKEN_COOKIE_REVOKED')
  t.equal(tokenCookieOf(rejected)?.attributes['max-age'], '0', 'a revoked cookie is cleared')
  const publicRevoked = await app.inject({ url: '/public', headers: { cookie } })
  t.equal(publicRevoked.statusCode, 200, 'a public route goes on unauthenticated')
  t.equal(tokenCookieOf(publicRevoked)?.value, '')
})

test('each request gets its own payload: what one request changes in it, no other request sees', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const seenByIsRevoked: unknown[] = []
  await app.register(tokenCookie, { secret, isRevoked: (payload) => { seenByIsRevoked.push(payload); return false } })
  app.post('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: 'carol', roles: ['user'], profile: { tier: 'free' } }) }))
  app.get('/meddle', async (request) => {
    const payload = await request.verifyToken<{ sub: string, roles: string[], profile: { tier: string } }>()
    t.equal(payload, request.user, 'verifyToken resolves to request.user')
    t.equal(payload, seenByIsRevoked.at(-1), 'isRevoked saw the same object')
    payload.roles.push('admin')
    payload.profile.tier = 'gold'
    payload.sub = 'mallory'
    return payload
  })
  const token = (await app.inject({ method: 'POST', url: '/login' })).json().token
  const headers = { cookie: `token=${token}` }
  t.match((await app.inject({ url: '/meddle', headers })).json(), { sub: 'mallory', roles: ['user', 'admin'], profile: { tier: 'gold' } })
  t.match((await app.inject({ url: '/meddle', headers })).json(), { sub: 'mallory', roles: ['user', 'admin'], profile: { tier: 'gold' } },
    'the next request started from the token\'s own claims again')
  t.not(seenByIsRevoked[0], seenByIsRevoked[1], 'a new copy per request')
})

test('isRevoked that throws or rejects fails the request with its error, never as "not revoked"', async (t) => {
  for (const failure of ['throw', 'reject'] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(tokenCookie, {
      secret,
      isRevoked: failure === 'throw'
        ? () => { throw Object.assign(new Error('revocation list down'), { statusCode: 503 }) }
        : async () => { throw Object.assign(new Error('revocation list down'), { statusCode: 503 }) }
    })
    app.post('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: 'a' }) }))
    app.get('/public', async () => 'ok')
    const token = (await app.inject({ method: 'POST', url: '/login' })).json().token
    const response = await app.inject({ url: '/public', headers: { cookie: `token=${token}` } })
    t.equal(response.statusCode, 503, `${failure}: the request fails`)
    t.equal(response.json().message, 'revocation list down')
    t.equal(tokenCookieOf(response), undefined, `${failure}: the cookie is not cleared`)
  }
})

test('clearTokenCookie expires the cookie with the Path and Domain it was set with', async (t) => {
  const app = await buildApp(t, { cookie: { domain: 'example.com', path: '/app' } })
  const { response, cookie } = await login(app)
  t.match(tokenCookieOf(response)!.attributes, { domain: 'example.com', path: '/app' })
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  const cleared = tokenCookieOf(logout)!
  t.equal(cleared.value, '')
  t.match(cleared.attributes, { domain: 'example.com', path: '/app', 'max-age': '0', httponly: true, secure: true, samesite: 'Lax' })
  t.equal(setCookies(logout).length, 1, 'one Set-Cookie: no renewal beside it')
})

test('clearTokenCookie cancels a renewal that was due on the same request', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { cookie } = await login(app)
  clock.tick(20 * minutes)
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  const tokens = setCookies(logout).filter((set) => set.name === 'token')
  t.equal(tokens.length, 1)
  t.equal(tokens[0].value, '', 'only the clearing cookie is sent')
})

test('the last of setTokenCookie and clearTokenCookie in a request wins', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  app.get('/set-then-clear', async (request, reply) => {
    await reply.setTokenCookie({ sub: 'a' })
    reply.clearTokenCookie()
    return 'ok'
  })
  app.get('/clear-then-set', async (request, reply) => {
    reply.clearTokenCookie()
    await reply.setTokenCookie({ sub: 'b' })
    return 'ok'
  })
  const cleared = setCookies(await app.inject({ url: '/set-then-clear' }))
  t.equal(cleared.length, 1)
  t.equal(cleared[0].value, '')
  const set = setCookies(await app.inject({ url: '/clear-then-set' }))
  t.equal(set.length, 1)
  t.equal(claimsOf(set[0].value).sub, 'b')
})

test('a cookie change made by a hook that runs after the plugin\'s onSend is still written, and wins', async (t) => {
  fakeClock(t)
  const app = await buildApp(t)
  // Added after the plugin: runs after its onSend, which has written this request's cookie change already.
  app.addHook('onSend', async (request, reply) => {
    if (request.headers['x-late'] === 'login') await reply.setTokenCookie({ sub: 'late' })
    if (request.headers['x-late'] === 'logout') await reply.clearTokenCookie()
  })
  const late = await app.inject({ url: '/public', headers: { 'x-late': 'login' } })
  const set = tokenCookieOf(late)
  t.equal(claimsOf(set!.value).sub, 'late', 'the late login is written')
  const { cookie } = await login(app)
  const loggedOut = await app.inject({ method: 'POST', url: '/logout', headers: { cookie, 'x-late': 'login' } })
  t.same(setCookies(loggedOut).map(({ name, value }) => [name, value === '' ? 'cleared' : claimsOf(value).sub]), [['token', 'cleared'], ['token', 'late']],
    'the route\'s logout, then the later login: browsers keep the last')
  const relogged = await app.inject({ method: 'POST', url: '/login', headers: { 'x-late': 'logout' } })
  t.same(setCookies(relogged).map(({ value }) => value === '' ? 'cleared' : 'set'), ['set', 'cleared'], 'a late logout after a login')
})

test('a bad cookie\'s clearing lines stay the same, whatever other cookies a response sets', async (t) => {
  const app = await buildApp(t)
  app.get('/other-cookies', async (request, reply) => {
    reply.header('set-cookie', 'theme=dark')
    reply.setCookie('lang', 'en')
    return { ok: true }
  })
  const cookie = 'token=garbage.garbage.garbage'
  const first = await app.inject({ url: '/other-cookies', headers: { cookie } })
  t.same(setCookies(first).map(({ name }) => name).sort(), ['lang', 'theme', 'token'])
  for (let i = 0; i < 3; i++) {
    const next = await app.inject({ url: '/public', headers: { cookie } })
    t.same(setCookies(next).map(({ name, value }) => `${name}=${value}`), ['token='], `request ${i + 2}: only the clearing line`)
  }
})

test('setTokenCookie throws FST_TOKEN_COOKIE_TOO_LARGE past 4096 bytes of Set-Cookie', async (t) => {
  const app = await buildApp(t)
  let size = 2000
  let lastHeaderLength = 0
  let error: { code: string, message: string, statusCode: number } | undefined
  for (; size < 4000 && error === undefined; size += 1) {
    const response = await app.inject({ method: 'POST', url: '/login', payload: { payload: { pad: 'x'.repeat(size) } } })
    if (response.statusCode === 200) {
      lastHeaderLength = Buffer.byteLength([response.headers['set-cookie']].flat()[0] as string)
    } else {
      error = response.json()
      t.equal(tokenCookieOf(response), undefined, 'no cookie written')
    }
  }
  t.ok(lastHeaderLength <= 4096 && lastHeaderLength > 4090, `the largest accepted cookie is ${lastHeaderLength} bytes`)
  t.equal(error?.statusCode, 500)
  t.equal(error?.code, 'FST_TOKEN_COOKIE_TOO_LARGE')
  t.match(error?.message, /409[7-9] bytes|41\d\d bytes/)
})

test('a __Host- cookie is always Secure, Path=/ and without Domain', async (t) => {
  const app = await buildApp(t, { cookieName: '__Host-session', cookie: { domain: 'example.com', path: '/app', secure: 'auto' } })
  const response = await app.inject({ method: 'POST', url: '/login' })
  const set = tokenCookieOf(response, '__Host-session')!
  t.same(set.attributes, { 'max-age': '1800', path: '/', httponly: true, secure: true, samesite: 'Lax' })
  const me = await app.inject({ url: '/private', headers: { cookie: `__Host-session=${set.value}` } })
  t.equal(me.statusCode, 200)
})

test('secure: \'auto\' sets Secure only when the request came over HTTPS', async (t) => {
  const app = Fastify({ trustProxy: true })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, cookie: { secure: 'auto' } })
  app.get('/login', async (request, reply) => reply.setTokenCookie({ sub: 'a' }))
  const plain = tokenCookieOf(await app.inject({ url: '/login' }))!
  t.notOk('secure' in plain.attributes, 'http: no Secure')
  const https = tokenCookieOf(await app.inject({ url: '/login', headers: { 'x-forwarded-proto': 'https' } }))!
  t.equal(https.attributes.secure, true, 'https: Secure')
})

test('loosened cookie attributes are written as configured', async (t) => {
  const app = await buildApp(t, { cookie: { httpOnly: false, sameSite: 'strict', secure: false, partitioned: false } })
  const set = tokenCookieOf(await app.inject({ method: 'POST', url: '/login' }))!
  t.same(set.attributes, { 'max-age': '1800', path: '/', samesite: 'Strict' })
})

test('bearer: the header authenticates, wins over the cookie, and is never renewed through a cookie', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { bearer: true })
  const { token } = await login(app, { payload: { sub: 'header' } })
  const { cookie } = await login(app, { payload: { sub: 'cookie' } })
  const viaHeader = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
  t.equal(viaHeader.json().sub, 'header')
  const both = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}`, cookie } })
  t.equal(both.json().sub, 'header', 'the header wins')
  clock.tick(20 * minutes)
  const due = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
  t.equal(due.statusCode, 200)
  t.equal(due.headers['set-cookie'], undefined, 'no renewal cookie for a header token')
  const bad = await app.inject({ url: '/private', headers: { authorization: 'Bearer nope', cookie } })
  t.equal(bad.json().code, 'FST_TOKEN_COOKIE_INVALID', 'a bad header token is not rescued by the cookie')
  t.equal(bad.headers['set-cookie'], undefined, 'and the good cookie is not cleared')
})

test('bearer off (default): the Authorization header is ignored', async (t) => {
  const app = await buildApp(t)
  const { token } = await login(app)
  const response = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
  t.equal(response.json().code, 'FST_TOKEN_COOKIE_MISSING')
})

test('sign and verify options: issuer and audience are set and enforced', async (t) => {
  const app = await buildApp(t, {
    sign: { iss: 'https://auth.example', aud: 'app' },
    verify: { allowedIss: 'https://auth.example', allowedAud: 'app' }
  })
  const { token, cookie } = await login(app)
  t.match(claimsOf(token), { iss: 'https://auth.example', aud: 'app' })
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  const other = await buildApp(t, { sign: { iss: 'https://other.example', aud: 'app' } })
  const foreign = await login(other)
  const response = await app.inject({ url: '/private', headers: { cookie: foreign.cookie } })
  t.equal(response.json().code, 'FST_TOKEN_COOKIE_INVALID', 'another issuer, same key')
})

test('allowedSub requires a sub claim; payloads with a null prototype are accepted', async (t) => {
  const app = await buildApp(t, { verify: { allowedSub: 'alice' } })
  app.get('/null-prototype', async (request, reply) => reply.setTokenCookie(Object.assign(Object.create(null), { sub: 'alice' })))
  const alice = await login(app, { payload: { sub: 'alice' } })
  t.equal((await app.inject({ url: '/private', headers: { cookie: alice.cookie } })).statusCode, 200)
  const anonymous = await login(app, { payload: { name: 'nobody' } })
  t.equal((await app.inject({ url: '/private', headers: { cookie: anonymous.cookie } })).json().code, 'FST_TOKEN_COOKIE_INVALID')
  t.equal(claimsOf((await app.inject({ url: '/null-prototype' })).body).sub, 'alice')
})

const keyPairs = { RS256: pemKeys('rsa'), ES256: pemKeys('ec', 'P-256'), EdDSA: pemKeys('ed25519') }

for (const [algorithm, keys] of Object.entries(keyPairs)) {
  test(`${algorithm} key pairs sign and verify, with the algorithm taken from the key`, async (t) => {
    const clock = fakeClock(t)
    const app = await buildApp(t, { secret: keys })
    const { token, cookie } = await login(app)
    t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, algorithm)
    t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
    clock.tick(20 * minutes)
    t.ok(tokenCookieOf(await app.inject({ url: '/private', headers: { cookie } })), 'renews')
  })
}

test('PS256 signs with an RSA key when asked for; rsa-pss keys, which fast-jwt cannot load, fail registration', async (t) => {
  const app = await buildApp(t, { secret: pemKeys('rsa'), sign: { algorithm: 'PS256' } })
  const { token, cookie } = await login(app)
  t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, 'PS256')
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  const pss = Fastify()
  t.teardown(() => pss.close())
  await t.rejects(async () => {
    await pss.register(tokenCookie, { secret: pemKeys('rsa-pss') })
    await pss.ready()
  }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /rsa-pss/ })
})

test('no renewal with a 4xx or 5xx response', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { renewAfter: 0 })
  app.get('/fails', async () => { throw new Error('boom') })
  app.get('/forbidden', async (request, reply) => reply.code(403).send({ no: true }))
  const { cookie } = await login(app)
  clock.tick(10 * seconds)
  for (const url of ['/fails', '/forbidden', '/missing-route']) {
    const response = await app.inject({ url, headers: { cookie } })
    t.ok(response.statusCode >= 400, url)
    t.equal(response.headers['set-cookie'], undefined, `${url}: no renewal`)
  }
  t.ok(tokenCookieOf(await app.inject({ url: '/public', headers: { cookie } })), 'a 200 renews')
})

test('verifyToken works from a hook that runs before the plugin\'s own', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: unknown[] = []
  // Added before the plugin registers its onRequest hook, so it runs first.
  app.addHook('onRequest', async (request) => {
    if (request.url === '/login') return
    seen.push(await request.verifyToken().then((payload) => payload.sub, (error: { code: string }) => error.code))
  })
  await app.register(tokenCookie, { secret, isRevoked: () => { seen.push('isRevoked'); return false } })
  app.get('/login', async (request, reply) => reply.setTokenCookie({ sub: 'early' }))
  app.get('/private', async (request) => (await request.verifyToken()).sub)
  const token = (await app.inject({ url: '/login' })).body
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })).body, 'early')
  await app.inject({ url: '/private' })
  t.same(seen, ['isRevoked', 'early', 'FST_TOKEN_COOKIE_MISSING'], 'verified once, shared with the plugin\'s hook')
})
