// One benchmark variant as its own Fastify process: `node bench/server.js <variant>`.
// Forked by bench/run.js, it listens on 127.0.0.1:0 and talks to the parent over IPC:
//   -> { type: 'listening', port }             once ready
//   <- { type: 'prepare' }                       -> { type: 'prepared', client }   (what the load generator sends)
//   <- { type: 'start' } / { type: 'stop' }     -> { type: 'stats', ... }         (CPU and requests over the measured window)
// Started without IPC (by bench/profile.js, under `node --cpu-prof`), it prints one JSON line { type: 'listening', port,
// client } on stdout, and exits on SIGINT/SIGTERM so that the profile is written.
import { randomBytes } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifySecureSession from '@fastify/secure-session'
import fastifySession from '@fastify/session'
import { parse as milliseconds } from '@lukeed/ms'
import Fastify from 'fastify'
import tokenCookie from 'fastify-token-cookie'
import { referenceVariants, variants } from './variants.js'

const secret = 'a-benchmark-secret-of-at-least-32-bytes!!'
const body = { hello: 'world' }
// 6: every connection is a browser that keeps the cookie it is sent back (the cookie jar of bench/load.js). With a
// 4 s idle window and renewAfter 0.5, a connection's token is re-issued once it is 2 s old: 50 connections make about
// 25 renewals a second, some 0.5 % of the requests at 5 000 req/s. Real traffic with the defaults (30 min) renews once
// per user every 15 min: 1 request in 90 for a user who sends one every 10 s, 1 in 900 at one a second; the bench
// sits in that range, on the heavy side. A token is never closer than 2 s to its expiry, so a stalled connection
// does not turn into 401s.
const slidingMaxAge = process.env.BENCH_SLIDING_MAX_AGE ?? '4s'

const variant = process.argv[2]
const known = [...variants, ...referenceVariants]
if (!known.some(([id]) => id === variant)) {
  console.error(`unknown variant ${variant}; one of: ${known.map(([id]) => id).join(', ')}`)
  process.exit(2)
}

const app = Fastify({ logger: false })
const protect = { preHandler: async (request) => { await request.verifyToken() } }
// Prepares what the load generator sends: { path, expect, cookie?, cookies?, jar? }.
let prepare

