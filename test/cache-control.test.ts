// Which responses shared caches may keep, and the Cache-Control of a response that sets the cookie.
import { test } from 'tap'
import { privateCacheControl, sharedCacheable } from '../lib/cache-control.js'
import { buildApp } from './helpers/app.js'

const response = (statusCode: number, headers: Record<string, string | number | string[]> = {}) => ({ statusCode, getHeader: (name: string) => headers[name] })

test('sharedCacheable: a 304, public, s-maxage, or a CDN\'s own caching header', async (t) => {
  t.ok(sharedCacheable(response(304)))
  t.notOk(sharedCacheable(response(200)))
  t.ok(sharedCacheable(response(200, { 'cache-control': 'max-age=60, Public' })))
  t.ok(sharedCacheable(response(200, { 'cache-control': ['no-cache', 's-maxage=60'] })), 'header lines joined')
  t.notOk(sharedCacheable(response(200, { 'cache-control': 'private, max-age=60' })))
  t.ok(sharedCacheable(response(200, { 'cdn-cache-control': 'max-age=60' })))
  t.notOk(sharedCacheable(response(200, { 'cdn-cache-control': 'no-store' })))
  t.ok(sharedCacheable(response(200, { 'surrogate-control': 'max-age=60' })))
  t.notOk(sharedCacheable(response(200, { 'surrogate-control': 'private' })))
  t.ok(sharedCacheable(response(200, { 'x-accel-expires': 60 })))
  t.notOk(sharedCacheable(response(200, { 'x-accel-expires': '0' })))
  t.notOk(sharedCacheable(response(200, { 'x-accel-expires': 'OFF' })))
})

test('privateCacheControl: never public; private unless private or no-store', async (t) => {
  t.equal(privateCacheControl(undefined), 'private')
  t.equal(privateCacheControl('public, max-age=60'), 'max-age=60, private')
  t.equal(privateCacheControl('no-store'), 'no-store')
  t.equal(privateCacheControl('private="set-cookie", max-age=0'), 'private="set-cookie", max-age=0')
  t.equal(privateCacheControl(60), '60, private')
})

test('a login or a logout removes a CDN\'s own caching headers from its response', async (t) => {
  const app = await buildApp(t)
  app.post('/login-cdn', async (_request, reply) => {
    reply.header('cdn-cache-control', 'max-age=60').header('surrogate-control', 'max-age=60').header('x-accel-expires', '60').header('x-other', 'kept')
    return { token: await reply.setTokenCookie({ sub: 'alice' }) }
  })
  app.post('/logout-cdn', async (_request, reply) => {
    reply.header('x-accel-expires', '60')
    await reply.clearTokenCookie()
    return { ok: true }
  })
  const login = await app.inject({ method: 'POST', url: '/login-cdn' })
  t.same([login.headers['cdn-cache-control'], login.headers['surrogate-control'], login.headers['x-accel-expires'], login.headers['x-other']], [undefined, undefined, undefined, 'kept'])
  t.equal((await app.inject({ method: 'POST', url: '/logout-cdn' })).headers['x-accel-expires'], undefined)
})
