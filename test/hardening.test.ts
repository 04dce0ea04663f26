// Attacks on the token cookie (the hardening rules, the error codes, the fine print): every bad token is a 401 with
// a documented code, never a 400 or a 500, and a bad cookie is cleared. Attack tokens are crafted here, with
// node:crypto; only baseline tokens come from the plugin's own login.
import FakeTimers from '@sinonjs/fake-timers'
import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { generateKeyPairSync } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../index.js'
import {
  b64url, craft, decode, encodeSegment, nowSeconds, raw, rawTimeClaims, signInput, signSegments, timeClaims
} from './helpers/craft.js'
import { asLines, buildChunkApp, effects, Jar } from './helpers/chunks.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]
type Headers = Record<string, string>
type Clock = ReturnType<typeof FakeTimers.install>

const secret = 'a-test-secret-that-is-32-bytes!!!'
const otherSecret = 'another-test-secret-of-32-bytes!!'
const INVALID = 'FST_TOKEN_COOKIE_INVALID'
const EXPIRED = 'FST_TOKEN_COOKIE_EXPIRED'
const MISSING = 'FST_TOKEN_COOKIE_MISSING'
const REVOKED = 'FST_TOKEN_COOKIE_REVOKED'
const start = Date.UTC(2030, 0, 1)
const T = start / 1000

const rsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
})
const attackerRsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' }
})
const rsaSecret = { private: rsa.privateKey, public: rsa.publicKey }

// ---------------------------------------------------------------------------------------------------------
// Fixtures

async function buildApp (t: Tap, overrides: Partial<TokenCookieOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(tokenCookie, { secret, ...overrides })
  app.post('/login', async (request, reply) => ({ token: await reply.setTokenCookie({ sub: 'alice' }) }))
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => request.user)
  app.get('/public', async () => ({ ok: true }))
  t.teardown(() => app.close())
  return app
}

function installClock (t: Tap, now = start): Clock {
  const clock = FakeTimers.install({ now, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  return clock
}

async function login (app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/login' })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json<{ token: string }>().token
}

function setCookies (res: LightMyRequestResponse): string[] {
  const header = res.headers['set-cookie']
  if (header === undefined) return []
  return Array.isArray(header) ? header : [String(header)]
}

/** Set-Cookie lines for `name` that write a token (a non-empty value). */
function issuedCookies (res: LightMyRequestResponse, name = 'token'): string[] {
  return setCookies(res).filter((line) => line.startsWith(`${name}=`) && !line.startsWith(`${name}=;`))
}

function issuedToken (res: LightMyRequestResponse, name = 'token'): string | undefined {
  const line = issuedCookies(res, name)[0]
  return line === undefined ? undefined : line.slice(name.length + 1, line.indexOf(';'))
}

/** Set-Cookie lines that expire the cookie: `token=; Max-Age=0; …`. */
function clearingCookies (res: LightMyRequestResponse, name = 'token'): string[] {
  return setCookies(res).filter((line) => line.startsWith(`${name}=;`) && /;\s*Max-Age=0(;|$)/i.test(line) && /;\s*Path=\//i.test(line))
}

async function getPrivate (app: FastifyInstance, headers: Headers): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url: '/private', headers })
}

/** 401 with `code` on the protected route; on the public route, 200 unauthenticated. No token is issued. */
async function expectRejected (t: Tap, app: FastifyInstance, headers: Headers, code: string | string[], clears = true): Promise<void> {
  const codes = Array.isArray(code) ? code : [code]
  const res = await getPrivate(app, headers)
  t.equal(res.statusCode, 401, `protected route: 401 (got ${res.statusCode} ${res.body})`)
  const body = res.json<{ statusCode: number, code: string }>()
  t.ok(codes.includes(body.code), `code ${body.code} is ${codes.join(' or ')}`)
  t.equal(body.statusCode, 401)
  t.same(issuedCookies(res), [], 'no token cookie issued by the protected route')
  if (clears) t.equal(clearingCookies(res).length, 1, 'the protected route clears the bad cookie')

  const pub = await app.inject({ method: 'GET', url: '/public', headers })
  t.equal(pub.statusCode, 200, `public route: 200 (got ${pub.statusCode} ${pub.body})`)
  t.same(pub.json(), { ok: true })
  t.same(issuedCookies(pub), [], 'no token cookie issued by the public route')
  if (clears) t.equal(clearingCookies(pub).length, 1, 'the public route clears the bad cookie')
}

async function expectRejectedCookie (t: Tap, app: FastifyInstance, token: string, code: string | string[]): Promise<void> {
  await expectRejected(t, app, { cookie: `token=${token}` }, code)
}

async function expectAccepted (t: Tap, app: FastifyInstance, headers: Headers): Promise<Record<string, unknown>> {
  const res = await getPrivate(app, headers)
  t.equal(res.statusCode, 200, `protected route: 200 (got ${res.statusCode} ${res.body})`)
  t.same(clearingCookies(res), [], 'a good cookie is not cleared')
  return res.statusCode === 200 ? res.json<Record<string, unknown>>() : {}
}

async function expectAcceptedCookie (t: Tap, app: FastifyInstance, token: string): Promise<Record<string, unknown>> {
  return await expectAccepted(t, app, { cookie: `token=${token}` })
}

/** A correctly signed HS256 token for `secret` with good time claims and `extra` claims. */
function goodToken (extra: Record<string, unknown> = {}, key: string = secret): string {
  return craft({ header: { alg: 'HS256', typ: 'JWT' }, payload: { sub: 'alice', ...timeClaims(), ...extra }, key })
}

/** Records any outgoing request (fetch, http, https) while a test runs. */
function trapNetwork (t: Tap): string[] {
  const calls: string[] = []
  const trap = (kind: string) => (...args: unknown[]) => {
    calls.push(`${kind} ${String(args[0])}`)
    throw new Error('network access in a hardening test')
  }
  const originalFetch = globalThis.fetch
  const modules = [['http', http], ['https', https]] as const
  const saved = modules.map(([, module]) => ({ request: module.request, get: module.get }))
  globalThis.fetch = trap('fetch') as unknown as typeof fetch
  for (const [name, module] of modules) Object.assign(module, { request: trap(`${name}.request`), get: trap(`${name}.get`) })
  t.teardown(() => {
    globalThis.fetch = originalFetch
    modules.forEach(([, module], index) => Object.assign(module, saved[index]))
  })
  return calls
}

// ---------------------------------------------------------------------------------------------------------
// Controls: the crafting is right, so the attacks below fail for the reason they claim.

test('controls: issued and correctly crafted tokens are accepted', async (t) => {
  const app = await buildApp(t)

  t.test('a token from setTokenCookie', async (t) => {
    const token = await login(app)
    const user = await expectAcceptedCookie(t, app, token)
    t.equal(user.sub, 'alice')
    const { header, payload } = decode(token)
    t.same(header, { alg: 'HS256', typ: 'JWT' })
    t.same(payload.tc, { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200 })
  })

  t.test('a crafted HS256 token without tc takes the default policy', async (t) => {
    const user = await expectAcceptedCookie(t, app, goodToken())
    t.equal(user.sub, 'alice')
  })

  t.test('a crafted HS256 token with a tc claim', async (t) => {
    const token = goodToken({ tc: { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200 } })
    t.equal((await expectAcceptedCookie(t, app, token)).sub, 'alice')
  })

  t.test('a crafted token from raw JSON text', async (t) => {
    const token = craft({ payload: raw(`{"sub":"alice",${rawTimeClaims()}}`), key: secret })
    t.equal((await expectAcceptedCookie(t, app, token)).sub, 'alice')
  })

  t.test('a crafted token through signSegments', async (t) => {
    const token = signSegments(encodeSegment({ alg: 'HS256' }), encodeSegment({ sub: 'alice', ...timeClaims() }), 'HS256', secret)
    t.equal((await expectAcceptedCookie(t, app, token)).sub, 'alice')
  })

  t.test('no cookie at all is MISSING', async (t) => {
    await expectRejected(t, app, {}, MISSING, false)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Algorithms

test('alg none, in any spelling, with or without a signature, is INVALID', async (t) => {
  const app = await buildApp(t)
  const payload = { sub: 'alice', ...timeClaims() }
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    t.test(`alg ${alg}, empty signature`, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg, typ: 'JWT' }, payload }), INVALID)
    })
    t.test(`alg ${alg}, HMAC signature with the right secret`, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg, typ: 'JWT' }, payload, key: secret, alg: 'HS256' }), INVALID)
    })
    t.test(`alg ${alg}, signature of a real token`, async (t) => {
      const real = decode(await login(app)).signature
      await expectRejectedCookie(t, app, craft({ header: { alg }, payload, signature: real }), INVALID)
    })
  }
})

