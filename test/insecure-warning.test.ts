// A Secure cookie over plain http is dropped by the browser without a word: the plugin logs it, once per instance.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { test, type Test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import { secret } from './helpers/app.js'

async function appLogging (t: Test, options: Partial<TokenCookieOptions> = {}) {
  const warnings: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const entry = JSON.parse(line)
        if (entry.level === 40) warnings.push(entry.msg)
      }
      callback()
    }
  })
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, ...options })
  app.post('/login', async (_request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }) }))
  const login = async (host: string): Promise<void> => { await app.inject({ method: 'POST', url: '/login', headers: { host } }) }
  return { warnings, login }
}

test('one warning, naming the fix, when a Secure cookie is set over http for a host that is not loopback', async (t) => {
  const { warnings, login } = await appLogging(t)
  for (const host of ['localhost:3000', '127.0.0.1:3000', 'app.localhost', '[::1]:3000']) await login(host)
  t.same(warnings, [], 'browsers keep Secure cookies over http on loopback hosts')
  await login('example.test:4100')
  await login('example.test:4100')
  await login('other.test')
  t.equal(warnings.length, 1, 'once per instance, not per request')
  t.match(warnings[0], /Secure cookie was set on a plain http request to example\.test; .*secure: 'auto'.*trustProxy/)
})

test('no warning with secure: \'auto\' or secure: false', async (t) => {
  for (const secure of ['auto', false] as const) {
    const { warnings, login } = await appLogging(t, { cookie: { secure } })
    await login('example.test')
    t.same(warnings, [], `secure: ${String(secure)}`)
  }
})
