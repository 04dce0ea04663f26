// A store that answers checks synchronously (as a replica does): its answer is carried through without a
// promise, it may throw when it cannot tell, and a store's own ready/close follow the app's.
import Fastify from 'fastify'
import { test } from 'tap'
import tokenCookie, { type RevocationState, type RevocationStore, type TokenCookieOptions } from '../index.js'
import { kState, type RequestState } from '../lib/request-state.js'
import { buildApp, claimsOf, login, secret } from './helpers/app.js'

/** A store whose `check` answers at once from a set of revoked sessions, or throws while `down`. */
function syncStore () {
  const revoked = new Set<string>()
  const state = { down: false, checks: 0 }
  const store: RevocationStore = {
    check (sid): RevocationState {
      state.checks++
      if (state.down) throw new Error('cannot tell')
      return { sessionRevoked: revoked.has(sid), userRevokedAt: undefined }
    },
    async revokeSession (sid) { revoked.add(sid) },
    async revokeUser () {}
  }
  return { store, revoked, state }
}

async function appFor (t: Parameters<typeof buildApp>[0], options: Partial<TokenCookieOptions>) {
  const app = await buildApp(t, options)
  // What the onRequest hook left on the request: settled there, not a promise, when the store answered at once.
  app.get('/settled', async (request) => {
    const state = (request as unknown as Record<symbol, RequestState>)[kState]
    return { promise: state.outcome instanceof Promise, kind: state.outcome instanceof Promise ? null : state.outcome.kind }
  })
  return app
}

test('a synchronous answer settles the request in the hook: no promise', async (t) => {
  const { store, revoked } = syncStore()
  const app = await appFor(t, { store })
  const { cookie, token } = await login(app)
  t.same((await app.inject({ url: '/settled', headers: { cookie } })).json(), { promise: false, kind: 'verified' })
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  revoked.add(claimsOf(token).sid as string)
  t.same((await app.inject({ url: '/settled', headers: { cookie } })).json(), { promise: false, kind: 'revoked' })
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED')
})

test('a synchronous store that throws: 503, or failOpen; logged once, and its end', async (t) => {
  const logs: Array<{ level: number, msg: string }> = []
  const { store, state } = syncStore()
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, store })
  app.get('/login', async (request, reply) => reply.setTokenCookie({ sub: 'alice' }))
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async () => 'secret')
  const cookie = `token=${(await app.inject({ url: '/login' })).body}`
  state.down = true
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/private', headers: { cookie } })).json().code, 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE')
  state.down = false
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  t.same(logs.filter((line) => line.msg.startsWith('fastify-token-cookie')).map((line) => [line.level, line.msg]), [
    [40, 'fastify-token-cookie: the revocation store is unavailable; protected routes answer 503'],
    [30, 'fastify-token-cookie: the revocation store is back']
  ])

  const open = syncStore()
  open.state.down = true
  const openApp = await appFor(t, { store: open.store, failOpen: true })
  const openLogin = await login(openApp)
  t.equal((await openApp.inject({ url: '/private', headers: { cookie: openLogin.cookie } })).statusCode, 200, 'failOpen: not revoked')
})

test('a synchronous store and isRevoked: isRevoked runs after a clear answer, not after a revocation', async (t) => {
  const { store, revoked, state } = syncStore()
  let isRevokedCalls = 0
  const app = await appFor(t, { store, isRevoked: async (payload) => { isRevokedCalls++; return payload.sub === 'banned' } })
  const alice = await login(app)
  t.equal((await app.inject({ url: '/private', headers: { cookie: alice.cookie } })).statusCode, 200)
  const banned = await login(app, { payload: { sub: 'banned' } })
  t.equal((await app.inject({ url: '/private', headers: { cookie: banned.cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED')
  t.equal(isRevokedCalls, 2)
  revoked.add(claimsOf(alice.token).sid as string)
  t.equal((await app.inject({ url: '/private', headers: { cookie: alice.cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED')
  t.same([state.checks, isRevokedCalls], [3, 2], 'the store said revoked: isRevoked is not asked')
})

test('a check that returns a thenable (not a native promise) is awaited, never read as an answer', async (t) => {
  const store: RevocationStore = {
    check: () => ({ then: (resolve: (state: RevocationState) => void) => resolve({ sessionRevoked: true, userRevokedAt: undefined }) }) as never,
    async revokeSession () {},
    async revokeUser () {}
  }
  const app = await appFor(t, { store })
  const { cookie } = await login(app)
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED')
})

test('a store\'s ready runs at registration (app.ready waits for it), its close when the app closes', async (t) => {
  const events: string[] = []
  const { store } = syncStore()
  let loaded!: () => void
  const lifecycle: RevocationStore = {
    ...store,
    ready: async () => {
      events.push('ready called')
      await new Promise<void>((resolve) => { loaded = resolve })
      events.push('loaded')
    },
    close: async () => { events.push('closed') }
  }
  const app = Fastify()
  // Not awaited: the registration itself waits for the store.
  app.register(tokenCookie, { secret, store: lifecycle })
  const ready = app.ready().then(() => events.push('app ready'))
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(events, ['ready called'], 'the app waits for the store')
  loaded()
  await ready
  t.same(events, ['ready called', 'loaded', 'app ready'])
  await app.close()
  t.same(events, ['ready called', 'loaded', 'app ready', 'closed'])
})