test('stripped, empty and missing signatures are INVALID', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  const [header, payload] = token.split('.')

  t.test('stripped signature: header.payload.', async (t) => {
    await expectRejectedCookie(t, app, `${header}.${payload}.`, INVALID)
  })
  t.test('two segments: header.payload', async (t) => {
    await expectRejectedCookie(t, app, `${header}.${payload}`, INVALID)
  })
  t.test('empty header segment', async (t) => {
    await expectRejectedCookie(t, app, `.${payload}.${decode(token).signature}`, INVALID)
  })
  t.test('empty payload segment', async (t) => {
    await expectRejectedCookie(t, app, `${header}..${decode(token).signature}`, INVALID)
  })
  t.test('one segment', async (t) => {
    await expectRejectedCookie(t, app, header, INVALID)
  })
  t.test('only dots', async (t) => {
    await expectRejectedCookie(t, app, '..', INVALID)
  })
})

test('tampered tokens are INVALID', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  const { header, payload, signature } = decode(token)
  const [headerSegment, payloadSegment] = token.split('.')

  t.test('control: the untouched token', async (t) => {
    await expectAcceptedCookie(t, app, token)
  })
  t.test('payload changed (sub), signature kept', async (t) => {
    await expectRejectedCookie(t, app, `${headerSegment}.${encodeSegment({ ...payload, sub: 'mallory' })}.${signature}`, INVALID)
  })
  t.test('payload changed (exp pushed a day later), signature kept', async (t) => {
    const exp = (payload.exp as number) + 86400
    await expectRejectedCookie(t, app, `${headerSegment}.${encodeSegment({ ...payload, exp })}.${signature}`, INVALID)
  })
  t.test('header changed (kid added), signature kept', async (t) => {
    await expectRejectedCookie(t, app, `${encodeSegment({ ...header, kid: '1' })}.${payloadSegment}.${signature}`, INVALID)
  })
  t.test('header re-encoded with other whitespace, signature kept', async (t) => {
    await expectRejectedCookie(t, app, `${b64url('{ "alg": "HS256", "typ": "JWT" }')}.${payloadSegment}.${signature}`, INVALID)
  })
  t.test('the signature of another token', async (t) => {
    const other = craft({ payload: { sub: 'mallory', ...timeClaims() }, key: secret })
    await expectRejectedCookie(t, app, `${headerSegment}.${payloadSegment}.${decode(other).signature}`, INVALID)
    await expectRejectedCookie(t, app, `${headerSegment}.${encodeSegment({ ...payload, sub: 'mallory' })}.${signature}`, INVALID)
  })
  t.test('the signature reversed', async (t) => {
    await expectRejectedCookie(t, app, `${headerSegment}.${payloadSegment}.${[...signature].reverse().join('')}`, INVALID)
  })
  t.test('the signature truncated by one character', async (t) => {
    await expectRejectedCookie(t, app, `${headerSegment}.${payloadSegment}.${signature.slice(0, -1)}`, INVALID)
  })
})

test('every one-character change of a token is INVALID, the last signature character included', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  const problems: string[] = []
  let checked = 0
  // The last signature character carries unused low bits: flipping one spells the same signature bytes,
  // and only the canonical spelling is accepted.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const sameBytes = alphabet[alphabet.indexOf(token[token.length - 1]) ^ 1]
  const signature = token.slice(token.lastIndexOf('.') + 1)
  t.ok(Buffer.from(signature.slice(0, -1) + sameBytes, 'base64url').equals(Buffer.from(signature, 'base64url')), 'the last-character change decodes to the same bytes')
  for (let index = 0; index < token.length; index++) {
    const replacement = index === token.length - 1 ? sameBytes : token[index] === 'A' ? 'B' : 'A'
    const mutated = token.slice(0, index) + replacement + token.slice(index + 1)
    const res = await getPrivate(app, { cookie: `token=${mutated}` })
    const code = res.statusCode === 401 ? res.json<{ code: string }>().code : undefined
    if (res.statusCode !== 401 || code !== INVALID) problems.push(`position ${index}: ${res.statusCode} ${String(code)}`)
    checked++
  }
  t.equal(checked, token.length)
  t.same(problems, [], 'all mutations are 401 FST_TOKEN_COOKIE_INVALID')
})

test('a token signed with another key is INVALID', async (t) => {
  const app = await buildApp(t)

  t.test('another 32-byte secret', async (t) => {
    await expectRejectedCookie(t, app, goodToken({}, otherSecret), INVALID)
  })
  t.test('the secret with one byte changed', async (t) => {
    await expectRejectedCookie(t, app, goodToken({}, secret.slice(0, -1) + '?'), INVALID)
  })
  t.test('an empty HMAC key', async (t) => {
    await expectRejectedCookie(t, app, goodToken({}, ''), INVALID)
  })
  t.test('a token from another app\'s @fastify/jwt with another secret', async (t) => {
    const other = Fastify()
    t.teardown(() => other.close())
    await other.register(fastifyJwt, { secret: otherSecret })
    await other.ready()
    const token = other.jwt.sign({ sub: 'alice', auth_time: nowSeconds() }, { expiresIn: '30m' })
    t.equal(decode(token).header.alg, 'HS256')
    await expectRejectedCookie(t, app, token, INVALID)
  })
  t.test('the app\'s own @fastify/jwt with another secret (registered alongside)', async (t) => {
    const both = Fastify()
    t.teardown(() => both.close())
    await both.register(fastifyJwt, { secret: otherSecret })
    await both.register(tokenCookie, { secret })
    both.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async () => ({ ok: true }))
    both.get('/public', async () => ({ ok: true }))
    await both.ready()
    const token = both.jwt.sign({ sub: 'alice', auth_time: nowSeconds() }, { expiresIn: '30m' })
    t.ok(both.jwt.verify(token), 'the app\'s @fastify/jwt still verifies its own token')
    await expectRejectedCookie(t, both, token, INVALID)
  })
})

