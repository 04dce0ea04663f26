// Responses that set the plugin's cookies are never stored by a shared cache, and renewals wait for a response that
// no shared cache may store. Two layers: `app.inject` for the exact headers the plugin writes, and a real nginx
// configured like an aggressive CDN (cookie not in the cache key, Set-Cookie not stopping it from caching) to show
// end to end that no user ever receives another user's token, nor a cached logout.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import { claimsOf, fakeClock, secret, setCookies, tokenCookieOf } from './helpers/app.js'
import { startSharedCache, type SharedCache } from './helpers/nginx.js'

// `renewAfter: 0`: a sliding token is renewed as soon as a renewal moves its exp, that is once its iat's second has
// passed. A real clock through a real proxy, so no test waits more than a second for a renewal to be due.
const options: Partial<TokenCookieOptions> = { maxAge: '60s', renewAfter: 0, expiryHint: true }

interface Sent { url: string, status: number, setCookie: string[], cacheControl: string | undefined }

const asLines = (value: unknown): string[] => value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)]

/** The app: the plugin, and routes whose Cache-Control is the app's own choice. */
async function buildCacheApp (t: Test): Promise<{ app: FastifyInstance, sent: Sent[] }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, ...options })
  // What the app itself answered, before any cache: to tell a cache HIT from a response the app sent.
  const sent: Sent[] = []
  app.addHook('onResponse', async (request, reply) => {
    const cacheControl = reply.getHeader('cache-control')
    sent.push({ url: request.url, status: reply.statusCode, setCookie: asLines(reply.getHeader('set-cookie')), cacheControl: cacheControl === undefined ? undefined : String(cacheControl) })
  })
  const authenticated = { preHandler: async (request: FastifyRequest) => { await request.verifyToken() } }
  type SubQuery = { Querystring: { sub?: string } }

  app.post<{ Body: { sub: string } }>('/login', async (request, reply) => {
    await reply.setTokenCookie({ sub: request.body.sub })
    return { ok: true }
  })
  // Logins by link (GET), whose responses the app marks cacheable: the plugin must take that back.
  app.get<SubQuery>('/login-public', async (request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    await reply.setTokenCookie({ sub: request.query.sub ?? 'alice' })
    return { ok: true }
  })
  app.get<SubQuery>('/login-smax', async (request, reply) => {
    reply.header('cache-control', 's-maxage=60')
    await reply.setTokenCookie({ sub: request.query.sub ?? 'alice' })
    return { ok: true }
  })
  app.get<SubQuery>('/login-no-store', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    await reply.setTokenCookie({ sub: request.query.sub ?? 'alice' })
    return { ok: true }
  })
  app.post('/logout', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  app.get('/logout-public', async (request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    await reply.clearTokenCookie()
    return { ok: true }
  })
  app.get('/update-public', async (request, reply) => {
    const user = await request.verifyToken()
    reply.header('cache-control', 'public, max-age=60')
    await reply.updateTokenCookie({ sub: user?.sub, role: 'editor' })
    return { ok: true }
  })
  // Protected, and the same for every user: the app lets shared caches keep it.
  app.get('/feed', authenticated, async (request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    return { feed: ['same', 'for', 'everyone'] }
  })
  app.get('/feed-smax', authenticated, async (request, reply) => {
    reply.header('cache-control', 's-maxage=60')
    return { feed: ['same', 'for', 'everyone'] }
  })
  // Open to all, cacheable, and reads the session if there is one.
  app.get('/news', async (request, reply) => {
    await request.verifyToken({ optional: true })
    reply.header('cache-control', 'public, max-age=60')
    return { news: 'same for everyone' }
  })
  // A private route: the app says nothing about caching.
  app.get('/me', async (request) => ({ sub: (await request.verifyToken())?.sub }))
  // Revalidated with an ETag, handled by the app: 304 when the client (or the cache) has it.
  const etagged = (cacheControl: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', cacheControl)
    reply.header('etag', '"v1"')
    if (request.headers['if-none-match'] === '"v1"') return reply.code(304).send()
    return { version: 1 }
  }
  app.get('/etag', authenticated, etagged('no-cache'))
  app.get('/etag-public', authenticated, etagged('public, max-age=1'))
  app.get('/etag-logout', async (request, reply) => {
    reply.header('etag', '"v1"')
    await reply.clearTokenCookie()
    return reply.code(304).send()
  })
  // nginx's own X-Accel-Expires, which nginx obeys before Cache-Control.
  app.get('/accel-feed', authenticated, async (request, reply) => {
    reply.header('x-accel-expires', '60')
    return { feed: ['same', 'for', 'everyone'] }
  })
  // Not the plugin: a cookie of the app's own on a public response, to show what this cache does with one.
  app.get<SubQuery>('/probe', async (request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    reply.header('set-cookie', `probe=${request.query.sub ?? ''}; Path=/`)
    return { probe: true }
  })
  return { app, sent }
}

