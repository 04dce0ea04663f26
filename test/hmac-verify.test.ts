// HS* tokens are verified by the codec itself: one HMAC compared in constant time, then the payload and the claim
// checks of fast-jwt's verifier. Checked here against fast-jwt, verdict for verdict, over generated tokens and
// verify options; and the cache: one HMAC per new token, none for a remembered one, as many remembered as cacheSize.
import crypto from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import fc from 'fast-check'
import { createVerifier } from 'fast-jwt'
import { test, type Test } from 'tap'
import { buildApp, fakeClock, login, secret } from './helpers/app.js'
import { b64url, craft, nowSeconds, signInput, timeClaims } from './helpers/craft.js'
import { fuzzRuns, fuzzSeed } from './helpers/fuzz.js'
import { createCodec, isCanonicalBase64url, isInvalidToken, type CodecKey, type VerifiedPayload } from '../lib/token.js'

const seed = fuzzSeed(20261204)
const admitAll = (payload: VerifiedPayload): VerifiedPayload => payload

/** A codec for one HS256 secret whose fast-jwt verifier (built with `verify`) counts its calls. */
function hsCodec (verify: Record<string, unknown>, cacheSize?: number) {
  const reference = createVerifier({ key: secret, algorithms: ['HS256'], ...verify } as unknown as Parameters<typeof createVerifier>[0])
  const calls = { fastJwt: 0 }
  const key: CodecKey = {
    kid: undefined,
    algorithm: 'HS256',
    jwt: {
      sign: () => 'unused',
      verify (token) {
        calls.fastJwt++
        return reference(token)
      }
    },
    hmacSecret: secret
  }
  return { codec: createCodec([key], admitAll, { verify, cacheSize }), reference, calls }
}

function signed (header: unknown, payload: unknown): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  return `${input}.${signInput(input, 'HS256', secret)}`
}

// The verify options fast-jwt's verifier gets: the plugin's (ignoreExpiration, requiredClaims, clockTolerance in ms)
// and the rest of what it knows.
const optionSets: Array<[string, Record<string, unknown>]> = [
  ['fast-jwt\'s defaults (exp and nbf checked, no tolerance)', {}],
  ['the plugin\'s, with allowedIss and a clock tolerance', { requiredClaims: ['iss'], ignoreExpiration: true, clockTolerance: 60_000, allowedIss: 'https://a' }],
  ['matchers of every kind, checkTyp', {
    allowedAud: ['a', /^b/],
    allowedSub: { test: (value: string) => value.startsWith('u') },
    allowedJti: /^j/g,
    allowedNonce: ['n1', ''],
    checkTyp: 'application/JWT',
    ignoreExpiration: true,
    requiredClaims: []
  }],
  ['no time checks, inherited and empty-string claims', {
    ignoreNotBefore: true, ignoreExpiration: true, requiredClaims: ['toString', 'x'], allowedIss: [''], allowedSub: ['u1', 'u2']
  }],
  ['a frozen global RegExp (its test() throws) and a frozen plain one', { allowedIss: Object.freeze(/^https:\/\/a/g), allowedSub: Object.freeze(/^u/) }]
]

const now = () => nowSeconds()
const timeArb = fc.oneof(
  fc.integer({ min: -180, max: 180 }).map((offset) => ({ offset })),
  fc.double({ min: -180, max: 180, noNaN: true }).map((offset) => ({ offset })),
  fc.constantFrom<unknown>('1', null, true, [1], 1e308, -1e308, 0)
)
// A claim: mostly a value some option set allows, else one of another type or that none allows.
const stringArb = (...allowed: unknown[]): fc.Arbitrary<unknown> => fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...allowed) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('https://a.evil', 'https://b', 'c', 'x', '', 1, null, true, {}) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom<unknown>('a', 'b', 'c', 'u1', 'https://a', 1), { maxLength: 3 }) }
)
const claimsArb = fc.record({
  nbf: timeArb,
  exp: timeArb,
  iss: stringArb('https://a', ''),
  aud: stringArb('a', 'b', 'bb', ['c', 'a'], []),
  sub: stringArb('u1', 'u2'),
  jti: stringArb('j1', 'j2'),
  nonce: stringArb('n1', ''),
  x: fc.constant(1)
}, { requiredKeys: [] })
const headerArb = fc.record({
  typ: fc.constantFrom<unknown>('JWT', 'jwt', 'application/JWT', 'application/jwt', 'at+jwt', 'JOSE', 5, null),
  extra: fc.constantFrom(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}, { requiredKeys: ['typ'] })
// Mostly good signatures, so that the claim checks are reached.
const forgedArb = fc.integer({ min: 0, max: 7 }).map((n) => n === 0)

function payloadOf (claims: Record<string, unknown>): Record<string, unknown> {
  const payload: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(claims)) {
    const time = value as { offset?: number }
    payload[name] = time !== null && typeof time === 'object' && typeof time.offset === 'number' ? now() + time.offset : value
  }
  return payload
}

