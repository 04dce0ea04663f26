// One app instance, as a user deploys it: the BUILT package (npm run build), its Redis store and the app's own
// ioredis client. instances.test.ts starts several of these as separate processes on one Redis.
//
// Environment: REDIS_PORT (required), TOKEN_SECRET (required), and optionally MAX_AGE, ABSOLUTE_MAX_AGE,
// RENEW_AFTER, STORE_TIMEOUT, FAIL_OPEN=1, OFFLINE_QUEUE=0 (ioredis fails commands at once while disconnected),
// REPLICA=1 (redisStore({ replica: true })) and MAX_LAG (its maxLag).
// Prints `{"listening":<port>}` on stdout once it listens on 127.0.0.1 (a free port); then Fastify's JSON log.
import { once } from 'node:events'
import Fastify, { LogController } from 'fastify'
import Redis from 'ioredis'
import tokenCookie from 'fastify-token-cookie'
import { redisStore } from 'fastify-token-cookie/redis'

const env = process.env
const redis = new Redis({
  host: '127.0.0.1',
  port: Number(env.REDIS_PORT),
  ...(env.OFFLINE_QUEUE === '0' ? { enableOfflineQueue: false } : {})
})
// ioredis reports each failed reconnection as an 'error' event; the plugin logs the outage itself (once).
redis.on('error', () => {})

const app = Fastify({ logger: { level: 'info' }, logController: new LogController({ disableRequestLogging: true }) })
await app.register(tokenCookie, {
  secret: env.TOKEN_SECRET,
  store: redisStore({ client: redis, ...(env.REPLICA === '1' ? { replica: true } : {}), ...(env.MAX_LAG ? { maxLag: env.MAX_LAG } : {}) }),
  ...(env.MAX_AGE ? { maxAge: env.MAX_AGE } : {}),
  ...(env.ABSOLUTE_MAX_AGE ? { absoluteMaxAge: env.ABSOLUTE_MAX_AGE } : {}),
  ...(env.RENEW_AFTER ? { renewAfter: Number(env.RENEW_AFTER) } : {}),
  ...(env.STORE_TIMEOUT ? { storeTimeout: env.STORE_TIMEOUT } : {}),
  failOpen: env.FAIL_OPEN === '1'
})

const protect = { preHandler: async (request) => { await request.verifyToken() } }
app.post('/login', async (request, reply) => ({ access_token: await reply.setTokenCookie({ sub: request.body.sub }) }))
app.get('/private', protect, async (request) => ({ sub: request.user.sub, sid: request.user.sid }))
app.get('/public', async () => ({ ok: true }))
app.post('/logout', async (request, reply) => {
  await reply.clearTokenCookie()
  return { ok: true }
})
app.post('/logout-everywhere', protect, async (request, reply) => {
  await app.tokenCookie.revokeUser(request.user.sub)
  await reply.clearTokenCookie()
  return { ok: true }
})
// An admin's "log this user out everywhere", without being that user.
app.post('/revoke-user', async (request) => {
  await app.tokenCookie.revokeUser(request.body.sub)
  return { ok: true }
})
app.addHook('onClose', async () => { redis.disconnect() })

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

// Ready before listening: a client without an offline queue fails every command until it is connected.
if (redis.status !== 'ready') await once(redis, 'ready')
await app.listen({ host: '127.0.0.1', port: 0 })
console.log(JSON.stringify({ listening: app.server.address().port }))