/** A cookie value from a `name=value; attributes` line. */
function valueOf (line: string): { name: string, value: string } {
  const pair = line.split(';')[0]
  const at = pair.indexOf('=')
  return { name: pair.slice(0, at), value: pair.slice(at + 1) }
}

/** Resolves once the second of each token's iat has passed: a renewal would move its exp, so one is due. */
async function renewalDue (...tokens: string[]): Promise<void> {
  const latest = Math.max(...tokens.map((token) => claimsOf(token).iat as number))
  for (;;) {
    const wait = (latest + 1) * 1000 - Date.now()
    if (wait <= 0) return
    await sleep(wait + 5)
  }
}

t.test('the headers the plugin writes (inject)', async (t) => {
  const { app } = await buildCacheApp(t)
  const clock = fakeClock(t)
  const inject = async (url: string, cookie?: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
    await app.inject({ method: 'GET', url, headers: { ...headers, ...(cookie === undefined ? {} : { cookie }) } })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { sub: 'alice' } })
  const token = tokenCookieOf(login)?.value as string
  const cookie = `token=${token}`

  t.test('a login, an update and a logout are always sent, and marked private', async (t) => {
    t.equal(login.headers['cache-control'], 'private', 'a login: private')
    t.same(setCookies(login).map(({ name }) => name), ['token', 'token.exp'], 'the token and its expiry hint')

    const publicLogin = await inject('/login-public')
    t.equal(publicLogin.headers['cache-control'], 'max-age=60, private', "the app's public is removed, private added")
    t.ok(tokenCookieOf(publicLogin), 'the login is sent')
    const smaxLogin = await inject('/login-smax')
    t.equal(smaxLogin.headers['cache-control'], 's-maxage=60, private', 'with s-maxage: private added')
    t.ok(tokenCookieOf(smaxLogin))
    const noStoreLogin = await inject('/login-no-store')
    t.equal(noStoreLogin.headers['cache-control'], 'no-store', 'no-store is kept as it is')
    t.ok(tokenCookieOf(noStoreLogin))

    const update = await inject('/update-public', cookie)
    t.equal(update.statusCode, 200)
    t.equal(update.headers['cache-control'], 'max-age=60, private')
    t.equal(claimsOf(tokenCookieOf(update)?.value as string).role, 'editor', 'the update is sent on a public response')

    const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(logout.headers['cache-control'], 'private', 'a logout: private')
    t.same(setCookies(logout).map(({ name, value }) => [name, value]), [['token', ''], ['token.exp', '']], 'both cookies cleared')
    const publicLogout = await inject('/logout-public', cookie)
    t.equal(publicLogout.headers['cache-control'], 'max-age=60, private')
    t.equal(tokenCookieOf(publicLogout)?.value, '', 'the logout is sent on a public response')

    const notModifiedLogout = await inject('/etag-logout', cookie)
    t.equal(notModifiedLogout.statusCode, 304)
    t.equal(tokenCookieOf(notModifiedLogout)?.value, '', 'a logout is sent even with a 304')
    t.equal(notModifiedLogout.headers['cache-control'], 'private')
  })

  t.test('a renewal waits for a response shared caches may not store', async (t) => {
    clock.tick(1000)
    for (const url of ['/feed', '/feed-smax']) {
      const response = await inject(url, cookie)
      t.equal(response.statusCode, 200, url)
      t.equal(response.headers['set-cookie'], undefined, `${url}: no renewal`)
    }
    t.equal((await inject('/feed', cookie)).headers['cache-control'], 'public, max-age=60', "the app's Cache-Control untouched")
    t.equal((await inject('/feed-smax', cookie)).headers['cache-control'], 's-maxage=60')

    const notModified = await inject('/etag', cookie, { 'if-none-match': '"v1"' })
    t.equal(notModified.statusCode, 304)
    t.equal(notModified.headers['set-cookie'], undefined, 'a 304: no renewal')
    t.equal(notModified.headers['cache-control'], 'no-cache', "the 304's Cache-Control untouched")

    const me = await inject('/me', cookie)
    t.equal(me.statusCode, 200)
    const renewed = tokenCookieOf(me)?.value as string
    t.ok(renewed, 'the renewal comes with the next private response')
    t.equal(me.headers['cache-control'], 'private')
    t.equal(claimsOf(renewed).sid, claimsOf(token).sid, 'same session')
    t.equal(claimsOf(renewed).iat, (claimsOf(token).iat as number) + 1)

    const modified = await inject('/etag', cookie)
    t.equal(modified.statusCode, 200, 'a 200 of the same route')
    t.ok(tokenCookieOf(modified), 'carries the renewal (no-cache is not shared-cacheable)')
    t.equal(modified.headers['cache-control'], 'no-cache, private')
  })

  t.test('a bad cookie is cleared, except on a response shared caches may store', async (t) => {
    const bad = 'token=not-a-token'
    const news = await inject('/news', bad)
    t.equal(news.statusCode, 200)
    t.equal(news.headers['set-cookie'], undefined, 'not cleared on a public response')
    t.equal(news.headers['cache-control'], 'public, max-age=60')
    const me = await inject('/me', bad)
    t.equal(me.statusCode, 401)
    t.same(setCookies(me).map(({ name, value }) => [name, value]), [['token', ''], ['token.exp', '']], 'cleared on a private one')
    t.equal(me.headers['cache-control'], 'private')
  })
})