for (const [name, verify] of optionSets) {
  test(`HS256 tokens, ${name}: the codec's verdict is fast-jwt's`, async (t) => {
    fakeClock(t)
    const { codec, reference, calls } = hsCodec(verify)
    let accepted = 0
    await fc.assert(fc.property(headerArb, claimsArb, forgedArb, (header, claims, forged) => {
      const payload = payloadOf(claims)
      const good = signed({ alg: 'HS256', ...header }, payload)
      const token = forged ? `${good.slice(0, good.lastIndexOf('.'))}.${signInput('other', 'HS256', secret)}` : good
      let expected: unknown
      try {
        expected = reference(token)
      } catch (error) {
        expected = error
      }
      const actual = codec.verify(token)
      if (expected instanceof Error) {
        if (!isInvalidToken(actual)) throw new Error(`accepted, fast-jwt refused it: ${expected.message}\n${JSON.stringify({ header, payload })}`)
      } else {
        if (isInvalidToken(actual)) throw new Error(`refused (${actual.message}), fast-jwt accepted it\n${JSON.stringify({ header, payload })}`)
        t.same(actual, expected)
        accepted++
      }
    }), { seed, numRuns: fuzzRuns(1000) })
    t.equal(calls.fastJwt, 0, 'fast-jwt never verified an HS256 token')
    t.ok(accepted > 0, `some tokens were accepted (${accepted})`)
  })
}

test('claim checks that fail for reasons of their own refuse the token, as fast-jwt does', async (t) => {
  fakeClock(t)
  const throwing = { test () { throw 'not an Error' } } // eslint-disable-line no-throw-literal
  const { codec } = hsCodec({ allowedSub: throwing, ignoreExpiration: true })
  t.match(codec.verify(signed({ alg: 'HS256' }, { sub: 'u1' })), { code: 'FST_TOKEN_COOKIE_INVALID', message: /a claim check failed/ })
  const frozen = hsCodec({ allowedIss: Object.freeze(/^https:\/\/a/g) }).codec
  t.ok(isInvalidToken(frozen.verify(signed({ alg: 'HS256' }, { iss: 'https://a' }))), 'a frozen global RegExp cannot test')
  t.notOk(isInvalidToken(frozen.verify(signed({ alg: 'HS256' }, { sub: 'u1' }))), 'without the claim, the matcher is not asked')
})

test('HS256 tokens whose payload is not a JSON object are refused after the HMAC, by the codec', async (t) => {
  const { codec, calls } = hsCodec({ ignoreExpiration: true })
  const header = b64url(JSON.stringify({ alg: 'HS256' }))
  for (const text of ['not json', '[1,2]', 'null', '"text"', '{"a":']) {
    const input = `${header}.${b64url(text)}`
    t.match(codec.verify(`${input}.${signInput(input, 'HS256', secret)}`), { code: 'FST_TOKEN_COOKIE_INVALID' }, text)
  }
  t.match(codec.verify(`${header}.${b64url('{}')}.${signInput('x', 'HS256', secret)}`), { message: /signature is invalid/ })
  t.match(codec.verify(`${header}.${b64url('{}')}.${b64url('short')}`), { message: /signature is invalid/ }, 'a signature of another length')
  t.equal(calls.fastJwt, 0)
})

test('verify options the codec does not check itself: fast-jwt verifies HS256 tokens, no HMAC of the codec\'s', async (t) => {
  fakeClock(t)
  const { codec, calls } = hsCodec({ maxAge: 60_000, ignoreExpiration: true })
  const fresh = signed({ alg: 'HS256', typ: 'JWT' }, { iat: now(), n: 1 })
  const old = signed({ alg: 'HS256', typ: 'JWT' }, { iat: now() - 120, n: 2 })
  const hmacs = countHmacs(t)
  t.same(codec.verify(fresh), { iat: now(), n: 1 })
  t.ok(isInvalidToken(codec.verify(old)), 'too old for maxAge')
  t.equal(calls.fastJwt, 2)
  t.equal(hmacs.count, 0)
})

