// Micro-benchmark (after `npm run build`): `node bench/micro.js [--quick]`.
// The plugin's verify and renew paths beside the crypto under them, so the overhead above the crypto is visible:
//   HMAC-SHA256 alone < fast-jwt < @fastify/jwt's decorator; the plugin's codec (structural checks, one HMAC, JSON.parse,
//   claim checks) beside them; the plugin through Fastify (app.inject, minus the same request on an app without the plugin).
// The codec comes from the built internals (dist/esm/lib/token.js, with lib/policy.js's admit step); the rest goes through public APIs.
import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto'
import { parseArgs } from 'node:util'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import { createDecoder, createSigner, createVerifier } from 'fast-jwt'
import Fastify from 'fastify'
import tokenCookie from 'fastify-token-cookie'
import { admitterFor } from '../dist/esm/lib/policy.js'
import { resolveOptions } from '../dist/esm/lib/options.js'
import { createEncryptedCodec } from '../dist/esm/lib/encrypted-token.js'
import { createCodec, isInvalidToken } from '../dist/esm/lib/token.js'

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
// Best of many short batches: on a shared machine, noise only ever slows a batch down.
const seconds = args.quick ? 0.1 : 0.3
const repeats = args.quick ? 2 : 10

const secret = 'a-benchmark-secret-of-at-least-32-bytes!!'
const results = []

/** The best ops/s of `repeats` timed batches of about `seconds` each, after a warm-up. */
function measure (name, fn) {
  const deadline = (ns) => process.hrtime.bigint() + BigInt(Math.round(ns))
  for (const end = deadline(0.5e9); process.hrtime.bigint() < end;) for (let i = 0; i < 100; i++) fn()
  const rates = []
  for (let r = 0; r < repeats; r++) {
    let ops = 0
    const start = process.hrtime.bigint()
    const end = start + BigInt(Math.round(seconds * 1e9))
    let now = start
    while (now < end) {
      for (let i = 0; i < 100; i++) fn()
      ops += 100
      now = process.hrtime.bigint()
    }
    rates.push(ops / (Number(now - start) / 1e9))
  }
  record(name, rates)
}

/**
 * Async cases (app.inject) measured together, interleaved: every case warmed up, then `repeats` rounds of one
 * batch per case, so that a neighbour's burst slows every case alike; the best batch of each case counts.
 */
async function measureAsyncCases (cases) {
  // Back to the event loop after every 20: light-my-request leaves a setImmediate per inject, which a loop of
  // awaits alone never lets run (the heap would grow by ~9 KB per inject and slow everything down).
  const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))
  async function batch (fn, ns) {
    let ops = 0
    const start = process.hrtime.bigint()
    const end = start + BigInt(Math.round(ns))
    let now = start
    while (now < end) {
      for (let i = 0; i < 20; i++) await fn()
      await yieldToLoop()
      ops += 20
      now = process.hrtime.bigint()
    }
    return ops / (Number(now - start) / 1e9)
  }
  for (const [, fn] of cases) await batch(fn, 0.5e9)
  const rates = cases.map(() => [])
  for (let r = 0; r < repeats; r++) {
    for (const [i, [, fn]] of cases.entries()) rates[i].push(await batch(fn, seconds * 1e9))
  }
  for (const [i, [name]] of cases.entries()) record(name, rates[i])
}

function record (name, rates) {
  const ops = Math.max(...rates)
  results.push({ name, ops, ns: 1e9 / ops })
  console.error(`${name}: ${Math.round(ops)} ops/s`)
}

function check (condition, message) {
  if (!condition) throw new Error(`micro: ${message}`)
}

