// `encrypt: true`: tokens are JWE (dir, A256GCM) under a key derived from each secret. A user's whole session works
// as with signed tokens; nobody can read the claims; every bad token (tampered, another algorithm, compressed, with
// crit, under another key, a JWS, oversized) is a 401 INVALID that clears the cookie; a token is decrypted once.
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { test, type Test } from 'tap'
import tokenCookie, { type TokenCookieOptions, type VerifyOptions } from '../index.js'
import { createEncryptedCodec } from '../lib/encrypted-token.js'
import { buildApp, fakeClock, login, pemKeys, secret, tokenCookieOf } from './helpers/app.js'
import { b64url, craft, craftJwe, encodeSegment, jweKeyOf, raw, rawTimeClaims, timeClaims } from './helpers/craft.js'

const INVALID = 'FST_TOKEN_COOKIE_INVALID'
const otherSecret = 'another-test-secret-of-32-bytes-or-more'
const minutes = 60_000
const key = jweKeyOf(secret)
const goodHeader = { alg: 'dir', enc: 'A256GCM', typ: 'JWT' }

function segmentsOf (token: string): string[] {
  return token.split('.')
}

function headerOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segmentsOf(token)[0], 'base64url').toString())
}

/** Good claims of a sliding login now: what the plugin itself would encrypt. */
function goodClaims (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: 'alice', tc: { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200 }, ...timeClaims(), sid: 'a-session-id', jti: 'a-token-id', ...extra }
}

/** fast-jwt's `checkTyp`, a verify option the plugin passes on (not in its public types). */
function typChecked (typ: string): VerifyOptions {
  return { checkTyp: typ } as VerifyOptions
}

async function encryptedApp (t: Test, options: Partial<TokenCookieOptions> = {}): Promise<FastifyInstance> {
  const app = await buildApp(t, { encrypt: true, bearer: true, ...options })
  app.post('/logout-await', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  app.post('/rename', async (request, reply) => ({ access_token: await reply.updateTokenCookie({ sub: 'alice', name: 'Al' }) }))
  return app
}

async function privateWith (app: FastifyInstance, token: string): Promise<LightMyRequestResponse> {
  return await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })
}

/** A 401 INVALID on a protected route, the cookie cleared, and the public route still served (and cleared too). */
async function refused (t: Test, app: FastifyInstance, token: string, reason: RegExp | undefined, what: string): Promise<void> {
  const response = await privateWith(app, token)
  t.equal(response.statusCode, 401, `${what}: 401`)
  t.equal(response.json().code, INVALID, `${what}: ${INVALID}`)
  if (reason !== undefined) t.match(response.json().message, reason, `${what}: ${String(reason)}`)
  t.equal(tokenCookieOf(response)?.attributes['max-age'], '0', `${what}: the cookie is cleared`)
  const open = await app.inject({ url: '/public', headers: { cookie: `token=${token}` } })
  t.equal(open.statusCode, 200, `${what}: the public route answers`)
  t.equal(tokenCookieOf(open)?.attributes['max-age'], '0', `${what}: cleared on the public route too`)
}

/** Flips one bit of a segment's bytes (re-encoded canonically, so the token reaches decryption). */
function flipped (token: string, index: number, byte = 0): string {
  const segments = segmentsOf(token)
  const bytes = Buffer.from(segments[index], 'base64url')
  bytes[byte] ^= 1
  segments[index] = b64url(bytes)
  return segments.join('.')
}

