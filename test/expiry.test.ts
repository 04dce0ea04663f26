// Visible expiry: request.tokenExpiry() and the readable `<cookieName>.exp` hint cookie.
import { createHmac } from 'node:crypto'
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie from '../index.js'
import { buildApp, claimsOf, fakeClock, login, pemKeys, secret, setCookies, start, tokenCookieOf } from './helpers/app.js'

const minutes = 60 * 1000
const startSeconds = start / 1000

async function expiryApp (t: Parameters<typeof buildApp>[0], options = {}) {
  const app = await buildApp(t, { expiryHint: true, ...options })
  app.get('/expiry', async (request) => ({ expiry: request.tokenExpiry() }))
  app.post('/login-expiry', async (request, reply) => {
    await reply.setTokenCookie({ sub: 'alice' }, (request.body ?? undefined) as never)
    return { expiry: request.tokenExpiry() }
  })
  app.post('/logout-expiry', async (request, reply) => {
    reply.clearTokenCookie()
    return { expiry: request.tokenExpiry() }
  })
  return app
}

test('a sliding login sets the hint cookie: e = exp, a = auth_time + absoluteMaxAge, not httpOnly, same attributes', async (t) => {
  fakeClock(t)
  const app = await expiryApp(t, { cookie: { domain: 'example.com', path: '/app', partitioned: true, sameSite: 'none', secure: true } })
  const response = await app.inject({ method: 'POST', url: '/login-expiry' })
  const token = tokenCookieOf(response)!
  const hint = tokenCookieOf(response, 'token.exp')!
  t.equal(hint.value, `e=${startSeconds + 1800}&a=${startSeconds + 12 * 3600}`, 'written as is, not percent-encoded')
  const fromHint = new URLSearchParams(hint.value)
  t.equal(Number(fromHint.get('e')), claimsOf(token.value).exp)
  const { httponly, ...tokenAttributes } = token.attributes
  t.equal(httponly, true)
  t.same(hint.attributes, tokenAttributes, 'Path, Domain, Secure, SameSite, Partitioned and Max-Age of the token cookie, without HttpOnly')
  t.same(response.json().expiry, { expiresAt: startSeconds + 1800, absoluteExpiresAt: startSeconds + 12 * 3600 })
})

test('session and persistent logins: a equals e', async (t) => {
  fakeClock(t)
  const app = await expiryApp(t)
  for (const [policy, maxAge, seconds] of [['session', '1h', 3600], ['persistent', '7d', 7 * 24 * 3600]] as const) {
    const response = await app.inject({ method: 'POST', url: '/login-expiry', payload: { policy, maxAge } })
    const hint = tokenCookieOf(response, 'token.exp')!
    t.equal(hint.value, `e=${startSeconds + seconds}&a=${startSeconds + seconds}`, policy)
    t.equal(hint.attributes['max-age'], policy === 'session' ? undefined : String(seconds), `${policy}: the token cookie's lifetime`)
    t.same(response.json().expiry, { expiresAt: startSeconds + seconds, absoluteExpiresAt: startSeconds + seconds })
  }
})

test('a renewal moves the hint and tokenExpiry() reports the renewed token', async (t) => {
  const clock = fakeClock(t)
  const app = await expiryApp(t)
  const { cookie } = await login(app)
  clock.tick(5 * minutes)
  const quiet = await app.inject({ url: '/expiry', headers: { cookie } })
  t.same(quiet.json().expiry, { expiresAt: startSeconds + 1800, absoluteExpiresAt: startSeconds + 12 * 3600 })
  t.equal(quiet.headers['set-cookie'], undefined, 'no renewal, no hint')
  clock.tick(10 * minutes)
  const renewed = await app.inject({ url: '/expiry', headers: { cookie } })
  const newExp = startSeconds + 15 * 60 + 1800
  t.same(renewed.json().expiry, { expiresAt: newExp, absoluteExpiresAt: startSeconds + 12 * 3600 })
  t.equal(tokenCookieOf(renewed, 'token.exp')!.value, `e=${newExp}&a=${startSeconds + 12 * 3600}`)
})

