// The plugin beside an app's own @fastify/cookie and @fastify/jwt, registered before or after it.
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import tokenCookie from '../index.js'
import { secret, tokenCookieOf } from './helpers/app.js'

const appJwtSecret = 'the-app-own-jwt-secret-for-api-tokens'

function routes (app: FastifyInstance): void {
  app.get('/login', async (request, reply) => reply.setTokenCookie({ sub: 'alice' }))
  app.get('/private', async (request) => (await request.verifyToken()).sub)
  app.get('/api-token', async () => app.jwt.sign({ scope: 'api' }))
  app.get('/api', async (request) => {
    await request.jwtVerify()
    return request.user
  })
}

for (const order of ['before', 'after'] as const) {
  test(`the app's own @fastify/jwt registered ${order} the plugin keeps working`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    if (order === 'before') await app.register(fastifyJwt, { secret: appJwtSecret })
    await app.register(tokenCookie, { secret })
    if (order === 'after') await app.register(fastifyJwt, { secret: appJwtSecret })
    routes(app)
    const token = (await app.inject({ url: '/login' })).body
    t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })).body, 'alice', 'our cookie session')
    const apiToken = (await app.inject({ url: '/api-token' })).body
    const api = await app.inject({ url: '/api', headers: { authorization: `Bearer ${apiToken}` } })
    t.equal(api.statusCode, 200)
    t.equal(api.json().scope, 'api', 'the app\'s own JWTs')
    const crossed = await app.inject({ url: '/private', headers: { cookie: `token=${apiToken}` } })
    t.equal(crossed.json().code, 'FST_TOKEN_COOKIE_INVALID', 'the app\'s tokens are not our sessions')
    const crossedBack = await app.inject({ url: '/api', headers: { authorization: `Bearer ${token}` } })
    t.equal(crossedBack.statusCode, 401, 'and ours are not the app\'s')
  })
}

test('a pre-registered @fastify/cookie is used, its parse options do not leak into the token cookie', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie, { secret: 'cookie-signing-secret', parseOptions: { signed: true, domain: 'cookies.example', httpOnly: false } })
  await app.register(tokenCookie, { secret })
  app.get('/login', async (request, reply) => {
    reply.setCookie('theme', 'dark')
    return reply.setTokenCookie({ sub: 'alice' })
  })
  app.get('/private', async (request) => ({ sub: (await request.verifyToken()).sub, theme: request.unsignCookie(request.cookies.theme ?? '').value }))
  const response = await app.inject({ url: '/login' })
  const set = tokenCookieOf(response)!
  t.equal(set.value, response.body, 'the token cookie is not signed by @fastify/cookie')
  t.same(set.attributes, { 'max-age': '1800', path: '/', httponly: true, secure: true, samesite: 'Lax' }, 'no domain, still httpOnly')
  const theme = tokenCookieOf(response, 'theme')!
  t.match(theme.attributes, { domain: 'cookies.example' }, 'the app\'s own cookies keep its options')
  const me = await app.inject({ url: '/private', headers: { cookie: `token=${set.value}; theme=${theme.value}` } })
  t.same(me.json(), { sub: 'alice', theme: 'dark' })
})

test('registering the plugin twice in separate contexts with different cookie names', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(async (admin) => {
    await admin.register(tokenCookie, { secret: 'an-admin-secret-that-is-32-bytes!!', cookieName: 'admin' })
    admin.get('/admin/login', async (request, reply) => reply.setTokenCookie({ sub: 'root' }))
    admin.get('/admin', async (request) => (await request.verifyToken()).sub)
  })
  await app.ready()
  const token = (await app.inject({ url: '/admin/login' })).body
  t.equal((await app.inject({ url: '/admin', headers: { cookie: `admin=${token}` } })).body, 'root')
})