test('a session with one secret: login, verify, sliding renewal, update, logout, all encrypted', async (t) => {
  const clock = fakeClock(t)
  const app = await encryptedApp(t)
  const { token, cookie, response } = await login(app, { payload: { sub: 'alice', email: 'alice@example.com' } })
  t.equal(segmentsOf(token).length, 5, 'five segments')
  t.same(headerOf(token), goodHeader, 'dir, A256GCM, no kid for a single secret')
  t.equal(segmentsOf(token)[1], '', 'no encrypted key with dir')
  t.equal(response.json().access_token, token, 'setTokenCookie resolves to the token')
  const verified = await app.inject({ url: '/private', headers: { cookie } })
  t.equal(verified.statusCode, 200)
  t.match(verified.json(), { sub: 'alice', email: 'alice@example.com', iat: Date.now() / 1000, sid: String, jti: String })
  t.equal(verified.headers['set-cookie'], undefined, 'no renewal before renewAfter')
  const bearer = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
  t.equal(bearer.json().sub, 'alice', 'the Bearer header too')

  clock.tick(16 * minutes)
  const renewedResponse = await app.inject({ url: '/private', headers: { cookie } })
  const renewed = tokenCookieOf(renewedResponse)
  t.ok(renewed !== undefined && renewed.value !== token, 'renewed past renewAfter')
  t.same(headerOf(renewed!.value), goodHeader, 'the renewal is encrypted')
  const afterRenewal = await privateWith(app, renewed!.value)
  t.equal(afterRenewal.json().auth_time, verified.json().auth_time, 'same login')
  t.equal(afterRenewal.json().sid, verified.json().sid, 'same session')
  t.not(afterRenewal.json().jti, verified.json().jti, 'a new token id')
  t.equal(afterRenewal.json().exp, afterRenewal.json().iat + 1800, 'exp moved')

  const update = await app.inject({ method: 'POST', url: '/rename', headers: { cookie: `token=${renewed!.value}` } })
  t.equal(update.statusCode, 200)
  const updated = tokenCookieOf(update)!.value
  t.equal(update.json().access_token, updated)
  t.same(headerOf(updated), goodHeader, 'an update is encrypted')
  const afterUpdate = await privateWith(app, updated)
  t.match(afterUpdate.json(), { sub: 'alice', name: 'Al', sid: verified.json().sid, auth_time: verified.json().auth_time })
  t.equal(afterUpdate.json().email, undefined, 'the app claims replaced')

  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: `token=${updated}` } })
  t.equal(tokenCookieOf(logout)?.attributes['max-age'], '0', 'logout clears the cookie')
})

test('a key list: the kid in the protected header, the first key encrypts, the others still decrypt', async (t) => {
  const before = await encryptedApp(t, { secret: [{ kid: 'k1', secret }] })
  const { token: old } = await login(before)
  t.same(headerOf(old), { ...goodHeader, kid: 'k1' })
  const app = await encryptedApp(t, { secret: [{ kid: 'k2', secret: otherSecret }, { kid: 'k1', secret }] })
  const { token } = await login(app)
  t.same(headerOf(token), { ...goodHeader, kid: 'k2' }, 'the first key encrypts')
  t.equal((await privateWith(app, token)).statusCode, 200)
  t.equal((await privateWith(app, old)).json().sub, 'alice', 'a token of the older key is accepted')
  t.equal((await privateWith(before, token)).statusCode, 401, 'a key the app does not have')
  const header = { ...goodHeader, kid: 'k3' }
  await refused(t, app, craftJwe({ header, plaintext: goodClaims(), key }), /no key for kid "k3"/, 'an unknown kid')
  await refused(t, app, craftJwe({ plaintext: goodClaims(), key }), /no key for kid a undefined/, 'no kid in a list')
  await refused(t, app, craftJwe({ header: { ...goodHeader, kid: 'k1' }, plaintext: goodClaims(), key: jweKeyOf(otherSecret) }), /decryption operation failed/,
    'a kid naming another key than the one that encrypted')
})

