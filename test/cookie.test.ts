// The cookie writer alone: its Set-Cookie lines are exactly what @fastify/cookie's serializer writes.
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyRequest } from 'fastify'
import { test } from 'tap'
import { createCookieWriter } from '../lib/cookie.js'
import type { ResolvedCookieAttributes } from '../lib/options.js'
import type { Lifetime } from '../lib/policy.js'
import { plainCookie } from '../lib/request-token.js'

const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLTMyLWJ5dGVzLWJhc2U2NHVybC1lbmNvZGVk'
const sliding: Lifetime = { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200, sessionCookie: false }
const session: Lifetime = { ...sliding, policy: 'session' }
const claims = { iat: 1_900_000_000, exp: 1_900_001_800, auth_time: 1_899_990_000 }
const over = (protocol: 'http' | 'https'): FastifyRequest => ({ protocol, hostname: 'localhost' }) as FastifyRequest

test('set and clear lines match serialize() for every attribute combination', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.ready()
  t.teardown(() => app.close())
  const serialize = app.serializeCookie as (name: string, value: string, options: Record<string, unknown>) => string
  const combinations: ResolvedCookieAttributes[] = [
    { httpOnly: true, secure: true, sameSite: 'lax', path: '/' },
    { httpOnly: false, secure: false, sameSite: 'strict', path: '/app', domain: 'example.com' },
    { httpOnly: true, secure: true, sameSite: 'none', path: '/', partitioned: true, priority: 'high' },
    { httpOnly: true, secure: 'auto', sameSite: 'lax', path: '/' }
  ]
  for (const attributes of combinations) {
    for (const expiryHint of [false, true]) {
      const writer = createCookieWriter('token', attributes, { expiryHint, maxChunks: 1 }, serialize, () => {})
      for (const protocol of ['http', 'https'] as const) {
        const secure = attributes.secure === 'auto' ? protocol === 'https' : attributes.secure
        const options = { ...attributes, secure }
        const label = `${JSON.stringify(attributes)} hint ${expiryHint} over ${protocol}`
        const hint = { ...options, httpOnly: false, encode: (value: string) => value }
        const cleared = { maxAge: 0, expires: new Date(0) }
        t.same(writer.set(over(protocol), token, sliding, claims, plainCookie), [
          serialize('token', token, { ...options, maxAge: 1800 }),
          ...(expiryHint ? [serialize('token.exp', `e=${claims.exp}&a=${claims.auth_time + 43200}`, { ...hint, maxAge: 1800 })] : [])
        ], `set: ${label}`)
        t.same(writer.set(over(protocol), token, session, claims, plainCookie)[0], serialize('token', token, options), `a session cookie has no Max-Age: ${label}`)
        t.same(writer.clear(over(protocol), plainCookie), [
          serialize('token', '', { ...options, ...cleared }),
          ...(expiryHint ? [serialize('token.exp', '', { ...hint, ...cleared })] : [])
        ], `clear: ${label}`)
      }
    }
  }
})

test('the size limit counts the whole line, Secure included for secure: \'auto\' over HTTP', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.ready()
  t.teardown(() => app.close())
  const serialize = app.serializeCookie as (name: string, value: string, options: Record<string, unknown>) => string
  const writer = createCookieWriter('token', { httpOnly: true, secure: 'auto', sameSite: 'lax', path: '/' }, { expiryHint: false, maxChunks: 1 }, serialize, () => {})
  const longest = serialize('token', '', { httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: 1800 }).length
  const fits = 'a'.repeat(4096 - longest)
  t.equal(Buffer.byteLength(writer.set(over('https'), fits, sliding, claims, plainCookie)[0]), 4096, 'exactly 4096 bytes over HTTPS')
  t.ok(writer.set(over('http'), fits, sliding, claims, plainCookie), 'and over HTTP, where the line is shorter')
  t.throws(() => writer.set(over('http'), `${fits}a`, sliding, claims, plainCookie), { code: 'FST_TOKEN_COOKIE_TOO_LARGE', message: /4097 bytes/ })
})