t.test('through a shared cache (nginx)', async (t) => {
  const { app, sent } = await buildCacheApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const cache: SharedCache = await startSharedCache(t, { upstream: (app.server.address() as { port: number }).port })
  let run = 0

  interface Got { status: number, cacheStatus: string | null, cacheControl: string | null, setCookie: string[], body: string }

  /** A browser of one user: sends the token it holds, keeps the last one it is given, remembers every Set-Cookie. */
  class Browser {
    token: string | undefined
    received: string[] = []
    constructor (readonly name: string) {}

    async request (path: string, init: { method?: string, body?: object, cookie?: string } = {}): Promise<Got> {
      const cookie = init.cookie ?? (this.token === undefined ? undefined : `token=${this.token}`)
      const headers: Record<string, string> = {}
      if (cookie !== undefined) headers.cookie = cookie
      if (init.body !== undefined) headers['content-type'] = 'application/json'
      const response = await fetch(cache.url + path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
      const got = {
        status: response.status,
        cacheStatus: response.headers.get('x-cache-status'),
        cacheControl: response.headers.get('cache-control'),
        setCookie: response.headers.getSetCookie(),
        body: await response.text()
      }
      this.received.push(...got.setCookie)
      for (const line of got.setCookie) {
        const { name, value } = valueOf(line)
        if (name === 'token') this.token = value === '' ? undefined : value
      }
      return got
    }

    async login (): Promise<string> {
      const got = await this.request('/login', { method: 'POST', body: { sub: this.name } })
      if (got.status !== 200 || this.token === undefined) throw new Error(`login of ${this.name} failed: ${got.status} ${got.body}`)
      return this.token
    }

    /** The subjects of every token this browser was ever given. */
    subjects (): unknown[] {
      return this.received.map(valueOf).filter(({ name, value }) => name === 'token' && value !== '').map(({ value }) => claimsOf(value).sub)
    }
  }

  const sentFor = (path: string): Sent[] => sent.filter((response) => response.url === path)

  t.test('this cache stores Set-Cookie with a public response and hands it to the next user', async (t) => {
    // The danger the plugin guards against, shown with a cookie that is not the plugin's.
    const path = `/probe?sub=alice&run=${++run}`
    const first = await new Browser('alice').request(path)
    const second = await new Browser('bob').request(path)
    t.equal(first.cacheStatus, 'MISS')
    t.equal(second.cacheStatus, 'HIT')
    t.same(second.setCookie, ['probe=alice; Path=/'], "bob is handed alice's cookie")
  })

  t.test('two users on one cacheable URL: neither ever receives the other\'s token', async (t) => {
    const alice = new Browser('alice')
    const bob = new Browser('bob')
    const aliceToken = await alice.login()
    const bobToken = await bob.login()
    await renewalDue(aliceToken, bobToken)
    for (const route of ['/feed', '/feed-smax']) {
      const path = `${route}?run=${++run}`
      const first = await alice.request(path)
      t.equal(first.status, 200, `${route}: alice`)
      t.equal(first.cacheStatus, 'MISS', `${route}: alice's request reaches the app`)
      t.same(first.setCookie, [], `${route}: no renewal for alice on a cacheable response`)
      const second = await bob.request(path)
      t.equal(second.status, 200, `${route}: bob`)
      t.equal(second.cacheStatus, 'HIT', `${route}: bob is served from the cache`)
      t.same(second.setCookie, [], `${route}: the cached response has no Set-Cookie at all`)
      t.same(sentFor(path).map(({ setCookie }) => setCookie), [[]], `${route}: the app answered once, without a cookie`)
    }
    t.equal(alice.token, aliceToken, 'alice still holds her login token')
    t.equal(bob.token, bobToken)

    const aliceMe = await alice.request('/me')
    t.equal(aliceMe.status, 200)
    t.not(alice.token, aliceToken, 'the first private response renews alice')
    t.equal(claimsOf(alice.token as string).sub, 'alice')
    t.equal(claimsOf(alice.token as string).sid, claimsOf(aliceToken).sid, 'in her session')
    t.equal(aliceMe.cacheControl, 'private')
    const bobMe = await bob.request('/me')
    t.equal(bobMe.status, 200)
    t.equal(claimsOf(bob.token as string).sub, 'bob', 'bob is renewed with his own token')

    t.same(new Set(alice.subjects()), new Set(['alice']), 'alice only ever received her own tokens')
    t.same(new Set(bob.subjects()), new Set(['bob']), 'bob only ever received his own tokens')
  })

  t.test('logins and logouts are never cached, whatever the app says', async (t) => {
    for (const route of ['/login-public', '/login-smax', '/login-no-store']) {
      const path = `${route}?sub=alice&run=${++run}`
      const first = await new Browser('first').request(path)
      const second = await new Browser('second').request(path)
      for (const got of [first, second]) {
        t.not(got.cacheStatus, 'HIT', `${route}: not served from the cache`)
        t.same(got.setCookie.map((line) => valueOf(line).name), ['token', 'token.exp'], `${route}: a login each time`)
      }
      t.not(valueOf(first.setCookie[0]).value, valueOf(second.setCookie[0]).value, `${route}: two logins, two tokens`)
      t.equal(sentFor(path).length, 2, `${route}: both reached the app`)
    }

    const alice = new Browser('alice')
    await alice.login()
    const logoutPath = `/logout-public?run=${++run}`
    const logouts = [await alice.request(logoutPath), await alice.request(logoutPath)]
    for (const got of logouts) {
      t.not(got.cacheStatus, 'HIT', 'a logout is not served from the cache')
      t.equal(got.cacheControl, 'max-age=60, private')
      t.same(got.setCookie.map(valueOf), [{ name: 'token', value: '' }, { name: 'token.exp', value: '' }], 'cleared each time')
    }
    // A cached logout would log out everyone who asks for the URL: bob keeps his session.
    const bob = new Browser('bob')
    await bob.login()
    const bobLogout = await bob.request(logoutPath)
    t.not(bobLogout.cacheStatus, 'HIT')

    const carol = new Browser('carol')
    const carolToken = await carol.login()
    const update = await carol.request(`/update-public?run=${++run}`)
    t.equal(update.status, 200)
    t.not(update.cacheStatus, 'HIT')
    t.equal(update.cacheControl, 'max-age=60, private')
    t.not(carol.token, carolToken, 'the update is sent')
    t.equal(claimsOf(carol.token as string).role, 'editor')

    const post = await carol.request('/logout', { method: 'POST' })
    t.equal(post.status, 200)
    t.equal(post.cacheControl, 'private', 'a plain logout: private')
    t.equal(carol.token, undefined, 'carol is logged out')
  })

  t.test('a bad cookie: not cleared on a cacheable response, cleared on a private one', async (t) => {
    const mallory = new Browser('mallory')
    const bob = new Browser('bob')
    const bobToken = await bob.login()
    const path = `/news?run=${++run}`
    const first = await mallory.request(path, { cookie: 'token=not-a-token' })
    t.equal(first.status, 200)
    t.equal(first.cacheStatus, 'MISS')
    t.same(first.setCookie, [], 'no clearing on a cacheable response')
    const second = await bob.request(path)
    t.equal(second.cacheStatus, 'HIT')
    t.same(second.setCookie, [], 'bob is not handed a clearing of his cookie')
    t.equal(bob.token, bobToken)
    t.equal((await bob.request('/me')).status, 200, 'bob is still logged in')

    const me = await mallory.request('/me', { cookie: 'token=not-a-token' })
    t.equal(me.status, 401)
    t.not(me.cacheStatus, 'HIT')
    t.equal(me.cacheControl, 'private')
    t.same(me.setCookie.map(valueOf), [{ name: 'token', value: '' }, { name: 'token.exp', value: '' }], 'cleared on a private response')
  })

  t.test('/accel-feed: X-Accel-Expires, which nginx obeys before Cache-Control: the renewal waits', async (t) => {
    const alice = new Browser('alice')
    const bob = new Browser('bob')
    const aliceToken = await alice.login()
    await bob.login()
    await renewalDue(aliceToken)
    const path = `/accel-feed?run=${++run}`
    const first = await alice.request(path)
    t.equal(first.status, 200)
    t.same(first.setCookie, [], 'no renewal on a response nginx keeps')
    const second = await bob.request(path)
    t.equal(second.status, 200)
    t.same(second.setCookie, [], 'bob is handed no cookie')
    t.same(new Set(bob.subjects()), new Set(['bob']), 'bob only ever received his own tokens')
  })

  t.test('a 304 (the cache revalidating) carries no renewal; a later private 200 does', async (t) => {
    const alice = new Browser('alice')
    const token = await alice.login()
    const path = `/etag-public?run=${++run}`
    const first = await alice.request(path)
    t.equal(first.cacheStatus, 'MISS')
    t.same(first.setCookie, [], 'no renewal on a public response')
    await renewalDue(token)
    // max-age=1: the cache revalidates its copy, with alice's request (and cookie), once it is stale.
    const deadline = performance.now() + 10_000
    let got = await alice.request(path)
    while (got.cacheStatus === 'HIT' && performance.now() < deadline) {
      await sleep(100)
      got = await alice.request(path)
    }
    t.equal(got.cacheStatus, 'REVALIDATED', 'the cache revalidated', got.cacheStatus === 'REVALIDATED' ? {} : { errorLog: cache.errorLog() })
    t.equal(got.status, 200, 'alice gets the cached 200')
    t.same(got.setCookie, [], 'with no renewal')
    const notModified = sentFor(path).filter(({ status }) => status === 304)
    t.ok(notModified.length >= 1, 'the app answered the revalidation with a 304')
    t.same(notModified.map(({ setCookie }) => setCookie), notModified.map(() => []), 'the app\'s 304 carried no renewal')
    t.equal(alice.token, token)

    const me = await alice.request('/me')
    t.equal(me.status, 200)
    t.not(alice.token, token, 'the renewal comes with the next private 200')
    t.equal(claimsOf(alice.token as string).sid, claimsOf(token).sid)
  })
})