test('nobody holding the token can read its claims', async (t) => {
  const app = await encryptedApp(t)
  const claims = { sub: 'alice-4711', email: 'alice@example.com', roles: ['admin'] }
  const { token } = await login(app, { payload: claims })
  const text = segmentsOf(token).map((segment) => Buffer.from(segment, 'base64url').toString('latin1')).join('\n')
  for (const value of ['alice-4711', 'alice@example.com', '"admin"', 'auth_time', '"sid"', '"tc"']) t.notOk(text.includes(value), `no segment decodes to text holding ${value}`)
  for (const value of ['alice-4711', 'alice@example.com', '"roles"', '"auth_time"']) {
    // A claim at any byte offset of a base64url text: each of its three alignments, less the characters it shares with its neighbours.
    for (const offset of [0, 1, 2]) {
      const inner = b64url(`${'x'.repeat(offset)}${value}`).slice([0, 2, 3][offset], Math.floor((offset + value.length) / 3) * 4)
      t.ok(inner.length >= 4 && !token.includes(inner), `nor its base64url (${inner}), offset ${offset}`)
    }
  }
  t.throws(() => JSON.parse(Buffer.from(segmentsOf(token)[3], 'base64url').toString()), 'the ciphertext is not JSON')
  const again = await login(app, { payload: claims })
  t.not(segmentsOf(again.token)[2], segmentsOf(token)[2], 'a fresh IV for every token')
})

test('each of the five segments tampered (one bit flipped), and segments swapped between tokens', async (t) => {
  const app = await encryptedApp(t)
  const { token } = await login(app)
  const { token: other } = await login(app, { payload: { sub: 'bob' } })
  // The header's `typ` value: still dir and A256GCM, so it reaches decryption, and the tag covers it.
  await refused(t, app, flipped(token, 0, headerOf(token).typ === 'JWT' ? Buffer.from(segmentsOf(token)[0], 'base64url').indexOf('JWT') : 0), /decryption operation failed/,
    'a header bit')
  await refused(t, app, flipped(token, 0, 2), undefined, 'a header bit in the alg name')
  const segments = segmentsOf(token)
  await refused(t, app, [segments[0], 'AA', ...segments.slice(2)].join('.'), /not an encrypted token/, 'an encrypted key added')
  await refused(t, app, flipped(token, 2), /decryption operation failed/, 'an IV bit')
  await refused(t, app, flipped(token, 3), /decryption operation failed/, 'a ciphertext bit')
  await refused(t, app, flipped(token, 3, Buffer.from(segments[3], 'base64url').length - 1), /decryption operation failed/, 'the last ciphertext byte')
  await refused(t, app, flipped(token, 4), /decryption operation failed/, 'a tag bit')
  await refused(t, app, flipped(token, 4, 15), /decryption operation failed/, 'the last tag byte')
  const others = segmentsOf(other)
  for (const index of [2, 3, 4]) {
    const swapped = [...segments]
    swapped[index] = others[index]
    await refused(t, app, swapped.join('.'), /decryption operation failed/, `segment ${index} from another token`)
  }
  t.equal((await privateWith(app, token)).statusCode, 200, 'the untampered token still works')
})

test('another alg or enc, zip, crit and embedded keys are refused before any decryption', async (t) => {
  const app = await encryptedApp(t)
  const plaintext = goodClaims()
  const cases: Array<[unknown, RegExp]> = [
    [{ ...goodHeader, alg: 'A256KW' }, /algorithm "A256KW" is not dir/],
    [{ ...goodHeader, alg: 'RSA-OAEP' }, /algorithm "RSA-OAEP" is not dir/],
    [{ ...goodHeader, alg: 'none' }, /algorithm "none" is not dir/],
    [{ ...goodHeader, alg: 'DIR' }, /algorithm "DIR" is not dir/],
    [{ ...goodHeader, alg: ['dir'] }, /algorithm an array is not dir/],
    [{ enc: 'A256GCM' }, /algorithm a undefined is not dir/],
    [{ ...goodHeader, enc: 'A128GCM' }, /encryption "A128GCM" is not A256GCM/],
    [{ ...goodHeader, enc: 'A256CBC-HS512' }, /encryption "A256CBC-HS512" is not A256GCM/],
    [{ alg: 'dir' }, /encryption a undefined is not A256GCM/],
    [{ ...goodHeader, crit: ['exp'], exp: 1 }, /header crit is not accepted/],
    [{ ...goodHeader, jwk: { kty: 'oct', k: b64url(key) } }, /header jwk is not accepted/],
    [{ ...goodHeader, jku: 'https://attacker.example/jwks.json' }, /header jku is not accepted/],
    [{ ...goodHeader, x5u: 'https://attacker.example/cert.pem' }, /header x5u is not accepted/],
    [{ ...goodHeader, epk: { kty: 'EC' } }, /header "epk" is not accepted/],
    [{ ...goodHeader, p2c: 1e9, p2s: 'c2FsdA' }, /header "p2c" is not accepted/],
    [{ ...goodHeader, cty: 'JWT' }, /header "cty" is not accepted/],
    [{ ...goodHeader, kid: 'k1' }, /no key for kid "k1"/],
    [raw('[]'), /header is not a JSON object/],
    [raw('{"alg":"dir",}'), /header is not JSON/],
    [raw('"dir"'), /header is not a JSON object/]
  ]
  for (const [header, reason] of cases) {
    await refused(t, app, craftJwe({ header, plaintext, key }), reason, `header ${header instanceof Object && !Array.isArray(header) ? JSON.stringify(header) : String(header)}`)
  }
  t.equal((await privateWith(app, craftJwe({ plaintext, key }))).statusCode, 200, 'control: the same claims under a good header are accepted')
})

