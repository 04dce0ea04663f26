// redisStore({ replica: true }) against a real redis-server (started here; no mocks): the store alone, then the
// plugin on it. Real time, but for the expiry tests (a fake Date only).
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { LogController, type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import t, { type Test } from 'tap'
import tokenCookie, { type RevocationState, type RevocationStore, type TokenCookieOptions } from '../index.js'
import { kReplica, type Replica } from '../lib/replica.js'
import type { RedisStoreOptions } from '../redis.js'
import { fakeClock, secret, tokenCookieOf } from './helpers/app.js'
import { haveRedis, startRedis, type RedisServer } from './helpers/redis.js'

function clientFor (t: Test, server: RedisServer, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: server.host, port: server.port, ...options })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** The replica behind a store: its size is what the tests read of its memory. */
const replicaOf = (store: RevocationStore): Replica => (store as RevocationStore & { [kReplica]: Replica })[kReplica]

/** Polls `condition` (real time) until it holds or `ms` pass. */
async function until (condition: () => boolean | Promise<boolean>, ms: number, every = 5): Promise<boolean> {
  const deadline = performance.now() + ms
  for (;;) {
    if (await condition()) return true
    if (performance.now() > deadline) return false
    await sleep(every)
  }
}

/** A replica's answer: synchronous, always. */
function known (store: RevocationStore, sid: string, sub: string | undefined): RevocationState {
  const state = store.check(sid, sub)
  if (state instanceof Promise) throw new Error('a replica answers synchronously')
  return state
}

/** Whether `check` says the store cannot tell (it throws), rather than answering. */
function lagging (store: RevocationStore): boolean {
  try {
    store.check('probe', 'probe')
    return false
  } catch {
    return true
  }
}

interface LogLine { level: number, msg: string }

async function appWith (t: Test, options: Partial<TokenCookieOptions>): Promise<{ app: FastifyInstance, logs: LogLine[] }> {
  const logs: LogLine[] = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line)) } }
  const app = Fastify({ logger: { level: 'info', stream }, logController: new LogController({ disableRequestLogging: true }) })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, ...options })
  app.post<{ Body: { sub: string } }>('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: request.body.sub }) }))
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => request.user)
  app.get('/public', async () => ({ ok: true }))
  app.post('/logout', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  await app.ready()
  return { app, logs }
}

async function logIn (app: FastifyInstance, sub: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/login', payload: { sub } })
  return tokenCookieOf(response)!.value
}

const get = async (app: FastifyInstance, url: string, token?: string): Promise<LightMyRequestResponse> =>
  await app.inject({ url, ...(token === undefined ? {} : { cookies: { token } }) })
const outcome = (response: LightMyRequestResponse): string | number =>
  response.statusCode === 200 ? 200 : (response.json() as { code?: string }).code ?? response.statusCode

async function commandStats (client: Redis): Promise<Record<string, number>> {
  const info = await client.info('commandstats')
  const stats: Record<string, number> = {}
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (!/^(info|config\|.*)$/.test(match[1])) stats[match[1]] = Number(match[2])
  return stats
}