// A real token of the plugin, and a plugin-shaped payload for the signers.
const loginApp = Fastify()
await loginApp.register(tokenCookie, { secret })
loginApp.post('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: 'world' }) }))
// Distinct tokens, more than any cache of verified tokens should hold, for the cost of a token seen for the first time.
const distinct = []
loginApp.post('/mint', async (request, reply) => {
  for (let i = 0; i < (args.quick ? 5000 : 20000); i++) distinct.push(await reply.setTokenCookie({ sub: `user-${i}` }))
  return { ok: true }
})
const { token } = (await loginApp.inject({ method: 'POST', url: '/login' })).json()
await loginApp.inject({ method: 'POST', url: '/mint' })
await loginApp.close()
let next = 0
const nextDistinct = () => distinct[next++ % distinct.length]
const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const signingInput = token.slice(0, token.lastIndexOf('.'))
const garbage = 'garbage.garbage.garbage'
const forged = `${signingInput}.${Buffer.alloc(32, 7).toString('base64url')}`

// 1. The crypto alone; and the floor of verifying a new token: its HMAC compared in constant time, its payload decoded.
measure('HMAC-SHA256 of the signing input (crypto floor)', () => createHmac('sha256', secret).update(signingInput).digest('base64url'))
const secretKey = createSecretKey(Buffer.from(secret))
const signature = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url')
measure('HMAC-SHA256 + timingSafeEqual', () => timingSafeEqual(createHmac('sha256', secretKey).update(signingInput).digest(), signature))
const fastDecode = createDecoder()
measure('fast-jwt decode', () => fastDecode(token))

// 2. fast-jwt, signer and verifier built once.
const resolved = resolveOptions({ secret })
const fastSign = createSigner({ key: secret, algorithm: 'HS256' })
const fastVerify = createVerifier({ key: secret, algorithms: ['HS256'], ignoreExpiration: true })
check(fastVerify(token).sub === 'world', 'fast-jwt verifies the plugin token')
measure('fast-jwt verify', () => fastVerify(token))
measure('fast-jwt sign', () => fastSign(claims))

// 3. @fastify/jwt's decorator, registered as the plugin registers it (its resolved sign/verify options).
const jwtApp = Fastify()
await jwtApp.register(fastifyJwt, { namespace: 'bench', secret, sign: resolved.sign, verify: resolved.verify })
await jwtApp.ready()
const jwt = jwtApp.jwt.bench
measure('@fastify/jwt decorator verify', () => jwt.verify(token))
measure('@fastify/jwt decorator sign', () => jwt.sign(claims))

// 4. The plugin's codec, as the plugin builds it: structural checks, one HMAC, the payload and fast-jwt's claim checks
// (the decorator is never called for an HS256 token).
const codec = createCodec([{ kid: undefined, algorithm: 'HS256', jwt, hmacSecret: secret }], admitterFor(resolved.lifetime),
  { cacheSize: resolved.cacheSize, verify: resolved.verify })
const subOf = (result) => result.token?.claims.sub
check(subOf(codec.verify(token)) === 'world' && subOf(codec.verify(distinct[1])) === 'user-1', 'the codec verifies the plugin\'s tokens')
measure('plugin codec verify, the same token every call', () => codec.verify(token))
measure('plugin codec verify, a new token every call', () => codec.verify(nextDistinct()))
measure('plugin codec sign', () => codec.sign(claims))
const rejects = (value) => () => { if (!isInvalidToken(codec.verify(value))) throw new Error('accepted') }
measure('plugin codec rejects garbage.garbage.garbage', rejects(garbage))
measure('plugin codec rejects a forged signature', rejects(forged))

// 4b. The encrypting codec (`encrypt: true`): a new token is decrypted by jose (WebCrypto AES-256-GCM, asynchronous),
// the same token is found in the cache at once; a login or renewal encrypts.
const encryptedResolved = resolveOptions({ secret, encrypt: true })
const encrypted = await createEncryptedCodec(encryptedResolved.format.keys, admitterFor(encryptedResolved.lifetime),
  { cacheSize: encryptedResolved.cacheSize, verify: encryptedResolved.verify, sign: encryptedResolved.sign })
const encryptedToken = await encrypted.sign(claims)
const encryptedDistinct = await Promise.all(distinct.map((_, i) => encrypted.sign({ ...claims, sub: `user-${i}` })))
let nextEncrypted = 0
check(subOf(await encrypted.verify(encryptedToken)) === 'world' && subOf(await encrypted.verify(encryptedDistinct[1])) === 'user-1',
  'the encrypting codec decrypts its tokens')
await measureAsyncCases([
  ['encrypted codec verify, the same token every call', () => encrypted.verify(encryptedToken)],
  ['encrypted codec decrypt, a new token every call', () => encrypted.verify(encryptedDistinct[nextEncrypted++ % encryptedDistinct.length])],
  ['encrypted codec encrypt (sign)', () => encrypted.sign(claims)]
])
measure('@fastify/cookie serialize of the Set-Cookie', () => fastifyCookie.serialize('token', token, { httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: 1800 }))

// 5. Through Fastify (light-my-request): the same GET on an app without the plugin and on apps with it.
const body = { hello: 'world' }
async function app (options) {
  const instance = Fastify()
  if (options) await instance.register(tokenCookie, { secret, ...options })
  instance.get('/', options ? { preHandler: async (request) => { await request.verifyToken() } } : {}, async () => body)
  instance.get('/public', async () => body)
  await instance.ready()
  return instance
}
const cookieHeader = { cookie: `token=${token}` }
const bare = await app()
// What the plugin's hooks cost before any token work: @fastify/cookie's parsing hook, and two empty hooks.
const withCookie = Fastify()
await withCookie.register(fastifyCookie)
withCookie.get('/', async () => body)
await withCookie.ready()
const withHooks = Fastify()
withHooks.addHook('onRequest', (request, reply, done) => { done() })
withHooks.addHook('onSend', (request, reply, payload, done) => { done(null, payload) })
withHooks.get('/', async () => body)
await withHooks.ready()
const plugin = await app({})
const renewing = await app({ renewAfter: 0 })
// The login happened in an earlier second (renewal needs a new iat): wait for the next one.
await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)))
const statusOf = async (instance, request) => (await instance.inject(request)).statusCode
check(await statusOf(bare, { url: '/' }) === 200, 'bare answers 200')
check(await statusOf(plugin, { url: '/', headers: cookieHeader }) === 200, 'the plugin accepts its token')
const renewed = await renewing.inject({ url: '/', headers: cookieHeader })
check(renewed.statusCode === 200 && String(renewed.headers['set-cookie']).startsWith('token='), 'renewAfter 0 renews')
check(await statusOf(plugin, { url: '/', headers: { cookie: `token=${garbage}` } }) === 401, 'garbage is a 401')