test('zip: a deflate bomb encrypted with the right key is refused without being inflated', async (t) => {
  const app = await encryptedApp(t)
  // 2 MiB of zeros deflate to some 2 KB: about what a token of 4096 bytes can carry (deflate bombs nest no further).
  const inflated = 2 * 1024 * 1024
  const bomb = deflateRawSync(Buffer.alloc(inflated))
  t.ok(inflateRawSync(bomb).length === inflated && bomb.length < 2100, `a real bomb: ${bomb.length} bytes inflate to 2 MiB`)
  const token = craftJwe({ header: { ...goodHeader, zip: 'DEF' }, plaintext: bomb, key })
  t.ok(token.length <= 4096, `within the size limit (${token.length} bytes)`)
  const before = process.memoryUsage()
  const started = process.hrtime.bigint()
  for (let n = 0; n < 20; n++) await refused(t, app, token, /header "zip" is not accepted/, `the bomb, ${n}`)
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6
  const after = process.memoryUsage()
  t.ok(elapsed < 2000, `40 refusals in ${elapsed.toFixed(0)} ms`)
  t.ok(after.arrayBuffers - before.arrayBuffers < inflated, `array buffers grew by ${after.arrayBuffers - before.arrayBuffers} bytes, less than one inflation`)
  await refused(t, app, craftJwe({ header: { ...goodHeader, zip: 'DEF' }, plaintext: deflateRawSync(JSON.stringify(goodClaims())), key }), /"zip"/,
    'a small compressed token too')
})

test('a token under a key not derived from the secret, or another secret, is INVALID', async (t) => {
  const app = await encryptedApp(t)
  const plaintext = goodClaims()
  const rawSecretKey = Buffer.from(secret).subarray(0, 32)
  await refused(t, app, craftJwe({ plaintext, key: rawSecretKey }), /decryption operation failed/, 'the secret itself as the AES key (no HKDF)')
  await refused(t, app, craftJwe({ plaintext, key: jweKeyOf(otherSecret) }), /decryption operation failed/, 'the key of another secret')
  const foreign = await encryptedApp(t, { secret: otherSecret })
  await refused(t, app, (await login(foreign)).token, /decryption operation failed/, 'a token of an app with another secret')
  t.equal((await privateWith(app, craftJwe({ plaintext, key }))).statusCode, 200, 'control: the documented derivation of the secret is the key')
})

test('a JWS sent to an encrypting app, and a JWE sent to a signing app, are INVALID', async (t) => {
  const encrypting = await encryptedApp(t)
  const signing = await buildApp(t)
  const { token: signed } = await login(signing)
  const { token: encrypted } = await login(encrypting)
  await refused(t, encrypting, signed, /not an encrypted token/, 'a JWS of the same secret')
  await refused(t, encrypting, craft({ payload: goodClaims(), key: secret }), /not an encrypted token/, 'a crafted HS256 JWS')
  await refused(t, encrypting, craft({ header: { alg: 'none' }, payload: goodClaims() }), /not an encrypted token/, 'alg none')
  await refused(t, signing, encrypted, /not a signed JWT/, 'a JWE of the same secret')
})

