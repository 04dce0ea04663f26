// Registration: misspelled and unknown options fail with the closest known name; Fastify's own registration
// options pass; a second registration says so. And the plugin works for routes of every context.
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import { login, secret } from './helpers/app.js'

async function register (options: Record<string, unknown>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(tokenCookie, { secret, ...options } as unknown as TokenCookieOptions)
  await app.ready()
  return app
}

for (const [options, message] of [
  [{ maxage: '30m' }, /option maxage is not an option: did you mean maxAge\?/],
  [{ renewafter: 0.5 }, /renewafter is not an option: did you mean renewAfter\?/],
  [{ cookiename: 'sid' }, /did you mean cookieName\?/],
  [{ bearr: true }, /did you mean bearer\?/],
  [{ sotre: true }, /did you mean store\?/],
  [{ lifetime: '1h' }, /lifetime is not an option$/],
  [{ cookie: { httpOnyl: true } }, /cookie\.httpOnyl is not an option: did you mean cookie\.httpOnly\?/],
  [{ cookie: { maxAge: 60 } }, /cookie\.maxAge is not an option/],
  [{ verify: { allowedIssuer: 'me' } }, /verify\.allowedIssuer is not an option: did you mean verify\.allowedIss\?/],
  [{ sign: { expiresIn: '1h' } }, /sign\.expiresIn is set by the plugin/],
  [{ verify: { ignoreExpiration: true } }, /verify\.ignoreExpiration is set by the plugin/],
  [{ csrf: { trustedOrigin: ['https://a.example'] } }, /csrf\.trustedOrigin is not an option: did you mean csrf\.trustedOrigins\?/],
  [{ sign: 'HS256' }, /sign must be an object/]
] as const) {
  test(`registration fails: ${JSON.stringify(options)}`, async (t) => {
    await t.rejects(register(options), { code: 'FST_TOKEN_COOKIE_OPTIONS', message })
  })
}

test('registration fails when the options are not an object', async (t) => {
  const app = Fastify()
  await t.rejects(async () => {
    await app.register(tokenCookie, (() => null) as never)
    await app.ready()
  }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /options must be an object/ })
})

test('Fastify\'s own registration options are accepted', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, prefix: '/api', logLevel: 'warn', logSerializers: {} })
  app.post('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }) }))
  t.equal((await app.inject({ method: 'POST', url: '/login' })).statusCode, 200)
})

test('setTokenCookie refuses a misspelled login option', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  app.post('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }, { maxage: '7d' } as never) }))
  const response = await app.inject({ method: 'POST', url: '/login' })
  t.match(response.json(), { statusCode: 500, code: 'FST_TOKEN_COOKIE_OPTIONS', message: /setTokenCookie options\.maxage is not an option: did you mean setTokenCookie options\.maxAge\?/ })
})

test('registering the plugin twice in one context fails with a message that says so', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  await t.rejects(async () => {
    await app.register(tokenCookie, { secret })
    await app.ready()
  }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /already registered in this context/ })
})

test('routes of a context registered before the plugin: guard, early replies and sessions all work', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (early) => {
    early.addHook('onRequest', async (request, reply) => {
      if (request.url === '/early/stop') return await reply.code(418).send({ stopped: true })
    })
    early.get('/early/me', async (request) => ({ sub: (await request.verifyToken()).sub }))
    early.post('/early/me', async () => ({ posted: true }))
    early.get('/early/stop', async () => ({ unreachable: true }))
  })
  await app.register(tokenCookie, { secret })
  app.post('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }) }))
  const { cookie } = await login(app)
  t.same((await app.inject({ url: '/early/me', headers: { cookie } })).json(), { sub: 'alice' }, 'a session')
  t.equal((await app.inject({ url: '/early/me' })).json().code, 'FST_TOKEN_COOKIE_MISSING', 'no session')
  const forged = await app.inject({ method: 'POST', url: '/early/me', headers: { cookie, origin: 'https://evil.example' } })
  t.match(forged.json(), { statusCode: 403, code: 'FST_TOKEN_COOKIE_CROSS_SITE' }, 'the guard\'s 403, with its code')
  const stopped = await app.inject({ url: '/early/stop', headers: { cookie } })
  t.same([stopped.statusCode, stopped.json()], [418, { stopped: true }], 'an earlier hook\'s reply goes out as sent')
})

for (const [name, thrown] of [['undefined', undefined], ['null', null], ['a string', 'nope'], ['zero', 0], ['an Error', new Error('db down')]] as const) {
  test(`isRevoked throwing ${name} fails the request, on public and protected routes, sync and async`, async (t) => {
    for (const style of ['throws', 'rejects'] as const) {
      const app = Fastify()
      t.teardown(() => app.close())
      await app.register(tokenCookie, {
        secret,
        isRevoked: (payload) => { if (payload.sub !== 'check') return false; if (style === 'throws') throw thrown; return Promise.reject(thrown) }
      })
      app.post('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'check' }) }))
      app.get('/public', async () => ({ ok: true }))
      app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async () => ({ ok: true }))
      app.setErrorHandler(async (error, _request, reply) => {
        // An error handler may log the user out: nothing to revoke without a store, and nothing breaks.
        await reply.clearTokenCookie()
        return await reply.code(500).send({ failed: error instanceof Error ? (error as { code?: string }).code ?? error.message : 'not an error' })
      })
      const { cookie } = await login(app)
      for (const url of ['/public', '/private']) {
        const response = await app.inject({ url, headers: { cookie } })
        t.equal(response.statusCode, 500, `${style}, ${url}: fails`)
        t.equal(response.json().failed, thrown instanceof Error ? 'db down' : 'FST_TOKEN_COOKIE_CHECK_FAILED', 'with the thrown Error, or one that names what was thrown')
      }
    }
  })
}