test('tokenExpiry() is null without a valid token, and after logout; the hint goes with the token', async (t) => {
  fakeClock(t)
  const app = await expiryApp(t)
  t.equal((await app.inject({ url: '/expiry' })).json().expiry, null, 'no token')
  const invalid = await app.inject({ url: '/expiry', headers: { cookie: 'token=abc.def.ghi' } })
  t.equal(invalid.json().expiry, null, 'invalid token')
  t.same(setCookies(invalid).map((set) => [set.name, set.value, set.attributes['max-age']]), [['token', '', '0'], ['token.exp', '', '0']], 'both cleared')
  const { cookie } = await login(app)
  const logout = await app.inject({ method: 'POST', url: '/logout-expiry', headers: { cookie } })
  t.equal(logout.json().expiry, null)
  t.same(setCookies(logout).map((set) => [set.name, set.value]), [['token', ''], ['token.exp', '']])
  const duplicate = await app.inject({ url: '/expiry', headers: { cookie: `${cookie}; ${cookie}` } })
  t.same(setCookies(duplicate).map((set) => set.name), ['token', 'token.exp'], 'duplicated cookies clear the hint too')
})

test('tokenExpiry() works without the hint, and the hint cookie is never read by the server', async (t) => {
  fakeClock(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  app.get('/login', async (request, reply) => {
    await reply.setTokenCookie({ sub: 'a' })
    return request.tokenExpiry()
  })
  app.get('/expiry', async (request) => ({ expiry: request.tokenExpiry() }))
  const response = await app.inject({ url: '/login' })
  t.same(setCookies(response).map((set) => set.name), ['token'], 'no hint unless asked for')
  t.same(response.json(), { expiresAt: startSeconds + 1800, absoluteExpiresAt: startSeconds + 12 * 3600 })
  const forged = await app.inject({ url: '/expiry', headers: { cookie: 'token.exp=e=9999999999&a=9999999999' } })
  t.equal(forged.json().expiry, null)
})

test('a renewal that would pass 4096 bytes is not sent; the current cookie stays valid', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  // A token near 4096 bytes signed with the app's key but not by setTokenCookie, so its Set-Cookie would not fit.
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const header = encode({ alg: 'HS256', typ: 'JWT' })
  let pad = 2900
  let token = ''
  do {
    const body = `${header}.${encode({ sub: 'big', pad: 'x'.repeat(pad++), iat: startSeconds, exp: startSeconds + 1800, auth_time: startSeconds })}`
    token = `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
  } while (token.length < 4090)
  clock.tick(20 * minutes)
  const response = await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['set-cookie'], undefined, 'no renewal sent')
})

test('ES384, ES512 keys pick their algorithm; keys that cannot sign JWTs fail registration', async (t) => {
  for (const [curve, algorithm] of [['P-384', 'ES384'], ['P-521', 'ES512']] as const) {
    const app = await buildApp(t, { secret: pemKeys('ec', curve) })
    const { token, cookie } = await login(app)
    t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, algorithm)
    t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  }
  for (const keys of [pemKeys('x25519'), pemKeys('ec', 'secp256k1')]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(tokenCookie, { secret: keys })
      await app.ready()
    }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /sign.algorithm/ })
  }
})

test('quoted and percent-encoded cookie values are read as the token', async (t) => {
  const app = await buildApp(t)
  const { token } = await login(app)
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token="${token}"` } })).statusCode, 200, 'quoted')
  const encoded = token.replace(/\./g, '%2E')
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${encoded}` } })).statusCode, 200, 'percent-encoded')
  const broken = await app.inject({ url: '/private', headers: { cookie: 'token=%E0%A4%A' } })
  t.equal(broken.json().code, 'FST_TOKEN_COOKIE_INVALID', 'a broken escape is an invalid token, not a 400')
  const spaced = await app.inject({ url: '/private', headers: { cookie: `a=1;token=${token} ;  b=2` } })
  t.equal(spaced.statusCode, 200, 'whitespace around pairs')
})