if (haveRedis()) {
  const { redisStore } = await import('../redis.js')
  const server = await startRedis(t)
  const admin = clientFor(t, server)
  let prefixes = 0
  /** A replica on a prefix of its own, closed in teardown. */
  const replicaStore = async (t: Test, options: Partial<RedisStoreOptions> = {}, ready = true): Promise<RevocationStore> => {
    const store = redisStore({ client: clientFor(t, server), prefix: `p${++prefixes}:`, replica: true, ...options })
    t.teardown(() => store.close?.())
    if (ready) await store.ready?.()
    return store
  }
  /** A plain store (another instance, not a replica) on the prefix of the last replica made. */
  const writerFor = (t: Test): RevocationStore => redisStore({ client: clientFor(t, server), prefix: `p${prefixes}:` })

  t.test('option errors: replica, maxLag, a client without duplicate, a Cluster without a hash tag', async (t) => {
    const client = clientFor(t, server)
    for (const replica of [1, 'yes', null]) {
      t.throws(() => redisStore({ client, replica: replica as never }), { name: 'TypeError', message: 'redisStore: replica must be true or false' })
    }
    for (const maxLag of [0, -1, NaN, Infinity, '5', 'soon', '0ms', null, {}]) {
      t.throws(() => redisStore({ client, replica: true, maxLag: maxLag as never }), { name: 'TypeError', message: /^redisStore: maxLag must be a positive duration: .*\(got / }, String(maxLag))
    }
    t.throws(() => redisStore({ client, maxLag: '1s' }), { name: 'TypeError', message: 'redisStore: maxLag applies only with replica: true' })
    t.throws(() => redisStore({ client, replica: false, maxLag: 1 }), { message: /only with replica/ })
    const { duplicate, ...noDuplicate } = { mget: client.mget, hgetall: client.hgetall, evalsha: client.evalsha, eval: client.eval, duplicate: 1 }
    t.equal(duplicate, 1)
    t.throws(() => redisStore({ client: noDuplicate as never, replica: true }), { name: 'TypeError', message: /replica needs an ioredis client .* with duplicate\(\)/ })
    const cluster = (keyPrefix?: string): never => ({ ...noDuplicate, isCluster: true, ...(keyPrefix === undefined ? {} : { options: { keyPrefix } }) }) as never
    for (const prefix of [undefined, 'tc:', '{}:', '}{tc:', '{tc']) {
      t.throws(() => redisStore({ client: cluster(), prefix }), { name: 'TypeError', message: /in Redis Cluster the prefix needs a hash tag, such as '\{tc\}:'/ }, String(prefix))
    }
    t.ok(redisStore({ client: cluster(), prefix: '{tc}:' }), 'a hash-tagged prefix')
    t.ok(redisStore({ client: cluster('{app}:') }), 'or a hash-tagged keyPrefix')
    t.ok(redisStore({ client: cluster('app:'), prefix: 'x{t}:' }), 'a tag anywhere in the prefix')
    t.ok(redisStore({ client, replica: true, maxLag: '250ms' }).ready, 'a replica has ready and close')
    t.equal(redisStore({ client }).ready, undefined, 'a plain store has neither')
  })

  t.test('ready loads what was revoked before; a check before it cannot tell', async (t) => {
    const store = await replicaStore(t, {}, false)
    const writer = writerFor(t)
    await writer.revokeSession('before', 60)
    await writer.revokeUser('ann', 100, 60)
    await writer.revokeUser('ann', 50, 30)
    t.throws(() => store.check('before', 'ann'), { message: 'redisStore replica: not loaded (before ready, or after close)' }, 'before ready: no answer')
    await store.ready?.()
    t.same(store.check('before', 'ann'), { sessionRevoked: true, userRevokedAt: 100 }, 'loaded: the session and the later time of the user')
    t.same(store.check('other', 'bob'), { sessionRevoked: false, userRevokedAt: undefined })
    t.same(store.check('before', undefined), { sessionRevoked: true, userRevokedAt: undefined })
    t.equal(replicaOf(store).size, 2)
    t.equal(await admin.zcard(`p${prefixes}:r`), 2, 'the index holds one member per user')
    t.equal(store.ready?.(), store.ready?.(), 'ready again: the same load')
    t.throws(() => store.check(1 as never, 'u'), { name: 'TypeError', message: /check: sid must be a string/ })
    t.throws(() => store.check('s', 1 as never), { name: 'TypeError', message: /check: sub must be a string/ })
  })

  t.test('revocations from another store arrive within milliseconds; its own at once', async (t) => {
    const store = await replicaStore(t)
    const writer = writerFor(t)
    const started = performance.now()
    await writer.revokeSession('elsewhere', 60)
    t.ok(await until(() => known(store, 'elsewhere', undefined).sessionRevoked, 2000), 'a session revoked by another store')
    t.comment(`seen ${(performance.now() - started).toFixed(1)} ms after the write was sent`)
    await writer.revokeUser('cy', 10, 60)
    t.ok(await until(() => known(store, 'x', 'cy').userRevokedAt === 10, 2000), 'a user revoked by another store')
    await store.revokeSession('here', 60)
    t.same(store.check('here', undefined), { sessionRevoked: true, userRevokedAt: undefined }, 'its own revocation, as soon as it resolves')
    await store.revokeUser('cy', 20, 60)
    t.equal(known(store, 'x', 'cy').userRevokedAt, 20, 'a user revocation moves forward')
    await store.revokeUser('cy', 5, 60)
    t.equal(known(store, 'x', 'cy').userRevokedAt, 20, 'never back')
    await store.revokeSession('here', 10)
    t.ok(known(store, 'here', undefined).sessionRevoked, 'a shorter revocation of a revoked session changes nothing')
    t.same(await store.listSessions?.('nobody'), [], 'listing reads Redis')
  })

  t.test('entries the replica cannot read are left out; a burst larger than a read is taken in turns', async (t) => {
    const store = await replicaStore(t)
    const prefix = `p${prefixes}:`
    const future = String(Date.now() + 60_000)
    await admin.xadd(`${prefix}x`, '*', 'm', 'q:what', 'e', future)
    await admin.xadd(`${prefix}x`, '*', 'm', 'u:notanumber:sub', 'e', future)
    await admin.xadd(`${prefix}x`, '*', 'm', 'u:12', 'e', future)
    await admin.xadd(`${prefix}x`, '*', 'other', 'field')
    await admin.xadd(`${prefix}x`, '*', 'm', 's:old', 'e', String(Date.now() - 1000))
    await admin.xadd(`${prefix}x`, '*', 'm', 's:last', 'e', future)
    t.ok(await until(() => known(store, 'last', undefined).sessionRevoked, 2000), 'the entry after them is read')
    t.equal(replicaOf(store).size, 1, 'none of the others is kept')
    // One transaction: the replica's XREAD wakes once, to 1500 entries, more than one read takes.
    const burst = admin.multi()
    for (let index = 0; index < 1500; index++) burst.xadd(`${prefix}x`, '*', 'm', `s:burst-${index}`, 'e', future)
    await burst.exec()
    t.ok(await until(() => replicaOf(store).size === 1501, 5000), 'all 1500 arrive')
    t.ok(known(store, 'burst-1499', undefined).sessionRevoked)
  })

  t.test('maxLag: no word from Redis for that long and the store cannot tell; it catches up after', async (t) => {
    const store = await replicaStore(t, { maxLag: '200ms' })
    const writer = writerFor(t)
    t.notOk(lagging(store))
    const paused = performance.now()
    // Redis answers nobody for 1 s (its clients' commands wait): no reply to the replica's XREAD.
    await admin.client('PAUSE', 1000, 'ALL')
    const during = writer.revokeSession('during', 60)
    t.ok(await until(() => lagging(store), 900), 'counted as down before Redis answers again')
    t.throws(() => store.check('x', undefined), { message: /^redisStore replica: no word from Redis for \d+ ms \(maxLag 200 ms\)$/ })
    t.ok(performance.now() - paused >= 200, 'not before maxLag')
    await during
    t.ok(await until(() => !lagging(store), 3000), 'caught up once Redis answers')
    t.ok(known(store, 'during', undefined).sessionRevoked, 'with what was revoked meanwhile')
  })

  t.test('Redis stops and starts again: the replica reloads, and keeps what it knew', async (t) => {
    const own = await startRedis(t, { persist: true })
    const client = clientFor(t, own, { enableOfflineQueue: false })
    await until(() => client.status === 'ready', 5000)
    const store = redisStore({ client, replica: true, maxLag: '300ms' })
    t.teardown(() => store.close?.())
    await store.ready?.()
    await store.revokeSession('kept', 60)
    await own.stop('SIGKILL')
    t.ok(await until(() => lagging(store), 3000), 'down while Redis is')
    await own.start()
    t.ok(await until(() => !lagging(store), 10_000), 'back without a restart')
    t.ok(known(store, 'kept', undefined).sessionRevoked, 'the revocation from before holds')
    const writer = redisStore({ client: clientFor(t, own) })
    await writer.revokeSession('after', 60)
    t.ok(await until(() => known(store, 'after', undefined).sessionRevoked, 2000), 'and it follows the stream again')
  })

  t.test('expired revocations leave memory (fake Date)', async (t) => {
    const clock = fakeClock(t, Date.now())
    const store = await replicaStore(t)
    await store.revokeSession('short', 2)
    await store.revokeSession('long', 600)
    await store.revokeUser('dee', 1, 2)
    t.equal(replicaOf(store).size, 3)
    clock.tick(3000)
    t.same(store.check('short', 'dee'), { sessionRevoked: false, userRevokedAt: undefined }, 'expired: not revoked, before any sweep')
    t.ok(known(store, 'long', undefined).sessionRevoked)
    t.equal(replicaOf(store).size, 3, 'still held until the sweep')
    clock.tick(30_000)
    // The sweep runs with the reader's next turn (within maxLag / 4, real time).
    t.ok(await until(() => replicaOf(store).size === 1, 2000), 'swept: only the live one is left')
    t.ok(known(store, 'long', undefined).sessionRevoked)
  })

  t.test('close: before ready, twice, and ready after close never reads', async (t) => {
    const unused = redisStore({ client: clientFor(t, server), replica: true })
    await unused.close?.()
    await unused.close?.()
    await unused.ready?.()
    t.throws(() => unused.check('s', undefined), /not loaded/, 'never loaded')
    const store = await replicaStore(t)
    t.notOk(lagging(store))
    await store.close?.()
    t.throws(() => store.check('s', undefined), /after close/, 'closed: no more answers')
  })

  t.test('the plugin on a replica: no Redis command per request, logout holds at once, 503 when it lags', async (t) => {
    const store = redisStore({ client: clientFor(t, server), prefix: 'plug:', replica: true, maxLag: '200ms' })
    const { app, logs } = await appWith(t, { store })
    t.notOk(lagging(store), 'app.ready() resolved once the replica had loaded')
    const token = await logIn(app, 'eve')
    await admin.config('RESETSTAT')
    for (let index = 0; index < 20; index++) t.equal(outcome(await get(app, '/private', token)), 200)
    const stats = await commandStats(admin)
    t.same(Object.keys(stats).filter((name) => name !== 'xread'), [], `20 requests, no command but the replica's reads (${JSON.stringify(stats)})`)
    t.equal(outcome(await app.inject({ method: 'POST', url: '/logout', cookies: { token } })), 200)
    t.equal(outcome(await get(app, '/private', token)), 'FST_TOKEN_COOKIE_REVOKED', 'the logout holds at once on this instance')

    const other = await logIn(app, 'fay')
    await admin.client('PAUSE', 800, 'ALL')
    t.ok(await until(() => lagging(store), 700))
    t.equal(outcome(await get(app, '/private', other)), 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE', '503 on a protected route')
    t.equal(outcome(await get(app, '/private', other)), 'FST_TOKEN_COOKIE_STORE_UNAVAILABLE')
    t.equal(outcome(await get(app, '/public', other)), 200, 'public routes go on')
    t.ok(await until(() => !lagging(store), 3000))
    t.equal(outcome(await get(app, '/private', other)), 200, 'back')
    const lines = logs.filter((line) => /revocation store/.test(line.msg)).map((line) => [line.level, line.msg])
    t.same(lines, [
      [40, 'fastify-token-cookie: the revocation store is unavailable; protected routes answer 503'],
      [30, 'fastify-token-cookie: the revocation store is back']
    ], 'the outage logged once, and its end')
  })

  t.test('failOpen on a replica: tokens pass while it lags, revocations hold once it has caught up', async (t) => {
    const store = redisStore({ client: clientFor(t, server), prefix: 'open:', replica: true, maxLag: '200ms' })
    const { app } = await appWith(t, { store, failOpen: true })
    const token = await logIn(app, 'gus')
    const writer = redisStore({ client: clientFor(t, server), prefix: 'open:' })
    await admin.client('PAUSE', 800, 'ALL')
    t.ok(await until(() => lagging(store), 700))
    const revoking = writer.revokeUser('gus', Math.floor(Date.now() / 1000), 60)
    t.equal(outcome(await get(app, '/private', token)), 200, 'passes unchecked')
    await revoking
    t.ok(await until(() => !lagging(store), 3000))
    t.equal(outcome(await get(app, '/private', token)), 'FST_TOKEN_COOKIE_REVOKED', 'the revocation made meanwhile holds')
  })

  t.test('app.close() stops the reader and closes its connection', async (t) => {
    const client = clientFor(t, server, { connectionName: 'closing-app' })
    const store = redisStore({ client, prefix: 'close:', replica: true })
    const app = Fastify()
    await app.register(tokenCookie, { secret, store })
    await app.ready()
    const named = async (): Promise<number> => (await admin.client('LIST') as string).split('\n').filter((line) => line.includes('name=closing-app')).length
    t.equal(await named(), 2, 'the app\'s client and the replica\'s own')
    await app.close()
    t.ok(await until(async () => await named() === 1, 2000), 'the replica\'s connection is gone')
  })
}
