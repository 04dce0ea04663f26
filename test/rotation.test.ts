// Key rotation: a list of keys, the first signs, each token names its key by kid.
import { createHmac } from 'node:crypto'
import { test } from 'tap'
import { buildApp, claimsOf, fakeClock, login, pemKeys, rejectsRegistration, start, tokenCookieOf } from './helpers/app.js'

const minutes = 60 * 1000
const k1 = { kid: 'k1', secret: 'the-first-secret-of-32-bytes-or-more' }
const k2 = { kid: 'k2', secret: 'the-second-secret-of-32-bytes-or-more' }
const rsa = pemKeys('rsa')

function headerOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString())
}

function hs256 (header: object, payload: object, key: string): string {
  const body = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`
}

test('tokens are signed with the first key and carry its kid', async (t) => {
  const app = await buildApp(t, { secret: [k1, k2] })
  const { token, cookie } = await login(app)
  t.same(headerOf(token), { alg: 'HS256', typ: 'JWT', kid: 'k1' })
  t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
})

test('rotation under traffic: old tokens verify, renewals move to the new key, a removed key stops at once', async (t) => {
  const clock = fakeClock(t)
  const before = await buildApp(t, { secret: [k1] })
  const sliding = await login(before)
  const persistent = await login(before, { login: { policy: 'persistent', maxAge: '7d' } })
  t.equal(headerOf(sliding.token).kid, 'k1')

  // Deploy 2: a new current key, the old one kept for verification.
  const during = await buildApp(t, { secret: [k2, k1] })
  clock.tick(5 * minutes)
  const early = await during.inject({ url: '/private', headers: { cookie: sliding.cookie } })
  t.equal(early.statusCode, 200, 'a k1 token is still accepted')
  t.equal(tokenCookieOf(early), undefined, 'no renewal before the threshold')
  clock.tick(10 * minutes)
  const renewal = tokenCookieOf(await during.inject({ url: '/private', headers: { cookie: sliding.cookie } }))!
  t.equal(headerOf(renewal.value).kid, 'k2', 're-signed with the current key at its renewal')
  t.equal(claimsOf(renewal.value).auth_time, start / 1000, 'same login')
  t.equal((await during.inject({ url: '/private', headers: { cookie: persistent.cookie } })).statusCode, 200)

  // Deploy 3: k1 removed.
  const after = await buildApp(t, { secret: [k2] })
  const old = await after.inject({ url: '/private', headers: { cookie: sliding.cookie } })
  t.equal(old.json().code, 'FST_TOKEN_COOKIE_INVALID', 'the k1 token stops working at once')
  t.equal((await after.inject({ url: '/private', headers: { cookie: `token=${renewal.value}` } })).statusCode, 200, 'the renewed one works')
  const never = await after.inject({ url: '/private', headers: { cookie: persistent.cookie } })
  t.equal(never.json().code, 'FST_TOKEN_COOKIE_INVALID', 'a persistent token never renews, so it ends with its key')
})

test('every algorithm in one list, each pinned to its own', async (t) => {
  const keys = [
    { kid: 'hs', secret: 'an-hmac-secret-of-at-least-32-bytes' },
    { kid: 'hs512', secret: 'x'.repeat(64), algorithm: 'HS512' as const },
    { kid: 'rsa', ...rsa },
    { kid: 'ec', ...pemKeys('ec', 'P-256') },
    { kid: 'ed', ...pemKeys('ed25519') }
  ]
  const expected: Record<string, string> = { hs: 'HS256', hs512: 'HS512', rsa: 'RS256', ec: 'ES256', ed: 'EdDSA' }
  const verifier = await buildApp(t, { secret: keys })
  for (const key of keys) {
    // An app whose current key is this one, the others kept: as after a rotation to it.
    const signer = await buildApp(t, { secret: [key, ...keys.filter((other) => other !== key)] })
    const { token, cookie } = await login(signer)
    t.same({ alg: headerOf(token).alg, kid: headerOf(token).kid }, { alg: expected[key.kid], kid: key.kid })
    t.equal((await verifier.inject({ url: '/private', headers: { cookie } })).statusCode, 200, `${key.kid} verifies`)
  }
})

test('kid confusion: unknown, missing, odd and mismatched kids are INVALID, never a fallback', async (t) => {
  fakeClock(t)
  const app = await buildApp(t, { secret: [k1, { kid: 'rsa', ...rsa }] })
  const now = start / 1000
  const claims = { sub: 'mallory', iat: now, exp: now + 600, auth_time: now }
  const control = hs256({ alg: 'HS256', typ: 'JWT', kid: 'k1' }, claims, k1.secret)
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${control}` } })).statusCode, 200, 'control: a good k1 token')
  const attacks: Record<string, string> = {
    'kid naming the RSA key on an HS256 token signed with its public key': hs256({ alg: 'HS256', kid: 'rsa' }, claims, rsa.public),
    'kid naming the RSA key on an HS256 token signed with k1': hs256({ alg: 'HS256', kid: 'rsa' }, claims, k1.secret),
    'no kid': hs256({ alg: 'HS256' }, claims, k1.secret),
    'unknown kid': hs256({ alg: 'HS256', kid: 'k3' }, claims, k1.secret),
    'empty kid': hs256({ alg: 'HS256', kid: '' }, claims, ''),
    'numeric kid': hs256({ alg: 'HS256', kid: 1 }, claims, k1.secret),
    'kid as a list': hs256({ alg: 'HS256', kid: ['k1'] }, claims, k1.secret),
    'path traversal kid': hs256({ alg: 'HS256', kid: '../../../../dev/null' }, claims, ''),
    'SQL-looking kid': hs256({ alg: 'HS256', kid: "' OR '1'='1' --" }, claims, ''),
    '__proto__ kid': hs256({ alg: 'HS256', kid: '__proto__' }, claims, ''),
    'constructor kid': hs256({ alg: 'HS256', kid: 'constructor' }, claims, ''),
    'k1 kid signed with k2': hs256({ alg: 'HS256', kid: 'k1' }, claims, k2.secret)
  }
  for (const [name, token] of Object.entries(attacks)) {
    const response = await app.inject({ url: '/private', headers: { cookie: `token=${token}` } })
    t.equal(response.statusCode, 401, name)
    t.equal(response.json().code, 'FST_TOKEN_COOKIE_INVALID', name)
  }
})