test('an algorithm other than the configured one is INVALID', async (t) => {
  const app = await buildApp(t)
  const payload = { sub: 'alice', ...timeClaims() }

  for (const alg of ['HS384', 'HS512']) {
    t.test(`${alg} signed with the right secret, against an HS256 app`, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg, typ: 'JWT' }, payload, key: secret }), INVALID)
    })
  }
  t.test('header says HS256, signed with HS512', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: secret, alg: 'HS512' }), INVALID)
  })
  t.test('alg spelt hs256', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'hs256', typ: 'JWT' }, payload, key: secret, alg: 'HS256' }), INVALID)
  })
  t.test('alg missing', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { typ: 'JWT' }, payload, key: secret, alg: 'HS256' }), INVALID)
  })
  t.test('alg as an array', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: ['HS256'], typ: 'JWT' }, payload, key: secret, alg: 'HS256' }), INVALID)
  })
  t.test('alg null', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: null, typ: 'JWT' }, payload, key: secret, alg: 'HS256' }), INVALID)
  })
  t.test('RS256 token against an HS256 app', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'RS256', typ: 'JWT' }, payload, key: rsa.privateKey }), INVALID)
  })

  t.test('an HS512 app: HS512 accepted, HS256 rejected', async (t) => {
    const hs512 = await buildApp(t, { sign: { algorithm: 'HS512' } })
    t.equal(decode(await login(hs512)).header.alg, 'HS512')
    await expectAcceptedCookie(t, hs512, craft({ header: { alg: 'HS512', typ: 'JWT' }, payload, key: secret }))
    await expectRejectedCookie(t, hs512, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: secret }), INVALID)
  })
})

test('RS256 app: key confusion and foreign keys are INVALID', async (t) => {
  const app = await buildApp(t, { secret: rsaSecret })
  const payload = { sub: 'alice', ...timeClaims() }

  t.test('control: a token from setTokenCookie is RS256', async (t) => {
    const token = await login(app)
    t.equal(decode(token).header.alg, 'RS256')
    await expectAcceptedCookie(t, app, token)
  })
  t.test('control: an RS256 token crafted with crypto.sign', async (t) => {
    const user = await expectAcceptedCookie(t, app, craft({ header: { alg: 'RS256', typ: 'JWT' }, payload, key: rsa.privateKey }))
    t.equal(user.sub, 'alice')
  })
  t.test('HS256 with the public key PEM as HMAC secret', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: rsa.publicKey }), INVALID)
  })
  t.test('HS256 with the public key PEM, trimmed, as HMAC secret', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: rsa.publicKey.trim() }), INVALID)
  })
  t.test('HS512 with the public key PEM as HMAC secret', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'HS512', typ: 'JWT' }, payload, key: rsa.publicKey }), INVALID)
  })
  t.test('RS256 signed by another RSA key', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'RS256', typ: 'JWT' }, payload, key: attackerRsa.privateKey }), INVALID)
  })
  for (const alg of ['RS384', 'RS512', 'PS256']) {
    t.test(`${alg} signed with the right private key`, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg, typ: 'JWT' }, payload, key: rsa.privateKey }), INVALID)
    })
  }
  t.test('alg none', async (t) => {
    await expectRejectedCookie(t, app, craft({ header: { alg: 'none', typ: 'JWT' }, payload }), INVALID)
  })
  t.test('an attacker key embedded as jwk, signed by the attacker', async (t) => {
    const calls = trapNetwork(t)
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const header = { alg: 'RS256', typ: 'JWT', jwk: jwk.publicKey.export({ format: 'jwk' }) }
    await expectRejectedCookie(t, app, craft({ header, payload, key: jwk.privateKey }), INVALID)
    t.same(calls, [], 'nothing fetched')
  })
  t.test('an attacker key referenced by jku, signed by the attacker', async (t) => {
    const calls = trapNetwork(t)
    const header = { alg: 'RS256', typ: 'JWT', jku: 'https://attacker.example/jwks.json', kid: 'k1' }
    await expectRejectedCookie(t, app, craft({ header, payload, key: attackerRsa.privateKey }), INVALID)
    t.same(calls, [], 'nothing fetched')
  })
})

// ---------------------------------------------------------------------------------------------------------
// Header parameters

test('crit and embedded key headers are INVALID even with a good signature', async (t) => {
  const app = await buildApp(t)
  const calls = trapNetwork(t)
  const payload = { sub: 'alice', ...timeClaims() }
  const jwk = { kty: 'oct', k: b64url(secret) }
  const headers: Record<string, Record<string, unknown>> = {
    'crit [exp]': { crit: ['exp'] },
    'crit [b64] with b64 false': { crit: ['b64'], b64: false },
    'crit []': { crit: [] },
    'crit with an unknown extension': { crit: ['urn:example:x'], 'urn:example:x': 1 },
    'jwk (the secret itself)': { jwk },
    jku: { jku: 'https://attacker.example/jwks.json' },
    x5u: { x5u: 'https://attacker.example/cert.pem' },
    x5c: { x5c: ['MIIB'] },
    x5t: { x5t: 'abc' },
    'x5t#S256': { 'x5t#S256': 'abc' }
  }

  t.test('control: the same header without those parameters', async (t) => {
    await expectAcceptedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: secret }))
  })
  for (const [name, extra] of Object.entries(headers)) {
    t.test(name, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT', ...extra }, payload, key: secret }), INVALID)
    })
  }
  t.test('a kid that is a URL is never fetched and is judged consistently', async (t) => {
    const token = craft({ header: { alg: 'HS256', typ: 'JWT', kid: 'https://attacker.example/key' }, payload, key: secret })
    const first = await getPrivate(app, { cookie: `token=${token}` })
    const second = await getPrivate(app, { cookie: `token=${token}` })
    t.ok(first.statusCode === 200 || (first.statusCode === 401 && first.json<{ code: string }>().code === INVALID),
      `200 or 401 INVALID (got ${first.statusCode})`)
    t.equal(second.statusCode, first.statusCode, 'same answer twice')
  })
  t.test('nothing was fetched', async (t) => {
    t.same(calls, [])
  })
})

// ---------------------------------------------------------------------------------------------------------
// Structure and encoding

test('a payload that is not a JSON object is INVALID even with a good signature', async (t) => {
  const app = await buildApp(t)
  const payloads: Record<string, unknown> = {
    '[]': [],
    'an array holding the claims': [{ sub: 'alice', ...timeClaims() }],
    '"string"': 'string',
    123: 123,
    null: null,
    true: true,
    'not JSON': raw('not json'),
    'truncated JSON': raw(`{"sub":"alice",${rawTimeClaims()}`),
    'JSON with trailing garbage': raw(`{"sub":"alice",${rawTimeClaims()}}x`),
    'empty text': raw('')
  }
  for (const [name, payload] of Object.entries(payloads)) {
    t.test(name, async (t) => {
      await expectRejectedCookie(t, app, craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: secret }), INVALID)
    })
  }
})

test('a header that is not a JSON object is INVALID', async (t) => {
  const app = await buildApp(t)
  const payload = { sub: 'alice', ...timeClaims() }
  const headers: Record<string, unknown> = {
    'not JSON': raw('alg=HS256'),
    'truncated JSON': raw('{"alg":"HS256"'),
    '[]': [],
    '"HS256"': 'HS256',
    null: null,
    '{}': {}
  }
  for (const [name, header] of Object.entries(headers)) {
    t.test(name, async (t) => {
      await expectRejectedCookie(t, app, craft({ header, payload, key: secret, alg: 'HS256' }), INVALID)
    })
  }
})