test('malformed, non-canonical and oversized tokens are INVALID', async (t) => {
  const app = await encryptedApp(t)
  const token = craftJwe({ plaintext: goodClaims(), key })
  const [header, , iv, ciphertext, tag] = segmentsOf(token)
  const lastChanged = (segment: string): string => segment.slice(0, -1) + String.fromCharCode(segment.charCodeAt(segment.length - 1) + 1)
  const cases: Array<[string, RegExp, string]> = [
    [[header, '', iv, ciphertext].join('.'), /not an encrypted token/, 'four segments'],
    [`${token}.`, /not an encrypted token/, 'six segments'],
    [[header, '', iv.slice(0, -1), ciphertext, tag].join('.'), /not an encrypted token/, 'an IV of 95 bits'],
    [[header, '', `${iv}AA`, ciphertext, tag].join('.'), /not an encrypted token/, 'a longer IV'],
    [[header, '', iv, ciphertext, tag.slice(0, -2)].join('.'), /not an encrypted token/, 'a short tag'],
    [[header, '', iv, '', tag].join('.'), /not an encrypted token/, 'no ciphertext'],
    [[header, '', iv, `${ciphertext}=`, tag].join('.'), /not an encrypted token/, 'padding'],
    [[header, '', iv, ciphertext.replace(/.$/, '+'), tag].join('.'), /not an encrypted token/, 'a base64 (not base64url) character'],
    [[header, '', iv, ciphertext, lastChanged(tag)].join('.'), /not canonical base64url/, 'unused bits set in the tag'],
    [[`${header}${'A'.repeat(5 - (header.length % 4))}`, '', iv, ciphertext, tag].join('.'), /not canonical base64url/, 'a header of impossible length']
  ]
  // A ciphertext whose length leaves unused bits in its last character: one byte more or less does.
  const odd = [16, 17, 18].map((length) => craftJwe({ plaintext: raw(`{"a":"${'x'.repeat(length)}"}`), key })).find((candidate) => segmentsOf(candidate)[3].length % 4 !== 0)!
  const oddSegments = segmentsOf(odd)
  oddSegments[3] = lastChanged(oddSegments[3])
  cases.push([oddSegments.join('.'), /not canonical base64url/, 'unused bits set in the ciphertext'])
  for (const [bad, reason, what] of cases) await refused(t, app, bad, reason, what)
  const oversized = craftJwe({ plaintext: goodClaims({ pad: 'x'.repeat(3200) }), key })
  t.ok(oversized.length > 4096)
  await refused(t, app, oversized, /longer than 4096 bytes/, 'over 4096 bytes')
})

