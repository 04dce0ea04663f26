// The largest token `maxChunks: 3` allows, over real HTTP: login, an authenticated request, a renewal and a logout,
// from node's http client to a Fastify server on 127.0.0.1 (Node's default 16 KB maxHeaderSize), directly and through
// a real nginx as reverse proxy with the limits docs/chunked-cookies.md says to raise; and what nginx's defaults
// (and Node's, past 16 KB of headers) do instead.
import http from 'node:http'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { TokenCookieOptions } from '../index.js'
import { claimsOf, fakeClock } from './helpers/app.js'
import { buildChunkApp, effects, Jar, largestPad, parseSetCookie, tokenIn } from './helpers/chunks.js'
import { startReverseProxy } from './helpers/nginx.js'

// The directives docs/chunked-cookies.md gives for maxChunks: 3, and for 10.
const recommended = `
  large_client_header_buffers 4 16k;
  proxy_buffer_size 16k;
  proxy_busy_buffers_size 16k;`
const recommendedFor10 = `
  large_client_header_buffers 4 44k;
  proxy_buffer_size 44k;
  proxy_buffers 8 16k;
  proxy_busy_buffers_size 44k;`

interface Answer { status: number, body: string, setCookie: string[] }

/** One request with the jar's cookies; the jar keeps what the response sets. */
async function send (base: string, jar: Jar, method: 'GET' | 'POST', path: string, body?: object, maxHeaderSize?: number): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const headers: Record<string, string> = { cookie: jar.header(), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }
  const answer = await new Promise<Answer>((resolve, reject) => {
    const request = http.request(`${base}${path}`, { method, headers, maxHeaderSize }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode as number, body: text, setCookie: response.headers['set-cookie'] ?? [] }))
    })
    request.on('error', reject)
    request.end(payload)
  })
  jar.apply(answer.setCookie)
  return answer
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

/** An app with `maxChunks`, a store (so logout revokes), and the longest `pad` its logins take. */
async function appWithLargest (t: Test, options: Partial<TokenCookieOptions>, fastify = {}): Promise<{ app: FastifyInstance, pad: number }> {
  const app = await buildChunkApp(t, { maxAge: '10m', store: true, expiryHint: true, ...options }, fastify)
  return { app, pad: await largestPad(app) }
}

/** Login → authenticated request → renewal → logout, with the largest token, against `base`. */
async function wholeSession (t: Test, base: string, pad: number, maxChunks: number, clock: ReturnType<typeof fakeClock>, maxHeaderSize?: number): Promise<void> {
  const jar = new Jar()
  const chunkNames = Array.from({ length: maxChunks }, (_, index) => `token.${index}`)
  const login = await send(base, jar, 'POST', '/login', { pad }, maxHeaderSize)
  t.equal(login.status, 200, `login: 200 (${login.body.slice(0, 200)})`)
  t.same(effects(login.setCookie), { set: [...chunkNames, 'token.exp'], cleared: ['token'] }, `the largest token: ${maxChunks} chunks`)
  t.ok(login.setCookie.every((line) => Buffer.byteLength(line) <= 4096), 'every Set-Cookie line at most 4096 bytes')
  t.ok(login.setCookie.filter((line) => parseSetCookie(line).name.startsWith('token.')).some((line) => Buffer.byteLength(line) >= 4095), 'and the chunks full')
  const token = tokenIn(jar) as string
  t.comment(`a token of ${token.length} bytes; a Cookie header of ${jar.header().length} bytes`)

  const me = await send(base, jar, 'GET', '/me', undefined, maxHeaderSize)
  t.equal(me.status, 200, `authenticated: 200 (${me.body.slice(0, 200)})`)
  t.equal(JSON.parse(me.body).pad, pad, 'the claims, whole')
  t.same(me.setCookie, [], 'no renewal yet')

  clock.tick(301_000)
  const renewed = await send(base, jar, 'GET', '/me', undefined, maxHeaderSize)
  t.equal(renewed.status, 200, 'past renewAfter: 200')
  t.same(effects(renewed.setCookie).set, [...chunkNames, 'token.exp'], 'renewed, in as many chunks')
  t.not(tokenIn(jar), token, 'a new token')
  t.equal(claimsOf(tokenIn(jar) as string).sid, claimsOf(token).sid, 'the same session')
  t.equal((await send(base, jar, 'GET', '/me', undefined, maxHeaderSize)).status, 200, 'the renewed chunks authenticate')

  const stolen = new Jar()
  stolen.apply(jar.names().map((name) => `${name}=${jar.cookies.get(name) as string}`))
  const logout = await send(base, jar, 'POST', '/logout', undefined, maxHeaderSize)
  t.equal(logout.status, 200)
  t.same(effects(logout.setCookie).cleared.sort(), ['token', ...chunkNames, 'token.exp'].sort(), 'logout clears the token cookie, every chunk, the hint')
  t.same(jar.names(), [], 'nothing left')
  const replay = await send(base, stolen, 'GET', '/me', undefined, maxHeaderSize)
  t.match(JSON.parse(replay.body), { statusCode: 401, code: 'FST_TOKEN_COOKIE_REVOKED' }, 'the session is revoked')
}