test('non-base64url characters, padding and extra segments are INVALID', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  const [h, p, s] = token.split('.')
  const payloadText = JSON.stringify({ sub: 'alice', ...timeClaims() })

  t.test('control: segments signed with signSegments', async (t) => {
    await expectAcceptedCookie(t, app, signSegments(h, b64url(payloadText), 'HS256', secret))
  })
  for (const bad of ['+', '/', '!', '*', '~']) {
    t.test(`a "${bad}" in the payload segment (signed over the exact text)`, async (t) => {
      await expectRejectedCookie(t, app, signSegments(h, `${b64url(payloadText).slice(0, 10)}${bad}${b64url(payloadText).slice(10)}`, 'HS256', secret), INVALID)
    })
  }
  t.test('standard base64 (+ and /) in a payload, signed over the exact text', async (t) => {
    // Find claims whose base64 holds + or /, so the standard spelling differs from base64url.
    let text = payloadText
    for (let n = 0; !/[+/]/.test(Buffer.from(text).toString('base64')); n++) text = JSON.stringify({ sub: `alice${n}?>~`, ...timeClaims() })
    const standard = Buffer.from(text).toString('base64').replace(/=+$/, '')
    t.match(standard, /[+/]/)
    await expectRejectedCookie(t, app, signSegments(h, standard, 'HS256', secret), INVALID)
  })
  t.test('a standard base64 signature (+ and / instead of - and _)', async (t) => {
    let crafted = goodToken()
    for (let n = 0; !/[-_]/.test(decode(crafted).signature); n++) crafted = goodToken({ n })
    const [ch, cp, cs] = crafted.split('.')
    await expectAcceptedCookie(t, app, crafted)
    await expectRejectedCookie(t, app, `${ch}.${cp}.${Buffer.from(cs, 'base64url').toString('base64').replace(/=+$/, '')}`, INVALID)
  })
  t.test('padding = on the payload segment (signed over the padded text)', async (t) => {
    let text = payloadText
    for (let n = 0; b64url(text).length % 4 === 0; n++) text = JSON.stringify({ sub: `alice${'x'.repeat(n + 1)}`, ...timeClaims() })
    const padded = Buffer.from(text).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
    t.match(padded, /=$/)
    await expectRejectedCookie(t, app, signSegments(h, padded, 'HS256', secret), INVALID)
  })
  t.test('padding = on the header segment (signed over the padded text)', async (t) => {
    let text = JSON.stringify({ alg: 'HS256' })
    for (let n = 0; Buffer.byteLength(text) % 3 === 0; n++) text = JSON.stringify({ alg: 'HS256', x: 'x'.repeat(n + 1) })
    const header = Buffer.from(text).toString('base64')
    t.match(header, /=$/)
    await expectRejectedCookie(t, app, signSegments(header, b64url(payloadText), 'HS256', secret), INVALID)
  })
  t.test('padding = after the signature', async (t) => {
    await expectRejectedCookie(t, app, `${h}.${p}.${s}=`, INVALID)
  })
  t.test('four segments', async (t) => {
    await expectRejectedCookie(t, app, `${token}.${s}`, INVALID)
  })
  t.test('five segments (JWE shape)', async (t) => {
    await expectRejectedCookie(t, app, `${h}.${p}.${s}.${p}.${s}`, INVALID)
  })
  t.test('a trailing dot', async (t) => {
    await expectRejectedCookie(t, app, `${token}.`, INVALID)
  })
  t.test('a leading dot', async (t) => {
    await expectRejectedCookie(t, app, `.${token}`, INVALID)
  })
  t.test('plain garbage', async (t) => {
    await expectRejectedCookie(t, app, 'garbage', INVALID)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Size and depth

test('a token over 4096 bytes is INVALID; at 4096 it is accepted', async (t) => {
  const app = await buildApp(t)

  /** A correctly signed token of exactly `length` characters. */
  function tokenOfLength (length: number): string {
    for (let pad = Math.max(0, Math.floor((length - 200) * 3 / 4)); pad < length; pad++) {
      const token = goodToken({ pad: 'x'.repeat(pad) })
      if (token.length === length) return token
      if (token.length > length) break
    }
    throw new Error(`no token of length ${length}`)
  }

  t.test('4096 characters: accepted', async (t) => {
    const token = tokenOfLength(4096)
    t.equal(token.length, 4096)
    await expectAcceptedCookie(t, app, token)
  })
  t.test('4097 characters: INVALID', async (t) => {
    const token = tokenOfLength(4097)
    t.equal(token.length, 4097)
    await expectRejectedCookie(t, app, token, INVALID)
  })
  t.test('8 KB: INVALID', async (t) => {
    const token = goodToken({ pad: 'x'.repeat(6000) })
    t.ok(token.length > 8000)
    await expectRejectedCookie(t, app, token, INVALID)
  })
  t.test('a deeply nested payload over 4096 bytes: INVALID', async (t) => {
    const depth = 3000
    const token = craft({ payload: raw(`{"sub":"alice",${rawTimeClaims()},"a":${'['.repeat(depth)}${']'.repeat(depth)}}`), key: secret })
    t.ok(token.length > 4096)
    await expectRejectedCookie(t, app, token, INVALID)
  })
  t.test('an 8 KB Cookie header of other cookies does not hide a good token', async (t) => {
    const token = await login(app)
    const cookie = `junk=${'j'.repeat(4000)}; token=${token}; more=${'m'.repeat(4000)}`
    t.ok(cookie.length > 8000)
    await expectAccepted(t, app, { cookie })
  })
  t.test('an 8 KB Cookie header around an oversized token', async (t) => {
    const cookie = `a=1; token=${'A'.repeat(5000)}.${'B'.repeat(3000)}.${'C'.repeat(43)}`
    await expectRejected(t, app, { cookie }, INVALID)
  })
})

test('a deeply nested payload within 4096 bytes never crashes the app', async (t) => {
  const app = await buildApp(t)
  const shapes: Record<string, string> = {
    'arrays 1400 deep': `${'['.repeat(1400)}${']'.repeat(1400)}`,
    'objects 450 deep': `${'{"a":'.repeat(450)}1${'}'.repeat(450)}`,
    'mixed 600 deep': `${'[{"a":'.repeat(300)}1${'}]'.repeat(300)}`
  }
  for (const [name, nested] of Object.entries(shapes)) {
    t.test(name, async (t) => {
      const token = craft({ payload: raw(`{"sub":"alice",${rawTimeClaims()},"deep":${nested}}`), key: secret })
      t.ok(token.length <= 4096, `token of ${token.length} bytes`)
      for (const url of ['/private', '/public']) {
        const res = await app.inject({ method: 'GET', url, headers: { cookie: `token=${token}` } })
        t.ok(res.statusCode === 200 || res.statusCode === 401, `${url}: 200 or 401 (got ${res.statusCode})`)
        if (res.statusCode === 401) t.equal(res.json<{ code: string }>().code, INVALID)
      }
      await expectAcceptedCookie(t, app, await login(app))
    })
  }
})

// ---------------------------------------------------------------------------------------------------------
// Time claims (fake clock at 2030-01-01T00:00:00Z)

test('time claims', async (t) => {
  async function timedApp (t: Tap, overrides: Partial<TokenCookieOptions> = {}): Promise<{ app: FastifyInstance, clock: Clock }> {
    const clock = installClock(t)
    return { app: await buildApp(t, overrides), clock }
  }
  const good = { sub: 'alice', iat: T, exp: T + 1800, auth_time: T }
  const sign = (payload: unknown): string => craft({ header: { alg: 'HS256', typ: 'JWT' }, payload, key: secret })
  const without = (name: string): Record<string, unknown> => Object.fromEntries(Object.entries(good).filter(([key]) => key !== name))

  t.test('control: good claims at T', async (t) => {
    const { app } = await timedApp(t)
    await expectAcceptedCookie(t, app, sign(good))
  })

  for (const claim of ['exp', 'iat', 'auth_time']) {
    t.test(`missing ${claim}: INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign(without(claim)), INVALID)
    })
    t.test(`${claim} as a numeric string: INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign({ ...good, [claim]: String(good[claim as keyof typeof good]) }), INVALID)
    })
    t.test(`${claim} as "123": INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign({ ...good, [claim]: '123' }), INVALID)
    })
    t.test(`${claim} null: INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign({ ...good, [claim]: null }), INVALID)
    })
    t.test(`${claim} true: INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign({ ...good, [claim]: true }), INVALID)
    })
    t.test(`${claim} as an array: INVALID`, async (t) => {
      const { app } = await timedApp(t)
      await expectRejectedCookie(t, app, sign({ ...good, [claim]: [good[claim as keyof typeof good]] }), INVALID)
    })
    for (const infinite of ['1e400', '-1e400']) {
      t.test(`${claim} ${infinite} (parses to ${infinite.startsWith('-') ? '-' : ''}Infinity): INVALID`, async (t) => {
        const { app } = await timedApp(t)
        const claims = Object.entries(good).map(([key, value]) => `${JSON.stringify(key)}:${key === claim ? infinite : JSON.stringify(value)}`)
        await expectRejectedCookie(t, app, sign(raw(`{${claims.join(',')}}`)), INVALID)
      })
    }
  }

  t.test('exp 1e308 is still capped at auth_time + absoluteMaxAge (12h)', async (t) => {
    const { app, clock } = await timedApp(t)
    const token = sign({ ...good, exp: 1e308 })
    await expectAcceptedCookie(t, app, token)
    clock.tick(12 * 3600 * 1000 - 1)
    const res = await getPrivate(app, { cookie: `token=${token}` })
    t.equal(res.statusCode, 200, 'valid 1 ms before the cap')
    t.same(issuedCookies(res), [], 'no renewal: it would not move exp')
    clock.tick(1)
    await expectRejectedCookie(t, app, token, EXPIRED)
  })

  t.test('a negative exp: 401', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, exp: -1 }), [INVALID, EXPIRED])
  })
  t.test('negative iat and auth_time: 401', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, iat: -1, auth_time: -1 }), [INVALID, EXPIRED])
  })

  t.test('auth_time in the future: INVALID', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, auth_time: T + 3600 }), INVALID)
  })
  t.test('auth_time and iat in the future: INVALID', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, iat: T + 3600, auth_time: T + 3600, exp: T + 5400 }), INVALID)
  })
  t.test('iat 1 s in the future, no clockTolerance: INVALID', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, iat: T + 1 }), INVALID)
  })
  t.test('iat 120 s in the future, no clockTolerance: INVALID', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, iat: T + 120 }), INVALID)
  })
  t.test('clockTolerance 60: iat 30 s ahead accepted, 120 s ahead INVALID', async (t) => {
    const { app } = await timedApp(t, { verify: { clockTolerance: 60 } })
    await expectAcceptedCookie(t, app, sign({ ...good, iat: T + 30 }))
    await expectRejectedCookie(t, app, sign({ ...good, iat: T + 120 }), INVALID)
  })
  t.test('clockTolerance \'1m\' (a duration): iat 30 s ahead accepted, 120 s ahead INVALID', async (t) => {
    const { app } = await timedApp(t, { verify: { clockTolerance: '1m' } })
    await expectAcceptedCookie(t, app, sign({ ...good, iat: T + 30 }))
    await expectRejectedCookie(t, app, sign({ ...good, iat: T + 120 }), INVALID)
  })

  t.test('exp in the past: EXPIRED', async (t) => {
    const { app } = await timedApp(t)
    await expectRejectedCookie(t, app, sign({ ...good, iat: T - 3600, auth_time: T - 3600, exp: T - 1 }), EXPIRED)
  })
  t.test('now === exp exactly: EXPIRED; 1 ms before: accepted', async (t) => {
    const { app, clock } = await timedApp(t)
    const token = sign({ ...good, exp: T + 10 })
    clock.tick(9999)
    await expectAcceptedCookie(t, app, token)
    clock.tick(1)
    t.equal(Date.now(), (T + 10) * 1000)
    await expectRejectedCookie(t, app, token, EXPIRED)
  })
  t.test('an issued token at exactly its exp: EXPIRED, not renewed', async (t) => {
    const { app, clock } = await timedApp(t)
    const token = await login(app)
    const { exp } = decode(token).payload
    t.equal(exp, T + 1800)
    clock.tick(1800 * 1000 - 1)
    const before = await getPrivate(app, { cookie: `token=${token}` })
    t.equal(before.statusCode, 200)
    t.equal(issuedCookies(before).length, 1, 'renewed while still valid')
    clock.tick(1)
    await expectRejectedCookie(t, app, token, EXPIRED)
  })
  t.test('past auth_time + 12h with a fresh exp: EXPIRED; 1 s inside: accepted', async (t) => {
    const { app } = await timedApp(t)
    const authTime = T - 12 * 3600
    await expectRejectedCookie(t, app, sign({ sub: 'alice', iat: T - 60, exp: T + 1740, auth_time: authTime }), EXPIRED)
    await expectAcceptedCookie(t, app, sign({ sub: 'alice', iat: T - 60, exp: T + 1740, auth_time: authTime + 1 }))
  })
  t.test('a login renewed every 20 minutes still ends at auth_time + 12h', async (t) => {
    const { app, clock } = await timedApp(t)
    let token = await login(app)
    for (let elapsed = 0; elapsed < 12 * 3600 - 1200; elapsed += 1200) {
      clock.tick(1200 * 1000)
      const res = await getPrivate(app, { cookie: `token=${token}` })
      if (res.statusCode !== 200) {
        t.fail(`rejected ${elapsed + 1200} s after login: ${res.body}`)
        return
      }
      token = issuedToken(res) ?? token
    }
    const { payload } = decode(token)
    t.equal(payload.auth_time, T, 'renewals keep auth_time')
    t.ok((payload.exp as number) <= T + 12 * 3600, 'exp never passes the cap')
    t.equal(payload.exp, T + 12 * 3600, 'the last renewal reaches the cap exactly')
    clock.setSystemTime(start + 12 * 3600 * 1000)
    await expectRejectedCookie(t, app, token, EXPIRED)
  })
})

test('a malformed tc (lifetime) claim is INVALID', async (t) => {
  const app = await buildApp(t)
  const claims: Record<string, unknown> = {
    '"x"': 'x',
    1: 1,
    null: null,
    '[]': [],
    true: true,
    '{}': {},
    'policy forever': { policy: 'forever' },
    'policy SLIDING': { policy: 'SLIDING', maxAge: 1800, absoluteMaxAge: 43200 },
    'sliding without maxAge': { policy: 'sliding' },
    'sliding with maxAge > absoluteMaxAge': { policy: 'sliding', maxAge: 3600, absoluteMaxAge: 1800 },
    'sliding with negative maxAge': { policy: 'sliding', maxAge: -1, absoluteMaxAge: 43200 },
    'sliding with zero maxAge': { policy: 'sliding', maxAge: 0, absoluteMaxAge: 43200 },
    'sliding with string maxAge': { policy: 'sliding', maxAge: '30m', absoluteMaxAge: 43200 },
    'sliding with sessionCookie "yes"': { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200, sessionCookie: 'yes' }
  }
  t.test('controls: persistent and well-formed sliding claims', async (t) => {
    await expectAcceptedCookie(t, app, goodToken({ tc: { policy: 'persistent' } }))
    await expectAcceptedCookie(t, app, goodToken({ tc: { policy: 'session' } }))
    await expectAcceptedCookie(t, app, goodToken({ tc: { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200, sessionCookie: true } }))
  })
  for (const [name, tc] of Object.entries(claims)) {
    t.test(`tc ${name}`, async (t) => {
      await expectRejectedCookie(t, app, goodToken({ tc }), INVALID)
    })
  }
})

// ---------------------------------------------------------------------------------------------------------
// Prototype keys

test('a token with __proto__, constructor or prototype keys is INVALID', async (t) => {
  const app = await buildApp(t)
  const times = rawTimeClaims()
  const payloads: Record<string, string> = {
    'top-level __proto__': `{"__proto__":{"admin":true},"sub":"alice",${times}}`,
    'top-level constructor': `{"sub":"alice","constructor":{"prototype":{"admin":true}},${times}}`,
    'top-level prototype': `{"sub":"alice","prototype":{"admin":true},${times}}`,
    'nested __proto__': `{"sub":"alice","profile":{"__proto__":{"admin":true}},${times}}`,
    'nested constructor in an array': `{"sub":"alice","roles":[{"constructor":"x"}],${times}}`,
    'deep prototype': `{"sub":"alice","a":{"b":{"c":{"prototype":1}}},${times}}`,
    '__proto__ inside tc': `{"sub":"alice","tc":{"policy":"sliding","maxAge":1800,"absoluteMaxAge":43200,"__proto__":{"x":1}},${times}}`
  }
  t.test('control: look-alike keys are fine', async (t) => {
    const user = await expectAcceptedCookie(t, app, craft({ payload: raw(`{"sub":"alice","__proto":1,"constructorName":"x","prototypes":[],${times}}`), key: secret }))
    t.equal(user.constructorName, 'x')
  })
  for (const [name, text] of Object.entries(payloads)) {
    t.test(name, async (t) => {
      await expectRejectedCookie(t, app, craft({ payload: raw(text), key: secret }), INVALID)
      t.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype untouched')
    })
  }
})

test('setTokenCookie rejects __proto__, constructor and prototype keys with a TypeError', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret })
  const payloads: Record<string, () => Record<string, unknown>> = {
    plain: () => ({ sub: 'alice' }),
    constructor: () => ({ sub: 'alice', constructor: 1 }),
    prototype: () => ({ sub: 'alice', prototype: 1 }),
    'own __proto__': () => JSON.parse('{"sub":"alice","__proto__":{"admin":true}}'),
    'nested own __proto__': () => ({ sub: 'alice', a: JSON.parse('{"__proto__":{"admin":true}}') }),
    'constructor in an array': () => ({ sub: 'alice', a: [{ constructor: 'x' }] }),
    'deep prototype': () => ({ sub: 'alice', a: { b: { c: { prototype: {} } } } })
  }
  app.post<{ Params: { variant: string } }>('/login/:variant', async (request, reply) => {
    try {
      await reply.setTokenCookie(payloads[request.params.variant]())
      return { ok: true }
    } catch (error) {
      return { name: (error as Error).name, message: (error as Error).message }
    }
  })
  for (const variant of Object.keys(payloads)) {
    t.test(variant, async (t) => {
      const res = await app.inject({ method: 'POST', url: `/login/${encodeURIComponent(variant)}` })
      t.equal(res.statusCode, 200)
      if (variant === 'plain') {
        t.same(res.json(), { ok: true }, 'control: a plain payload is signed')
        t.equal(issuedCookies(res).length, 1)
        return
      }
      t.equal(res.json<{ name: string }>().name, 'TypeError', res.body)
      t.same(issuedCookies(res), [], 'no cookie set')
    })
  }
})

// ---------------------------------------------------------------------------------------------------------
// Cookie tossing and empty cookies

test('a cookie name sent twice authenticates by neither value', async (t) => {
  const app = await buildApp(t)
  const first = await login(app)
  const second = goodToken({ sub: 'mallory' })
  await expectAcceptedCookie(t, app, first)
  await expectAcceptedCookie(t, app, second)
  const cookies: Record<string, string> = {
    'the same valid token twice': `token=${first}; token=${first}`,
    'two valid tokens': `token=${first}; token=${second}`,
    'valid then garbage': `token=${first}; token=garbage`,
    'garbage then valid': `token=garbage; token=${first}`,
    'valid then empty': `token=${first}; token=`,
    'empty then valid': `token=; token=${first}`,
    'no space after ;': `token=${first};token=${second}`,
    'spaces around names and values': `  token = ${first} ;   token=${second}  `,
    'a tab before the second': `token=${first};\ttoken=${second}`,
    'other cookies between': `a=1; token=${first}; b=2; token=${second}; c=3`,
    'quoted second value': `token=${first}; token="${second}"`
  }
  for (const [name, cookie] of Object.entries(cookies)) {
    t.test(name, async (t) => {
      await expectRejected(t, app, { cookie }, INVALID)
    })
  }
  t.test('controls: look-alike names are other cookies', async (t) => {
    t.equal((await expectAccepted(t, app, { cookie: `mytoken=${second}; token=${first}; token2=${second}` })).sub, 'alice')
    t.equal((await expectAccepted(t, app, { cookie: `a=1; token=${first}; b=2` })).sub, 'alice')
    t.equal((await expectAccepted(t, app, { cookie: `Token=${second}; token=${first}` })).sub, 'alice')
  })
  t.test('a look-alike name alone is no token: MISSING', async (t) => {
    await expectRejected(t, app, { cookie: `mytoken=${first}; token2=${first}` }, MISSING, false)
  })
})

test('an empty cookie is MISSING, not INVALID', async (t) => {
  const app = await buildApp(t)
  for (const cookie of ['token=', 'token=""', 'token= ', 'a=1; token=; b=2']) {
    t.test(JSON.stringify(cookie), async (t) => {
      await expectRejected(t, app, { cookie }, MISSING, false)
    })
  }
})

// ---------------------------------------------------------------------------------------------------------
// Bearer

test('bearer: malformed headers are 401, the header alone decides', async (t) => {
  const app = await buildApp(t, { bearer: true })
  const token = await login(app)
  const cookie = `token=${token}`

  t.test('control: Bearer <token>', async (t) => {
    t.equal((await expectAccepted(t, app, { authorization: `Bearer ${token}` })).sub, 'alice')
  })
  for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
    t.test(`scheme spelt ${scheme}`, async (t) => {
      await expectAccepted(t, app, { authorization: `${scheme} ${token}` })
    })
  }
  const malformed: Record<string, string> = {
    'Bearer (nothing after)': 'Bearer',
    'Bearer and a space': 'Bearer ',
    'two spaces': `Bearer  ${token}`,
    'a trailing word': `Bearer ${token} extra`,
    'a trailing space': `Bearer ${token} `,
    'a tab inside the token': `Bearer ${token.slice(0, 10)}\t${token.slice(10)}`
  }
  for (const [name, authorization] of Object.entries(malformed)) {
    t.test(`${name}: INVALID`, async (t) => {
      await expectRejected(t, app, { authorization }, INVALID, false)
    })
    t.test(`${name}, with a valid cookie: INVALID`, async (t) => {
      await expectRejected(t, app, { authorization, cookie }, INVALID, false)
    })
  }
  t.test('a bad Bearer token with a valid cookie: INVALID', async (t) => {
    await expectRejected(t, app, { authorization: `Bearer ${goodToken({}, otherSecret)}`, cookie }, INVALID, false)
  })
  t.test('an alg none Bearer token: INVALID', async (t) => {
    const none = craft({ header: { alg: 'none', typ: 'JWT' }, payload: { sub: 'alice', ...timeClaims() } })
    await expectRejected(t, app, { authorization: `Bearer ${none}` }, INVALID, false)
  })
  t.test('an oversized Bearer token: INVALID', async (t) => {
    await expectRejected(t, app, { authorization: `Bearer ${goodToken({ pad: 'x'.repeat(4000) })}` }, INVALID, false)
  })
  t.test('a good Bearer token with a garbage cookie: accepted', async (t) => {
    await expectAccepted(t, app, { authorization: `Bearer ${token}`, cookie: 'token=garbage' })
  })
  t.test('Basic with a valid cookie: authenticated by the cookie', async (t) => {
    t.equal((await expectAccepted(t, app, { authorization: 'Basic dXNlcjpwYXNz', cookie })).sub, 'alice')
  })
  t.test('Basic alone: MISSING', async (t) => {
    await expectRejected(t, app, { authorization: 'Basic dXNlcjpwYXNz' }, MISSING, false)
  })
  t.test('Basic with a bad cookie: INVALID, cookie cleared', async (t) => {
    await expectRejected(t, app, { authorization: 'Basic dXNlcjpwYXNz', cookie: 'token=garbage' }, INVALID)
  })
})

test('bearer: false ignores the Authorization header', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  await expectRejected(t, app, { authorization: `Bearer ${token}` }, MISSING, false)
  await expectRejected(t, app, { authorization: 'Bearer' }, MISSING, false)
})

test('bearer: a header token is never renewed through a cookie', async (t) => {
  const clock = installClock(t)
  const app = await buildApp(t, { bearer: true, renewAfter: 0 })
  const token = await login(app)
  clock.tick(10_000)
  const fromHeader = await getPrivate(app, { authorization: `Bearer ${token}` })
  t.equal(fromHeader.statusCode, 200)
  t.same(setCookies(fromHeader), [], 'no Set-Cookie for a header token')
  const fromCookie = await getPrivate(app, { cookie: `token=${token}` })
  t.equal(issuedCookies(fromCookie).length, 1, 'control: the cookie token is renewed')
})

// ---------------------------------------------------------------------------------------------------------
// Issuer and audience

test('allowedIss: a token without iss or with another iss is INVALID', async (t) => {
  const iss = 'https://issuer.example'
  const app = await buildApp(t, { sign: { iss }, verify: { allowedIss: iss } })

  t.test('control: an issued token carries iss and is accepted', async (t) => {
    const token = await login(app)
    t.equal(decode(token).payload.iss, iss)
    await expectAcceptedCookie(t, app, token)
  })
  t.test('control: a crafted token with the right iss', async (t) => {
    await expectAcceptedCookie(t, app, goodToken({ iss }))
  })
  t.test('without iss: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken(), INVALID)
  })
  t.test('another iss: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken({ iss: 'https://evil.example' }), INVALID)
  })
  t.test('iss with a suffix: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken({ iss: `${iss}.evil.example` }), INVALID)
  })
  t.test('iss as a number: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken({ iss: 1 }), INVALID)
  })
})

test('allowedAud: a token without aud or with another aud is INVALID', async (t) => {
  const aud = 'https://api.example'
  const app = await buildApp(t, { sign: { aud }, verify: { allowedAud: aud } })

  t.test('control: an issued token carries aud and is accepted', async (t) => {
    const token = await login(app)
    t.equal(decode(token).payload.aud, aud)
    await expectAcceptedCookie(t, app, token)
  })
  t.test('control: a crafted token with the right aud', async (t) => {
    await expectAcceptedCookie(t, app, goodToken({ aud }))
  })
  t.test('without aud: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken(), INVALID)
  })
  t.test('another aud: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken({ aud: 'https://other.example' }), INVALID)
  })
  t.test('aud as a number: INVALID', async (t) => {
    await expectRejectedCookie(t, app, goodToken({ aud: 1 }), INVALID)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Renewal

test('a renewal cookie goes out only with a response below 400', async (t) => {
  const clock = installClock(t)
  const app = await buildApp(t, { renewAfter: 0 })
  app.get('/deny', async (request, reply) => reply.code(401).send({ denied: true }))
  app.get('/forbidden', async (request, reply) => reply.code(403).send({ denied: true }))
  app.get('/bad-request', async (request, reply) => reply.code(400).send({ bad: true }))
  app.get('/boom', async () => { throw new Error('boom') })
  app.get('/unavailable', async (request, reply) => reply.code(503).send({ later: true }))
  app.get('/redirect', async (request, reply) => reply.redirect('/private'))
  app.get('/poll', { config: { tokenCookie: { renew: false } } }, async () => ({ ok: true }))
  app.post('/logout', async (request, reply) => {
    reply.clearTokenCookie()
    return { ok: true }
  })
  const token = await login(app)
  const cookie = `token=${token}`
  clock.tick(10_000)

  t.test('control: a 200 route renews, copying the claims', async (t) => {
    const res = await getPrivate(app, { cookie })
    t.equal(res.statusCode, 200)
    const renewed = issuedToken(res)
    t.ok(renewed, 'a renewed token cookie')
    if (renewed === undefined) return
    const before = decode(token).payload
    const after = decode(renewed).payload
    t.same(Object.keys(after).sort(), Object.keys(before).sort(), 'the same claims, no more')
    t.equal(after.sub, 'alice')
    t.same(after.tc, before.tc)
    t.equal(after.auth_time, before.auth_time, 'auth_time kept')
    t.equal(after.iat, T + 10)
    t.equal(after.exp, T + 10 + 1800)
    t.equal(Object.getPrototypeOf(after), Object.prototype)
  })
  t.test('control: a 302 redirect renews', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/redirect', headers: { cookie } })
    t.equal(res.statusCode, 302)
    t.equal(issuedCookies(res).length, 1)
  })
  const failures: Record<string, number> = {
    '/no-such-route': 404,
    '/deny': 401,
    '/forbidden': 403,
    '/bad-request': 400,
    '/boom': 500,
    '/unavailable': 503
  }
  for (const [url, status] of Object.entries(failures)) {
    t.test(`${url} (${status}): no renewal`, async (t) => {
      const res = await app.inject({ method: 'GET', url, headers: { cookie } })
      t.equal(res.statusCode, status)
      t.same(issuedCookies(res), [], 'no token Set-Cookie')
      t.same(clearingCookies(res), [], 'the valid cookie is not cleared either')
    })
  }
  t.test('a route with renew: false: no renewal', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/poll', headers: { cookie } })
    t.equal(res.statusCode, 200)
    t.same(issuedCookies(res), [])
  })
  t.test('logout (clearTokenCookie) cancels the renewal', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(res.statusCode, 200)
    t.same(issuedCookies(res), [], 'no fresh token after logout')
    t.equal(clearingCookies(res).length, 1, 'the cookie is cleared')
  })
  t.test('a rejected cookie is not renewed', async (t) => {
    await expectRejectedCookie(t, app, goodToken({}, otherSecret), INVALID)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Revocation

test('isRevoked: REVOKED, and a failing check never lets a token through', async (t) => {
  t.test('a revoked token: REVOKED, cleared on a public route', async (t) => {
    let calls = 0
    const app = await buildApp(t, {
      isRevoked: async (payload) => {
        calls++
        return payload.sub === 'mallory'
      }
    })
    await expectAcceptedCookie(t, app, goodToken())
    t.equal(calls, 1, 'checked once per request')
    await expectRejectedCookie(t, app, goodToken({ sub: 'mallory' }), REVOKED)
    t.equal(calls, 3, 'once on the protected route, once on the public route')
  })
  t.test('a bad token never reaches isRevoked', async (t) => {
    let calls = 0
    const app = await buildApp(t, { isRevoked: () => { calls++; return false } })
    await expectRejectedCookie(t, app, goodToken({}, otherSecret), INVALID)
    await expectRejectedCookie(t, app, craft({ header: { alg: 'none' }, payload: { sub: 'alice', ...timeClaims() } }), INVALID)
    t.equal(calls, 0)
  })
  t.test('isRevoked throws: the request fails with its error', async (t) => {
    const failure = Object.assign(new Error('revocation store down'), { statusCode: 503 })
    const app = await buildApp(t, { isRevoked: async () => { throw failure } })
    for (const url of ['/private', '/public']) {
      const res = await app.inject({ method: 'GET', url, headers: { cookie: `token=${goodToken()}` } })
      t.equal(res.statusCode, 503, `${url}: the check's error, not 200`)
      t.match(res.json(), { message: 'revocation store down' })
    }
  })
})