await measureAsyncCases([
  ['inject: bare Fastify GET', () => bare.inject({ url: '/' })],
  ['inject: bare + @fastify/cookie, no cookie', () => withCookie.inject({ url: '/' })],
  ['inject: bare + @fastify/cookie, the token cookie', () => withCookie.inject({ url: '/', headers: cookieHeader })],
  ['inject: bare + empty onRequest and onSend hooks', () => withHooks.inject({ url: '/' })],
  ['inject: plugin, no cookie, public route', () => plugin.inject({ url: '/public' })],
  ['inject: plugin, valid cookie (verify)', () => plugin.inject({ url: '/', headers: cookieHeader })],
  ['inject: plugin, renewAfter 0 (verify + re-sign)', () => renewing.inject({ url: '/', headers: cookieHeader })],
  ['inject: plugin, garbage cookie (401)', () => plugin.inject({ url: '/', headers: { cookie: `token=${garbage}` } })],
  ['inject: plugin, forged signature (401)', () => plugin.inject({ url: '/', headers: { cookie: `token=${forged}` } })]
])
await Promise.all([bare, withCookie, withHooks, plugin, renewing, jwtApp].map((instance) => instance.close()))

const ns = Object.fromEntries(results.map((result) => [result.name, result.ns]))
const lines = []
lines.push(`Node ${process.version}; best of ${repeats} × ${seconds} s per case (the inject cases interleaved), after 0.5 s of warm-up; token ${token.length} bytes.`)
lines.push('')
lines.push('| case | ops/s | ns/op |')
lines.push('| --- | ---: | ---: |')
for (const { name, ops, ns } of results) lines.push(`| ${name} | ${Math.round(ops).toLocaleString('en-US')} | ${Math.round(ns).toLocaleString('en-US')} |`)
const us = (value) => `${(value / 1000).toFixed(1)} µs`
const over = (a, b) => us(ns[a] - ns[b])
lines.push('')
lines.push('Overheads (differences of the ns/op above):')
lines.push(`- fast-jwt verify above the HMAC: ${over('fast-jwt verify', 'HMAC-SHA256 of the signing input (crypto floor)')}`)
const floor = ns['HMAC-SHA256 + timingSafeEqual'] + ns['fast-jwt decode']
lines.push(`- the floor of a new token (HMAC + timingSafeEqual + fast-jwt decode): ${us(floor)}; the codec's new token above it: ` +
  `${us(ns['plugin codec verify, a new token every call'] - floor)} (the structural checks, the claim checks, admit and the cache)`)
