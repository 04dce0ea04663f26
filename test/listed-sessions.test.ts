// "Where you're signed in": every login is listed with a store until its session ends; renewals move
// lastSeenAt; revocations remove what they revoke; an ordinary request writes nothing. memoryStore and Redis.
import { test, type Test } from 'tap'
import { memoryStore, type RevocationStore, type SessionInfo } from '../index.js'
import { buildApp, claimsOf, fakeClock, tokenCookieOf } from './helpers/app.js'
import { haveRedis, redisStoreFor } from './helpers/redis.js'

const minute = 60 * 1000

interface Backend { name: string, store: (t: Test) => Promise<RevocationStore> }
const backends: Backend[] = [{ name: 'memoryStore', store: async () => memoryStore() }]
if (haveRedis()) {
  backends.push({
    name: 'Redis',
    store: async (t) => (await redisStoreFor(t)).store
  })
}

/** The store, counting what it is asked to write. */
function counting (store: RevocationStore) {
  const writes = { recordSession: 0 }
  const counted: RevocationStore = {
    ...store,
    recordSession: async (sub, session) => { writes.recordSession++; await store.recordSession!(sub, session) }
  }
  return { counted, writes }
}

async function setup (t: Test, backend: Backend) {
  const clock = fakeClock(t)
  const { counted, writes } = counting(await backend.store(t))
  const app = await buildApp(t, { store: counted, maxAge: '30m', absoluteMaxAge: '12h' })
  // No user agent: an empty header (light-my-request sends one of its own otherwise).
  const signIn = async (sub: string, agent = '', remember = false) => {
    const response = await app.inject({
      method: 'POST', url: '/login', headers: { 'user-agent': agent }, payload: { payload: { sub }, ...(remember ? { login: { policy: 'persistent', maxAge: '30d' } } : {}) }
    })
    const token = tokenCookieOf(response)!.value
    return { token, cookie: `token=${token}`, sid: claimsOf(token).sid as string }
  }
  const list = async (sub: string): Promise<SessionInfo[]> => await app.tokenCookie.listSessions(sub)
  return { app, clock, writes, signIn, list }
}