// ---------------------------------------------------------------------------------------------------------
// Registration: cookie attributes a cookie cannot carry

test('cookieName, cookie.domain and cookie.path with forbidden characters fail registration', async (t) => {
  async function rejects (t: Tap, options: Partial<TokenCookieOptions>, option: string): Promise<void> {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(tokenCookie, { secret, ...options })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message: new RegExp(option.replace('.', '\\.')) })
  }
  async function accepts (t: Tap, options: Partial<TokenCookieOptions>): Promise<void> {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(tokenCookie, { secret, ...options })
    await t.resolves(async () => { await app.ready() })
  }
  t.test('controls: ordinary values register', async (t) => {
    await accepts(t, { cookieName: '__Host-token' })
    await accepts(t, { cookieName: 'my_token.v2' })
    await accepts(t, { cookie: { domain: 'example.com', path: '/app' } })
    await accepts(t, { cookie: { domain: '.example.com' } })
  })
  for (const cookieName of ['', 'to ken', 'tok;en', 'tok=en', 'tok,en', 'tok"en', 'tök', 'tok\nen', 'tok(en)', 'tok/en']) {
    t.test(`cookieName ${JSON.stringify(cookieName)}`, async (t) => {
      await rejects(t, { cookieName }, 'cookieName')
    })
  }
  for (const domain of ['example.com; Secure', 'exa mple.com', 'example.com\r\nX-Evil: 1', 'example.com,evil.example', 'exämple.com', '']) {
    t.test(`cookie.domain ${JSON.stringify(domain)}`, async (t) => {
      await rejects(t, { cookie: { domain } }, 'cookie.domain')
    })
  }
  for (const path of ['/; Domain=evil.example', '/a\nb', '/a\r\nSet-Cookie: x=1', '/ä', '/a\u0000b', 'relative']) {
    t.test(`cookie.path ${JSON.stringify(path)}`, async (t) => {
      await rejects(t, { cookie: { path } }, 'cookie.path')
    })
  }
})

