// redisStore on a Redis Cluster of three masters started here (redis-server --cluster-enabled, redis-cli --cluster
// create), through an ioredis Cluster client, with the hash-tagged prefix '{tc}:': with and without replica.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import tokenCookie, { type RevocationStore } from '../index.js'
import { secret, tokenCookieOf } from './helpers/app.js'
import { haveRedis, redisCliPath, startRedisCluster, type RedisServer } from './helpers/redis.js'

function clusterClient (t: Test, nodes: RedisServer[]): Cluster {
  const client = new Cluster(nodes.map((node) => ({ host: node.host, port: node.port })))
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

async function appOn (t: Test, store: RevocationStore): Promise<FastifyInstance> {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, store, storeTimeout: '2s' })
  app.post<{ Body: { sub: string } }>('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: request.body.sub }) }))
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => request.user)
  app.post('/logout', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  await app.ready()
  return app
}

async function until (condition: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  for (;;) {
    if (await condition()) return true
    if (performance.now() > deadline) return false
    await sleep(5)
  }
}

if (redisCliPath === undefined) console.log('# redis-cli not found: Cluster tests skipped; install it with: apt-get install -y redis-tools')
if (haveRedis() && redisCliPath !== undefined) {
  const { redisStore } = await import('../redis.js')
  const nodes = await startRedisCluster(t)

  t.test('a Cluster client needs a hash-tagged prefix', async (t) => {
    const client = clusterClient(t, nodes)
    t.throws(() => redisStore({ client }), { name: 'TypeError', message: /in Redis Cluster the prefix needs a hash tag, such as '\{tc\}:'/ })
    t.throws(() => redisStore({ client, prefix: 'app:', replica: true }), { name: 'TypeError', message: /hash tag/ })
  })

  for (const replica of [false, true]) {
    t.test(`revoke, check, revokeUser, listSessions on a Cluster, ${replica ? 'with' : 'without'} replica`, async (t) => {
      const prefix = replica ? '{tc}:' : '{plain}:'
      const store = redisStore({ client: clusterClient(t, nodes), prefix, ...(replica ? { replica: true } : {}) })
      const app = await appOn(t, store)
      // Another instance on the same Cluster, without replica: what it revokes reaches this one.
      const other = redisStore({ client: clusterClient(t, nodes), prefix })
      const logIn = async (sub: string): Promise<string> => tokenCookieOf(await app.inject({ method: 'POST', url: '/login', payload: { sub } }))!.value
      const status = async (token: string): Promise<string | number> => {
        const response = await app.inject({ url: '/private', cookies: { token } })
        return response.statusCode === 200 ? 200 : (response.json() as { code: string }).code
      }

      const first = await logIn('ann')
      const second = await logIn('ann')
      const bob = await logIn('bob')
      t.equal(await status(first), 200)
      const listed = await app.tokenCookie.listSessions('ann')
      t.equal(listed.length, 2, 'both sessions listed')
      t.equal((await app.inject({ method: 'POST', url: '/logout', cookies: { token: first } })).statusCode, 200)
      t.equal(await status(first), 'FST_TOKEN_COOKIE_REVOKED', 'logout holds')
      t.equal(await status(second), 200)
      t.equal((await app.tokenCookie.listSessions('ann')).length, 1, 'the logged-out session leaves the list')
      await app.tokenCookie.revokeUser('ann')
      t.equal(await status(second), 'FST_TOKEN_COOKIE_REVOKED', 'revokeUser holds')
      t.same(await app.tokenCookie.listSessions('ann'), [])
      await other.revokeUser('bob', Math.floor(Date.now() / 1000), 60)
      t.ok(await until(async () => await status(bob) === 'FST_TOKEN_COOKIE_REVOKED', 2000), 'a revocation by another instance')
      const state = await store.check('nothing', 'nobody')
      t.same(state, { sessionRevoked: false, userRevokedAt: undefined })
    })
  }
}