switch (variant) {
  case 'floor':
    // What any plugin of this shape costs before doing anything: @fastify/cookie's parsing, an onRequest and an
    // onSend hook, an async preHandler, and a cookie as long as the plugin's tokens.
    await app.register(fastifyCookie)
    app.addHook('onRequest', (request, reply, done) => { done() })
    app.addHook('onSend', (request, reply, payload, done) => { done(null, payload) })
    app.get('/', { preHandler: async () => {} }, async () => body)
    prepare = async () => ({ path: '/', expect: 200, cookie: `token=${'x'.repeat(36)}.${'y'.repeat(260)}.${'z'.repeat(43)}` })
    break

  case 'bare-401': {
    // What Fastify's own error path costs: the floor of variant 9.
    const unauthorized = Object.assign(new Error('No token on the request'), { statusCode: 401, code: 'FST_TOKEN_COOKIE_MISSING' })
    app.get('/', { preHandler: async () => { throw unauthorized } }, async () => body)
    prepare = async () => ({ path: '/', expect: 401 })
    break
  }

  // bare-control: the same server again; how far its ratio strays from 1.00 is the noise of the run.
  case 'bare':
  case 'bare-control':
    app.get('/', async () => body)
    prepare = async () => ({ path: '/', expect: 200 })
    break

  case 'jwt-cookie':
    await app.register(fastifyCookie)
    await app.register(fastifyJwt, { secret, cookie: { cookieName: 'token', signed: false } })
    app.get('/', { preHandler: async (request) => { await request.jwtVerify({ onlyCookie: true }) } }, async () => body)
    app.post('/login', async (request, reply) => {
      const token = await reply.jwtSign({ sub: 'world' }, { expiresIn: '30m' })
      return reply.setCookie('token', token, { httpOnly: true, secure: false, sameSite: 'lax', path: '/', maxAge: 1800 }).send({ ok: true })
    })
    prepare = async () => ({ path: '/', expect: 200, cookie: await login('token') })
    break

  case 'secure-session':
    await app.register(fastifySecureSession, { key: randomBytes(32), cookie: { path: '/', httpOnly: true, secure: false } })
    app.get('/', async (request, reply) => {
      if (request.session.get('user') === undefined) return reply.code(401).send({ error: 'no session' })
      return body
    })
    app.post('/login', async (request) => {
      request.session.set('user', { sub: 'world' })
      return { ok: true }
    })
    prepare = async () => ({ path: '/', expect: 200, cookie: await login('session') })
    break

  case 'session':
    await app.register(fastifyCookie)
    await app.register(fastifySession, {
      secret,
      rolling: true,
      saveUninitialized: false,
      cookie: { secure: false, maxAge: 30 * 60 * 1000 }
    })
    app.get('/', async (request, reply) => {
      if (request.session.user === undefined) return reply.code(401).send({ error: 'no session' })
      return body
    })
    app.post('/login', async (request) => {
      request.session.user = { sub: 'world' }
      return { ok: true }
    })
    prepare = async () => ({ path: '/', expect: 200, cookie: await login('sessionId') })
    break

  case 'naive-sliding':
    // What users write today: verify, then re-sign and set the cookie on every response.
    await app.register(fastifyCookie)
    await app.register(fastifyJwt, { secret, cookie: { cookieName: 'token', signed: false } })
    app.get('/', {
      preHandler: async (request, reply) => {
        const { iat, exp, ...claims } = await request.jwtVerify({ onlyCookie: true })
        const token = await reply.jwtSign(claims, { expiresIn: '30m' })
        reply.setCookie('token', token, { httpOnly: true, secure: false, sameSite: 'lax', path: '/', maxAge: 1800 })
      }
    }, async () => body)
    app.post('/login', async (request, reply) => {
      const token = await reply.jwtSign({ sub: 'world' }, { expiresIn: '30m' })
      return reply.setCookie('token', token, { httpOnly: true, secure: false, sameSite: 'lax', path: '/', maxAge: 1800 }).send({ ok: true })
    })
    prepare = async () => ({ path: '/', expect: 200, cookie: await login('token') })
    break

  case 'plugin':
  case 'plugin-sliding':
  case 'plugin-renew-all':
  case 'plugin-anonymous':
  case 'plugin-garbage':
  case 'plugin-distinct':
  case 'plugin-redis':
  case 'plugin-redis-replica':
  case 'plugin-sessions':
  case 'plugin-encrypted': {
    // The defaults, but for the variants that are about renewal, and 13: encrypt (JWE), decrypted once, then cached.
    const options = { secret, encrypt: variant === 'plugin-encrypted' }
    if (variant === 'plugin-redis' || variant === 'plugin-redis-replica') {
      // 11: one MGET per request with a token, to a redis-server on this machine that bench/run.js started. 11b: the
      // revocations in this process's memory, kept current from a Redis stream: no command per request.
      const { default: Redis } = await import('ioredis')
      const { redisStore } = await import('fastify-token-cookie/redis')
      const client = new Redis({ host: '127.0.0.1', port: Number(process.env.BENCH_REDIS_PORT), lazyConnect: true })
      await client.connect()
      app.addHook('onClose', () => client.quit())
      const replica = variant === 'plugin-redis-replica'
      // bench/instructions.js runs the server some 50 times slower, under callgrind.
      const maxLag = replica && process.env.BENCH_MAX_LAG ? { maxLag: process.env.BENCH_MAX_LAG } : {}
      options.store = redisStore({ client, ...(replica ? { replica: true } : {}), ...maxLag })
      if (process.env.BENCH_STORE_TIMEOUT) options.storeTimeout = process.env.BENCH_STORE_TIMEOUT
    }
    if (variant === 'plugin-sliding') Object.assign(options, { maxAge: slidingMaxAge, renewAfter: 0.5 })
    if (variant === 'plugin-renew-all') options.renewAfter = 0
    // Another bound than the default (32768), e.g. BENCH_CACHE_SIZE=4096 to see every token verified once per lap.
    if (process.env.BENCH_CACHE_SIZE) options.cacheSize = Number(process.env.BENCH_CACHE_SIZE)
    await app.register(tokenCookie, options)
    app.get('/', protect, async () => body)
    app.get('/public', async () => body)
    app.post('/login', async (request, reply) => {
      await reply.setTokenCookie({ sub: 'world' })
      return { ok: true }
    })
    prepare = async () => {
      switch (variant) {
        case 'plugin-anonymous':
          return { path: '/public', expect: 200 }
        case 'plugin-redis':
        case 'plugin-redis-replica':
          return { path: '/', expect: 200, cookie: await login('token') }
        case 'plugin-garbage':
          return { path: '/', expect: 401, cookies: garbage('token', await login('token')) }
        case 'plugin-distinct':
          // The parent signs the tokens (fresh ones every round), so that signing them costs this process nothing.
          return { path: '/', expect: 200, distinct: true }
        case 'plugin-sessions':
          // The parent signs the pool of sessions once, and sends each token in turn.
          return { path: '/', expect: 200, sessions: true }
        case 'plugin-renew-all': {
          // A token from an earlier second, so that every request re-signs (iat is whole seconds).
          const cookie = await login('token')
          await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)))
          return { path: '/', expect: 200, cookie }
        }
        case 'plugin-sliding': {
          const cookie = await login('token')
          // When this cookie is due for renewal: bench/instructions.js warms up after it, so that the renewal path is
          // compiled before the count (iat is whole seconds, so the renewal is due by then at the latest).
          return { path: '/', expect: 200, cookie, jar: 'token', renewalDueAt: Date.now() + 0.5 * milliseconds(slidingMaxAge) }
        }
        default:
          return { path: '/', expect: 200, cookie: await login('token') }
      }
    }
    break
  }
}