// ---------------------------------------------------------------------------------------------------------
// Whatever the input, never a 400 or a 500

test('odd cookie values are 401s, never 400 or 500', async (t) => {
  const app = await buildApp(t)
  const token = await login(app)
  const values = [
    '%', '%E0%A4%A', '%00', '"', '""""', '.', 'a.b.c', `${token}%`, encodeURIComponent('{"alg":"none"}'),
    `"${token.slice(0, 20)}`, 'x'.repeat(5000), `${'.'.repeat(100)}`, signInput('x', 'HS256', secret)
  ]
  for (const value of values) {
    const res = await getPrivate(app, { cookie: `token=${value}` })
    t.equal(res.statusCode, 401, `token=${value.slice(0, 40)}: 401 (got ${res.statusCode})`)
    const code = res.json<{ code: string }>().code
    t.ok(code === INVALID || code === MISSING, `token=${value.slice(0, 40)}: ${code}`)
    const pub = await app.inject({ method: 'GET', url: '/public', headers: { cookie: `token=${value}` } })
    t.equal(pub.statusCode, 200)
  }
})

// ---------------------------------------------------------------------------------------------------------
// Chunked cookies (maxChunks): every set of chunks that is not one genuine token, in order, is INVALID and cleared

test('chunk cookies with gaps, duplicates, past maxChunks, tampered or mixed from two tokens are INVALID and cleared', async (t) => {
  installClock(t)
  const app = await buildChunkApp(t, { maxChunks: 3 })
  const chunksOf = async (sub: string): Promise<string[]> => {
    const jar = new Jar()
    jar.apply(asLines((await app.inject({ method: 'POST', url: '/login', payload: { pad: 7000, sub } })).headers['set-cookie']))
    return [0, 1, 2].map((index) => jar.cookies.get(`token.${index}`) as string)
  }
  const a = await chunksOf('alice')
  const b = await chunksOf('bob')
  const flip = (value: string, at: number): string => `${value.slice(0, at)}${value[at] === 'A' ? 'B' : 'A'}${value.slice(at + 1)}`
  const header = (pairs: Array<[number | string, string]>): string => pairs.map(([name, value]) => `${typeof name === 'number' ? `token.${name}` : name}=${value}`).join('; ')
  const me = async (cookie: string): Promise<LightMyRequestResponse> => await app.inject({ method: 'GET', url: '/me', headers: { cookie } })

  t.equal((await me(header([[0, a[0]], [1, a[1]], [2, a[2]]]))).statusCode, 200, 'control: the three chunks of a token')
  t.equal((await me(header([[2, b[2]], [0, b[0]], [1, b[1]]]))).statusCode, 200, 'control: in another order')
  t.equal((await me(header([[0, `${a[0]}${a[1][0]}`], [1, a[1].slice(1)], [2, a[2]]]))).statusCode, 200, 'control: split elsewhere, the same token')
  const forged = craft({ header: { alg: 'none' }, payload: { sub: 'admin', pad: 'x'.repeat(7000), ...timeClaims() } })
  const cases: Array<[string, Array<[number | string, string]>]> = [
    ['a gap', [[0, a[0]], [2, a[2]]]],
    ['no first chunk', [[1, a[1]], [2, a[2]]]],
    ['the last chunk missing', [[0, a[0]], [1, a[1]]]],
    ['a chunk twice, same value', [[0, a[0]], [1, a[1]], [1, a[1]], [2, a[2]]]],
    ['a chunk twice, from two tokens', [[0, a[0]], [0, b[0]], [1, a[1]], [2, a[2]]]],
    ['a chunk past maxChunks', [[0, a[0]], [1, a[1]], [2, a[2]], [3, 'x']]],
    ['an empty chunk', [[0, a[0]], [1, ''], [2, a[2]]]],
    ['chunks mixed from two tokens: the first of one', [[0, a[0]], [1, b[1]], [2, b[2]]]],
    ['chunks mixed from two tokens: the last of one', [[0, a[0]], [1, a[1]], [2, b[2]]]],
    ['the chunks of a token swapped', [[0, a[1]], [1, a[0]], [2, a[2]]]],
    ['a character of the middle chunk changed', [[0, a[0]], [1, flip(a[1], 100)], [2, a[2]]]],
    ['the first character of a chunk changed', [[0, a[0]], [1, a[1]], [2, flip(a[2], 0)]]],
    ['a chunk cut short', [[0, a[0]], [1, a[1]], [2, a[2].slice(0, -1)]]],
    ['alg none, in chunks', [[0, forged.slice(0, 4000)], [1, forged.slice(4000, 8000)], [2, forged.slice(8000)]]],
    ['a token cookie twice beside good chunks', [['token', 'x'], ['token', 'y'], [0, a[0]], [1, a[1]], [2, a[2]]]]
  ]
  for (const [label, pairs] of cases) {
    const cookie = header(pairs)
    const carried = [...new Set(pairs.map(([name]) => typeof name === 'number' ? `token.${name}` : name))].sort()
    for (const url of ['/me', '/public-page']) {
      const res = await app.inject({ method: 'GET', url, headers: { cookie } })
      const { set, cleared } = effects(asLines(res.headers['set-cookie']))
      if (url === '/me') t.match(res.json(), { statusCode: 401, code: INVALID }, `${label}: 401 INVALID`)
      else t.equal(res.statusCode, 404, `${label}: a public page goes on unauthenticated`)
      t.same(set, [], `${label}, ${url}: no token written`)
      t.same(cleared.sort(), carried, `${label}, ${url}: every token cookie carried is cleared, nothing else`)
    }
  }
})