test('a verifier that throws something other than an Error: INVALID all the same', async (t) => {
  const codec = createCodec([{ kid: undefined, algorithm: 'RS256', jwt: { sign: () => 'unused', verify: () => { throw 'no' } } }], admitAll) // eslint-disable-line no-throw-literal
  t.match(codec.verify(`${b64url(JSON.stringify({ alg: 'RS256' }))}.${b64url('{}')}.c2ln`), { code: 'FST_TOKEN_COOKIE_INVALID', message: /did not verify/ })
})

test('base64url canonical check: the same verdict as a Buffer round trip, for every last character and length', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  let checked = 0
  for (let length = 1; length <= 9; length++) {
    for (const last of alphabet) {
      const text = `${'A'.repeat(length - 1)}${last}`
      const roundTrip = Buffer.from(text, 'base64url').toString('base64url') === text
      if (isCanonicalBase64url(`x.y.${text}`, 4) !== roundTrip) t.fail(`${text}: round trip says ${roundTrip}`)
      checked++
    }
  }
  t.equal(checked, 9 * 64)
})

// ---------------------------------------------------------------------------------------------------------
// The cache of verified tokens, through the plugin

/** Counts node:crypto's createHmac calls made through the ESM binding (the codec's), until the test ends. */
function countHmacs (t: Test): { count: number } {
  const counter = { count: 0 }
  const original = crypto.createHmac
  crypto.createHmac = ((...args: Parameters<typeof crypto.createHmac>) => {
    counter.count++
    return original(...args)
  }) as typeof crypto.createHmac
  syncBuiltinESMExports()
  t.teardown(() => {
    crypto.createHmac = original
    syncBuiltinESMExports()
  })
  return counter
}

test('one HMAC per new token, none for a remembered one; cacheSize bounds how many are remembered', async (t) => {
  fakeClock(t)
  const app = await buildApp(t, { cacheSize: 2 })
  const tokens = [await login(app), await login(app), await login(app)].map(({ cookie }) => cookie)
  const forged = `${tokens[1].slice(0, tokens[1].lastIndexOf('.'))}.${signInput('x', 'HS256', secret)}`
  const hmacs = countHmacs(t)
  const get = async (cookie: string): Promise<number> => (await app.inject({ url: '/private', headers: { cookie } })).statusCode
  const hmacsFor = async (cookie: string): Promise<number> => {
    const before = hmacs.count
    t.equal(await get(cookie), 200)
    return hmacs.count - before
  }
  t.equal(await hmacsFor(tokens[0]), 1, 'a new token: one HMAC')
  t.equal(await hmacsFor(tokens[0]), 0, 'the same token again: none')
  t.equal(await hmacsFor(tokens[1]), 1)
  t.equal(await hmacsFor(tokens[0]), 0, 'two remembered')
  t.equal(await hmacsFor(tokens[2]), 1, 'a third token...')
  t.equal(await hmacsFor(tokens[1]), 0)
  t.equal(await hmacsFor(tokens[0]), 1, '...and the oldest of the two was dropped')
  t.equal(await get(forged), 401)
  t.equal(await get(forged), 401)
  t.equal(hmacs.count, 6, 'a forged token costs one HMAC each time, and is never remembered')
})

test('the default cache remembers 32768 tokens', async (t) => {
  fakeClock(t)
  const size = 32_768
  const codec = createCodec([{ kid: undefined, algorithm: 'HS256', jwt: { sign: () => 'unused', verify: () => undefined }, hmacSecret: secret }], admitAll)
  const tokens = Array.from({ length: size + 1 }, (_, n) => craft({ payload: { n, ...timeClaims() }, key: secret }))
  const hmacs = countHmacs(t)
  t.equal(tokens.slice(0, size).filter((token) => isInvalidToken(codec.verify(token))).length, 0, 'all accepted')
  t.equal(hmacs.count, size)
  for (let n = 0; n < size; n++) codec.verify(tokens[n])
  t.equal(hmacs.count, size, 'all remembered')
  codec.verify(tokens[size])
  codec.verify(tokens[0])
  t.equal(hmacs.count, size + 2, 'the one after them pushed the oldest out')
})

for (const cacheSize of [0, -1, 1.5, Number.NaN, Infinity, '4096', null]) {
  test(`cacheSize ${String(cacheSize)} fails registration`, async (t) => {
    await t.rejects(buildApp(t, { cacheSize: cacheSize as number }), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /cacheSize must be a positive integer/ })
  })
}

test('cacheSize 1 works: a token, then another, then the first again', async (t) => {
  fakeClock(t)
  const app = await buildApp(t, { cacheSize: 1 })
  const first = await login(app)
  const second = await login(app)
  for (const { cookie } of [first, second, first]) t.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
})