test('decrypted claims meet every rule signed ones meet', async (t) => {
  fakeClock(t)
  const app = await encryptedApp(t, { verify: { allowedIss: 'https://issuer.example', ...typChecked('JWT') }, sign: { iss: 'https://issuer.example' } })
  const { token } = await login(app)
  t.equal((await privateWith(app, token)).json().iss, 'https://issuer.example', 'sign.iss is a claim of the encrypted token')
  const issuer = { iss: 'https://issuer.example' }
  const cases: Array<[unknown, RegExp, string, unknown?]> = [
    [goodClaims(), /iss claim is required/, 'no iss'],
    [goodClaims({ iss: 'https://attacker.example' }), /iss claim value is not allowed/, 'another iss'],
    [goodClaims({ ...issuer, iss: ['https://issuer.example'] }), /iss claim must be a string/, 'an array iss'],
    [goodClaims({ ...issuer, iat: 'now' }), /non-numeric or future iat/, 'a string iat'],
    [goodClaims({ ...issuer, exp: null }), /non-numeric or future iat, exp/, 'a null exp'],
    [goodClaims({ ...issuer, auth_time: Date.now() / 1000 + 60 }), /future/, 'a future auth_time'],
    [goodClaims({ ...issuer, sid: 42 }), /malformed sid or jti/, 'a numeric sid'],
    [goodClaims({ ...issuer, tc: 'sliding' }), /malformed tc claim/, 'a malformed tc'],
    [goodClaims({ ...issuer, nbf: Date.now() / 1000 + 60 }), /not active yet/, 'nbf in the future'],
    [raw(`{"iss":"https://issuer.example",${rawTimeClaims()},"__proto__":{"admin":true}}`), /__proto__/, 'a __proto__ key'],
    [raw('[1,2]'), /payload must be an object/, 'an array payload'],
    [raw('{"iss":'), /not a valid base64url serialized JSON/, 'not JSON'],
    [goodClaims(issuer), /Invalid typ/, 'another typ', { alg: 'dir', enc: 'A256GCM', typ: 'JOSE' }],
    [goodClaims(issuer), /Invalid typ/, 'no typ', { alg: 'dir', enc: 'A256GCM' }]
  ]
  for (const [plaintext, reason, what, header] of cases) await refused(t, app, craftJwe({ header, plaintext, key }), reason, what)
  t.equal((await privateWith(app, craftJwe({ plaintext: goodClaims(issuer), key }))).statusCode, 200, 'control: good claims are accepted')
  const expired = await privateWith(app, craftJwe({ plaintext: goodClaims({ ...issuer, exp: Date.now() / 1000 - 1 }), key }))
  t.equal(expired.json().code, 'FST_TOKEN_COOKIE_EXPIRED', 'past exp: EXPIRED, as for a signed token')
})

test('a token is decrypted once: then every request finds it in the cache, concurrent first sights included', async (t) => {
  const clock = fakeClock(t)
  // The claim check runs once after each decryption that succeeds: a RegExp that counts its tests counts them.
  const subject = /^alice$/
  let decryptions = 0
  const test = subject.test.bind(subject)
  subject.test = (value: string): boolean => {
    decryptions++
    return test(value)
  }
  const app = await encryptedApp(t, { verify: { allowedSub: subject } })
  const { token } = await login(app)
  for (let n = 0; n < 5; n++) t.equal((await privateWith(app, token)).statusCode, 200)
  t.equal(decryptions, 1, 'five requests, one decryption')
  const { token: fresh } = await login(app)
  const responses = await Promise.all(Array.from({ length: 8 }, async () => await privateWith(app, fresh)))
  t.same(responses.map((response) => response.statusCode), Array(8).fill(200))
  t.equal(decryptions, 2, 'eight requests at once with a new token share one decryption')
  clock.tick(16 * minutes)
  const renewed = tokenCookieOf(await privateWith(app, token))!.value
  t.equal(decryptions, 2, 'a renewal of a remembered token decrypts nothing')
  for (let n = 0; n < 3; n++) await privateWith(app, renewed)
  t.equal(decryptions, 3, 'the renewed token is decrypted once')
  await refused(t, app, flipped(renewed, 3), /decryption operation failed/, 'a tampered copy')
  await refused(t, app, flipped(renewed, 3), /decryption operation failed/, 'a tampered copy, again')
  t.equal(decryptions, 3, 'a refused token is never admitted')
})

test('a renewal that would pass 4096 bytes is not sent; the current cookie stays valid', async (t) => {
  const clock = fakeClock(t)
  const app = await encryptedApp(t)
  const warnings: unknown[] = []
  app.addHook('onRequest', async (request) => { request.log.warn = (...args: unknown[]) => { warnings.push(args) } })
  let pad = 2700
  let token = ''
  while (token.length < 4050) token = craftJwe({ plaintext: goodClaims({ pad: 'x'.repeat(pad++) }), key })
  clock.tick(20 * minutes)
  const response = await privateWith(app, token)
  t.equal(response.statusCode, 200)
  t.equal(response.headers['set-cookie'], undefined, 'no renewal sent')
  t.equal(warnings.length, 1, 'the renewal not sent is logged')
})