/** Logs in through the app and returns the `name=value` pair of the cookie it set, as on the wire (what a browser sends back). */
async function login (name) {
  const response = await app.inject({ method: 'POST', url: '/login' })
  const header = response.headers['set-cookie']
  const line = [header ?? []].flat().find((value) => value.startsWith(`${name}=`))
  if (response.statusCode !== 200 || line === undefined) throw new Error(`${variant}: login failed (${response.statusCode}) ${response.body}`)
  return line.split(';')[0]
}

/** What an attacker sends: junk, forged signatures, tampered payloads, `alg: none`. */
function garbage (name, validCookie) {
  const valid = validCookie.slice(name.length + 1)
  const [header, payload] = valid.split('.')
  const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
  const values = []
  for (let i = 0; i < 16; i++) {
    values.push('garbage.garbage.garbage')
    values.push(randomBytes(20 + i * 12).toString('base64url'))
    // Well-formed, right algorithm, wrong signature: this one costs an HMAC.
    values.push(`${header}.${b64({ sub: `attacker-${i}`, iat: 1, exp: 4102444800, auth_time: 1 })}.${randomBytes(32).toString('base64url')}`)
    // A tampered payload with the original signature (an HMAC too), or `alg: none` (refused before any crypto).
    values.push(i % 2 === 0 ? `${header}.${payload.slice(0, -2)}xy.${valid.split('.')[2]}` : `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`)
  }
  return values.map((value) => `${name}=${value}`)
}

// The measurement: one counter on the raw server (no Fastify hook, which would change the hook path being measured).
let served = 0
app.server.on('request', () => { served++ })
let window

function stats () {
  const cpu = process.cpuUsage(window?.cpu)
  const memory = process.memoryUsage()
  return {
    type: 'stats',
    requests: served - (window?.served ?? 0),
    userUs: cpu.user,
    systemUs: cpu.system,
    rss: memory.rss,
    heapUsed: memory.heapUsed
  }
}

async function handle (message) {
  switch (message.type) {
    case 'prepare':
      return { type: 'prepared', client: await prepare() }
    case 'start':
      window = { cpu: process.cpuUsage(), served }
      return { type: 'started' }
    case 'stop': {
      const result = stats()
      window = undefined
      // Retained memory, after the measured window: what would grow if the plugin kept something per token.
      if (typeof globalThis.gc === 'function') {
        globalThis.gc()
        result.heapAfterGc = process.memoryUsage().heapUsed
      }
      return result
    }
    case 'exit':
      await stop()
      return undefined
    default:
      throw new Error(`unknown message ${message.type}`)
  }
}

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await app.close()
  process.exit(0)
}

process.on('SIGINT', stop)
process.on('SIGTERM', stop)

await app.listen({ host: '127.0.0.1', port: Number(process.env.BENCH_PORT ?? 0) })
const { port } = app.server.address()

if (process.send) {
  // The parent gone, so are we.
  process.on('disconnect', stop)
  process.on('message', (message) => {
    handle(message).then((reply) => {
      if (reply) process.send({ ...reply, id: message.id })
    }, (error) => {
      process.send({ type: 'error', id: message.id, message: error.stack ?? String(error) })
    })
  })
  process.send({ type: 'listening', port })
} else {
  console.log(JSON.stringify({ type: 'listening', port, client: await prepare() }))
}