lines.push(`- a token's first sight (cold): verify ${us(ns['plugin codec verify, a new token every call'])} signed, ` +
  `decrypt ${us(ns['encrypted codec decrypt, a new token every call'])} encrypted (jose, asynchronous); ` +
  `sign ${us(ns['plugin codec sign'])}, encrypt ${us(ns['encrypted codec encrypt (sign)'])}; ` +
  `encrypted token ${encryptedToken.length} bytes`)
lines.push(`- @fastify/jwt decorator above fast-jwt: verify ${over('@fastify/jwt decorator verify', 'fast-jwt verify')}, sign ${over('@fastify/jwt decorator sign', 'fast-jwt sign')}`)
lines.push(`- plugin codec above the decorator: verify a new token ${over('plugin codec verify, a new token every call', '@fastify/jwt decorator verify')}, ` +
  `the same token ${over('plugin codec verify, the same token every call', '@fastify/jwt decorator verify')} (a cache of verified tokens makes this negative), ` +
  `sign ${over('plugin codec sign', '@fastify/jwt decorator sign')}`)
lines.push(`- per request through Fastify, above bare: @fastify/cookie alone ${over('inject: bare + @fastify/cookie, no cookie', 'inject: bare Fastify GET')} ` +
  `(parsing the token cookie ${over('inject: bare + @fastify/cookie, the token cookie', 'inject: bare Fastify GET')}), ` +
  `two empty hooks ${over('inject: bare + empty onRequest and onSend hooks', 'inject: bare Fastify GET')}`)
lines.push(`- per request through Fastify, above bare, the plugin: no cookie ${over('inject: plugin, no cookie, public route', 'inject: bare Fastify GET')}, ` +
  `valid cookie ${over('inject: plugin, valid cookie (verify)', 'inject: bare Fastify GET')}, ` +
  `renewAfter 0 ${over('inject: plugin, renewAfter 0 (verify + re-sign)', 'inject: bare Fastify GET')}, ` +
  `garbage ${over('inject: plugin, garbage cookie (401)', 'inject: bare Fastify GET')}, ` +
  `forged ${over('inject: plugin, forged signature (401)', 'inject: bare Fastify GET')}`)
lines.push(`- of which the codec verify: ${us(ns['plugin codec verify, the same token every call'])} (the same token), ` +
  `${us(ns['plugin codec verify, a new token every call'])} (a new one); the rest is hooks, cookie handling, errors and Fastify`)
console.log(lines.join('\n'))