t.test('maxChunks 3 over real HTTP: Node\'s default header limit holds the largest token', async (t) => {
  const clock = fakeClock(t)
  t.equal(http.maxHeaderSize, 16384, 'Node\'s default maxHeaderSize')
  const { app, pad } = await appWithLargest(t, { maxChunks: 3 })
  await wholeSession(t, await listen(app), pad, 3, clock)
})

t.test('maxChunks 3 through nginx with the recommended limits', async (t) => {
  const clock = fakeClock(t)
  const { app, pad } = await appWithLargest(t, { maxChunks: 3 })
  const proxy = await startReverseProxy(t, { upstream: Number(new URL(await listen(app)).port), directives: recommended })
  await wholeSession(t, proxy.url, pad, 3, clock)
})

t.test('nginx\'s defaults fail a chunked session; each limit named in the docs is needed', async (t) => {
  fakeClock(t)
  const { app, pad } = await appWithLargest(t, { maxChunks: 3 })
  const upstream = Number(new URL(await listen(app)).port)

  const defaults = await startReverseProxy(t, { upstream })
  const login = await send(defaults.url, new Jar(), 'POST', '/login', { pad })
  t.equal(login.status, 502, 'defaults: the login\'s Set-Cookie lines pass proxy_buffer_size (4k): 502')
  t.match(defaults.errorLog(), /upstream sent too big header/, 'nginx says why')

  const proxyBuffersOnly = await startReverseProxy(t, { upstream, directives: 'proxy_buffer_size 16k; proxy_busy_buffers_size 16k;' })
  const jar = new Jar()
  t.equal((await send(proxyBuffersOnly.url, jar, 'POST', '/login', { pad })).status, 200, 'with the proxy buffers raised, the login goes through')
  const me = await send(proxyBuffersOnly.url, jar, 'GET', '/me')
  t.equal(me.status, 400, 'but a Cookie line over 8k passes the default large_client_header_buffers (4 8k): 400')
  t.match(me.body, /Request Header Or Cookie Too Large/)

  await t.rejects(startReverseProxy(t, { upstream, directives: 'large_client_header_buffers 4 16k; proxy_buffer_size 16k;' }),
    /"proxy_busy_buffers_size" must be less than the size of all "proxy_buffers" minus one buffer/,
    'proxy_buffer_size raised alone: nginx refuses to start (its default proxy_busy_buffers_size is twice the buffer size)')
})

t.test('maxChunks 10: past 16 KB of headers, Node answers 431 until maxHeaderSize is raised; nginx with the limits for ten', async (t) => {
  const clock = fakeClock(t)
  const jar = new Jar()
  const { app: defaults, pad } = await appWithLargest(t, { maxChunks: 10 })
  const base = await listen(defaults)
  t.equal((await send(base, jar, 'POST', '/login', { pad }, 65536)).status, 200, 'the login (the client reads up to 64 KB of headers)')
  t.equal(jar.names().length, 11, 'ten chunks and the hint')
  t.equal((await send(base, jar, 'GET', '/me', undefined, 65536)).status, 431, 'a Cookie header of some 40 KB: 431 from Node')

  const { app: raised } = await appWithLargest(t, { maxChunks: 10 }, { http: { maxHeaderSize: 12 * 4096 } })
  const direct = await listen(raised)
  await wholeSession(t, direct, pad, 10, clock, 65536)
  const proxy = await startReverseProxy(t, { upstream: Number(new URL(direct).port), directives: recommendedFor10 })
  await wholeSession(t, proxy.url, pad, 10, clock, 65536)
})