for (const backend of backends) {
  test(`${backend.name}: logins are listed newest first, with their times and user agent`, async (t) => {
    const { app, clock, signIn, list, writes } = await setup(t, backend)
    const laptop = await signIn('alice', 'Firefox on the laptop')
    clock.tick(minute)
    const phone = await signIn('alice', 'x'.repeat(300), true)
    clock.tick(minute)
    const untold = await signIn('alice')
    await signIn('bob', 'Bob\'s browser')
    const start = claimsOf(laptop.token).auth_time as number
    t.same(await list('alice'), [
      { sid: untold.sid, authTime: start + 120, lastSeenAt: start + 120, expiresAt: start + 120 + 12 * 3600, userAgent: null },
      { sid: phone.sid, authTime: start + 60, lastSeenAt: start + 60, expiresAt: start + 60 + 30 * 86400, userAgent: 'x'.repeat(256) },
      { sid: laptop.sid, authTime: start, lastSeenAt: start, expiresAt: start + 12 * 3600, userAgent: 'Firefox on the laptop' }
    ], 'newest first; a persistent login ends at its exp, a sliding one at its cap; the user agent is cut at 256 characters')
    t.same((await list('bob')).map((session) => session.userAgent), ['Bob\'s browser'])
    t.same(await list('nobody'), [])
    const written = writes.recordSession
    for (let index = 0; index < 5; index++) t.equal((await app.inject({ url: '/private', headers: { cookie: laptop.cookie } })).statusCode, 200)
    t.equal(writes.recordSession, written, 'an ordinary request writes nothing to the store')
    clock.tick(15 * minute)
    const renewed = await app.inject({ url: '/private', headers: { cookie: laptop.cookie, 'user-agent': 'another agent' } })
    t.ok(tokenCookieOf(renewed)?.value, 'a renewal')
    await t.resolves(async () => {
      for (let attempt = 0; attempt < 100 && (await list('alice')).find((session) => session.sid === laptop.sid)?.lastSeenAt !== start + 17 * 60; attempt++) {
        await new Promise((resolve) => setImmediate(resolve))
      }
    })
    t.match((await list('alice')).find((session) => session.sid === laptop.sid), { lastSeenAt: start + 17 * 60, authTime: start, userAgent: 'Firefox on the laptop' }, 'the renewal moved lastSeenAt, and kept the login\'s user agent')
  })

  test(`${backend.name}: revocations remove what they revoke; ended sessions leave`, async (t) => {
    const { app, clock, signIn, list } = await setup(t, backend)
    const laptop = await signIn('alice', 'laptop')
    const phone = await signIn('alice', 'phone')
    const tablet = await signIn('alice', 'tablet', true)
    await app.tokenCookie.revokeSession(phone.sid)
    t.same((await list('alice')).map((session) => session.userAgent).sort(), ['laptop', 'tablet'], 'revokeSession')
    // "Sign out my other devices", from the tablet.
    for (const session of await list('alice')) if (session.sid !== tablet.sid) await app.tokenCookie.revokeSession(session.sid)
    t.same((await list('alice')).map((session) => session.sid), [tablet.sid], 'only the current device is left')
    t.equal((await app.inject({ url: '/private', headers: { cookie: laptop.cookie } })).json().code, 'FST_TOKEN_COOKIE_REVOKED', 'the laptop is signed out')
    const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: tablet.cookie } })
    t.equal(logout.statusCode, 200)
    await t.resolves(async () => {
      for (let attempt = 0; attempt < 100 && (await list('alice')).length > 0; attempt++) await new Promise((resolve) => setImmediate(resolve))
    })
    t.same(await list('alice'), [], 'logout')
    await signIn('alice', 'desk')
    clock.tick(1000)
    await app.tokenCookie.revokeUser('alice')
    t.same(await list('alice'), [], 'revokeUser')
    await signIn('carol', 'short')
    clock.tick(12 * 3600 * 1000)
    t.same(await list('carol'), [], 'a session past its end is not listed')
  })

  test(`${backend.name}: at most 100 sessions a user; past that the one that ends soonest leaves the list`, async (t) => {
    const { clock, signIn, list } = await setup(t, backend)
    const first = await signIn('dave', 'first')
    for (let index = 0; index < 100; index++) {
      clock.tick(1000)
      await signIn('dave', `device ${index}`)
    }
    const listed = await list('dave')
    t.equal(listed.length, 100)
    t.notOk(listed.some((session) => session.sid === first.sid), 'the oldest login, which ends first, left the list')
  })
}

test('a store of the app\'s own without listing: listSessions rejects with FST_TOKEN_COOKIE_OPTIONS', async (t) => {
  const { recordSession, listSessions, ...plain } = memoryStore()
  t.ok(recordSession !== undefined && listSessions !== undefined)
  const app = await buildApp(t, { store: plain })
  await app.inject({ method: 'POST', url: '/login' })
  await t.rejects(app.tokenCookie.listSessions('alice'), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /does not list sessions/ })
  await t.rejects(app.tokenCookie.listSessions('' as never), TypeError)
  const none = await buildApp(t)
  await t.rejects(none.tokenCookie.listSessions('alice'), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /store is needed/ })
})

test('memoryStore keeps at most max users\' lists: the one listed first goes first', async (t) => {
  const store = memoryStore({ max: 2, onEvict: () => {} })
  const session = (sid: string) => ({ sid, authTime: 1, lastSeenAt: 1, expiresAt: Date.now() / 1000 + 60, userAgent: null })
  await store.recordSession!('a', session('1'))
  await store.recordSession!('b', session('2'))
  await store.recordSession!('b', session('3'))
  await store.recordSession!('c', session('4'))
  t.same(await store.listSessions!('a'), [], 'the first user\'s list went')
  t.same((await store.listSessions!('b')).map((listed) => listed.sid), ['2', '3'])
  t.same((await store.listSessions!('c')).map((listed) => listed.sid), ['4'])
})

test('a login goes on when the store cannot list it', async (t) => {
  const down: RevocationStore = { ...memoryStore(), recordSession: async () => { throw new Error('down') } }
  const app = await buildApp(t, { store: down })
  const response = await app.inject({ method: 'POST', url: '/login' })
  t.equal(response.statusCode, 200)
  t.ok(tokenCookieOf(response)?.value)
})