test('with a single secret, kid is not used', async (t) => {
  fakeClock(t)
  const secret = 'a-single-secret-that-is-32-bytes-long'
  const app = await buildApp(t, { secret })
  const { token } = await login(app)
  t.notOk('kid' in headerOf(token), 'no kid written')
  const now = start / 1000
  const withKid = hs256({ alg: 'HS256', kid: 'anything' }, { sub: 'a', iat: now, exp: now + 60, auth_time: now }, secret)
  t.equal((await app.inject({ url: '/private', headers: { cookie: `token=${withKid}` } })).statusCode, 200)
})

const badLists: Array<[string, unknown, RegExp]> = [
  ['an empty list', [], /secret must list at least one key/],
  ['a duplicated kid', [k1, { ...k2, kid: 'k1' }], /secret\[1\]\.kid k1 is not unique/],
  ['a kid with a slash', [{ ...k1, kid: '../k1' }], /secret\[0\]\.kid/],
  ['a kid with a space', [{ ...k1, kid: 'k 1' }], /secret\[0\]\.kid/],
  ['an empty kid', [{ ...k1, kid: '' }], /secret\[0\]\.kid/],
  ['a kid of 65 characters', [{ ...k1, kid: 'k'.repeat(65) }], /secret\[0\]\.kid/],
  ['a missing kid', [{ secret: k1.secret }], /secret\[0\]\.kid/],
  ['an entry that is not an object', ['a-secret-of-thirty-two-bytes-or-more'], /secret\[0\]/],
  ['a short secret in the list', [{ kid: 'short', secret: 'short' }], /secret must be at least 32 bytes/],
  ['an algorithm that does not fit the key', [{ kid: 'rsa', ...rsa, algorithm: 'HS256' }], /sign.algorithm/],
  ['an HMAC key with an RSA algorithm', [{ ...k1, algorithm: 'RS256' }], /sign.algorithm/]
]

for (const [name, secret, message] of badLists) {
  test(`registration fails: ${name}`, async (t) => {
    await rejectsRegistration(t, { secret }, message)
  })
}

test('a kid of 64 characters from the whole alphabet is fine', async (t) => {
  const kid = 'Az09._-'.padEnd(64, 'x')
  const app = await buildApp(t, { secret: [{ kid, secret: k1.secret }] })
  const { token } = await login(app)
  t.equal(headerOf(token).kid, kid)
})