test('with a store: logout revokes the session of an encrypted token, and of each value of a doubled cookie', async (t) => {
  const app = await encryptedApp(t, { store: true })
  const { token, cookie } = await login(app)
  await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie } })
  t.equal((await privateWith(app, token)).json().code, 'FST_TOKEN_COOKIE_REVOKED')
  const first = await login(app)
  const second = await login(app)
  await app.inject({ method: 'POST', url: '/logout-await', headers: { cookie: `${first.cookie}; ${second.cookie}; token=${flipped(first.token, 3)}` } })
  t.equal((await privateWith(app, first.token)).json().code, 'FST_TOKEN_COOKIE_REVOKED', 'the first value')
  t.equal((await privateWith(app, second.token)).json().code, 'FST_TOKEN_COOKIE_REVOKED', 'the second value')
})

test('registration: encrypt must be a boolean and needs HMAC secrets, and no algorithm', async (t) => {
  const rsa = pemKeys('rsa')
  const cases: Array<[Partial<TokenCookieOptions>, RegExp]> = [
    [{ encrypt: 'yes' as unknown as boolean }, /option encrypt must be a boolean/],
    [{ encrypt: 1 as unknown as boolean }, /option encrypt must be a boolean/],
    [{ encrypt: true, secret: rsa }, /option encrypt needs HMAC secrets/],
    [{ encrypt: true, secret: [{ kid: 'k1', secret }, { kid: 'k2', ...rsa }] }, /option encrypt needs HMAC secrets/],
    [{ encrypt: true, sign: { algorithm: 'HS256' } }, /option sign.algorithm cannot be set with encrypt: true/],
    [{ encrypt: true, secret: [{ kid: 'k1', secret }, { kid: 'k2', secret, algorithm: 'HS512' }] }, /option secret\[1\].algorithm cannot be set/],
    [{ encrypt: true, sign: { iss: 42 as unknown as string } }, /option sign.iss must be a string/],
    [{ encrypt: true, sign: { aud: ['a', 1] as unknown as string[] } }, /option sign.aud must be a string or an array of strings/],
    [{ encrypted: true } as Partial<TokenCookieOptions>, /encrypted is not an option: did you mean encrypt\?/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(tokenCookie, { secret, ...options } as TokenCookieOptions)
      await app.ready()
    }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message }, String(message))
  }
  for (const encrypt of [false, undefined]) {
    const app = await buildApp(t, { encrypt, secret: rsa })
    t.equal(segmentsOf((await login(app)).token).length, 3, `encrypt: ${String(encrypt)} signs`)
  }
  const typed = await encryptedApp(t, { sign: { typ: 'at+jwt' }, verify: typChecked('application/at+JWT') })
  const typedToken = (await login(typed)).token
  t.equal(headerOf(typedToken).typ, 'at+jwt', 'sign.typ is the header typ')
  t.equal((await privateWith(typed, typedToken)).statusCode, 200, 'checked by checkTyp as fast-jwt compares it')
  const audiences = await encryptedApp(t, { sign: { aud: ['a', 'b'] }, verify: { allowedAud: 'b' } })
  t.same((await privateWith(audiences, (await login(audiences)).token)).json().aud, ['a', 'b'], 'sign.aud as an array')
})

test('the encrypting codec refuses verify options it cannot check', async (t) => {
  const admit = (): never => { throw new Error('unused') }
  await t.rejects(createEncryptedCodec([{ kid: undefined, secret }], admit, { verify: { maxAge: 60 } }),
    { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /verify has an option that encrypt: true cannot check \(maxAge\)/ })
  const codec = await createEncryptedCodec([{ kid: undefined, secret }], () => 'admitted')
  t.equal(await codec.verify(craftJwe({ plaintext: { sub: 'alice' }, key })), 'admitted', 'no option: no claim check')
  t.match(await codec.verify(encodeSegment('x')), { code: INVALID })
})
