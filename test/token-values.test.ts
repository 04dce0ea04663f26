// Every header field and claim the plugin reads, given a value of any JSON type, by a token whose signature is
// good: never a 5xx or a 400, never a session from a malformed claim, and a refused cookie is always cleared.
// Through the cookie and the Bearer header, on public and protected routes, with one secret, a key list and an
// RSA key, signed; and with one secret and a key list, encrypted (`encrypt: true`) with the app's key, so every value
// gets past decryption. No token value may reach String(), a template, a comparison or a Map lookup before its type is checked.
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { test } from 'tap'
import type { TokenCookieOptions } from '../index.js'
import { buildApp, fakeClock, pemKeys, secret, tokenCookieOf } from './helpers/app.js'
import { b64url, craftJwe, jweKeyOf, nowSeconds, raw, signInput, type SigningKey } from './helpers/craft.js'
import { fuzzRuns, fuzzSeed, rejectionCodes } from './helpers/fuzz.js'

const seed = fuzzSeed(20301204)
const otherSecret = 'another-test-secret-of-32-bytes-or-more'

/** A JSON value as text: fast-check's, or one JSON.stringify cannot write (Infinity, `__proto__` keys), or a trap. */
const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.constantFrom(
    '{"toString":1}', '{"toString":{}}', '{"valueOf":1,"toString":null}', '[{"toString":1}]', '[[{"valueOf":{}}]]',
    '{"__proto__":{"toString":1}}', '{"__proto__":null}', '1e400', '-1e400', '1e308', '-0', '9007199254740993',
    '"HS256 "', '"hs256"', '"none"', '"__proto__"', '"constructor"', 'null', 'true', '[]', '{}', '""'
  ),
  fc.integer({ min: 1, max: 600 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc.integer({ min: 1, max: 300 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)
)

/** A field that is absent, has the value a good token would have, or a hostile one. */
type Field = { kind: 'absent' } | { kind: 'good' } | { kind: 'hostile', text: string }
const fieldArb: fc.Arbitrary<Field> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'absent' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'good' } as const) },
  { weight: 3, arbitrary: hostileText.map((text) => ({ kind: 'hostile', text }) as const) }
)

const headerFields = ['alg', 'enc', 'kid', 'typ'] as const
const claimFields = ['iat', 'exp', 'auth_time', 'sid', 'sub', 'tc', 'jti'] as const
type Fields = Record<(typeof headerFields)[number] | (typeof claimFields)[number], Field>
const fieldNames = [...headerFields, ...claimFields]
const allGood = Object.fromEntries(fieldNames.map((name) => [name, { kind: 'good' }])) as Fields
// Mostly a good token with one to three fields changed, so each hostile value meets otherwise valid ones.
const fieldsArb: fc.Arbitrary<Fields> = fc.oneof(
  fc.record(Object.fromEntries(fieldNames.map((name) => [name, fieldArb])) as Record<keyof Fields, fc.Arbitrary<Field>>),
  fc.dictionary(fc.constantFrom(...fieldNames), fieldArb, { minKeys: 1, maxKeys: 3 }).map((changed) => ({ ...allGood, ...changed })),
  fc.dictionary(fc.constantFrom(...fieldNames), fieldArb, { minKeys: 1, maxKeys: 3 }).map((changed) => ({ ...allGood, ...changed }))
)

interface Setup {
  name: string
  /** How the app makes tokens: signed (JWS), or with `encrypt: true` encrypted (JWE, dir and A256GCM). */
  format: 'signed' | 'encrypted'
  options: Partial<TokenCookieOptions>
  alg: string
  kid: string | undefined
  /** The signing key (for encrypted setups, the secret whose derived key encrypts). */
  key: SigningKey
}

function goodText (name: keyof Fields, setup: Setup, now: number): string | undefined {
  const good: Record<keyof Fields, unknown> = {
    alg: setup.alg,
    enc: setup.format === 'encrypted' ? 'A256GCM' : undefined,
    kid: setup.kid,
    typ: 'JWT',
    iat: now,
    exp: now + 1800,
    auth_time: now,
    sid: 'a-session-id',
    sub: 'alice',
    tc: { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200 },
    jti: 'a-token-id'
  }
  return good[name] === undefined ? undefined : JSON.stringify(good[name])
}

function objectText (names: ReadonlyArray<keyof Fields>, fields: Fields, setup: Setup, now: number): string {
  const members: string[] = []
  for (const name of names) {
    const field = fields[name]
    const text = field.kind === 'absent' ? undefined : field.kind === 'good' ? goodText(name, setup, now) : field.text
    if (text !== undefined) members.push(`${JSON.stringify(name)}:${text}`)
  }
  return `{${members.join(',')}}`
}

/** A token with the given fields, signed (or encrypted) with the app's own key: its signature (or tag) is good. */
function tokenOf (fields: Fields, setup: Setup, now: number): string {
  const header = objectText(headerFields, fields, setup, now)
  const claims = objectText(claimFields, fields, setup, now)
  if (setup.format === 'encrypted') return craftJwe({ header: raw(header), plaintext: raw(claims), key: jweKeyOf(setup.key as string) })
  const input = `${b64url(header)}.${b64url(claims)}`
  return `${input}.${signInput(input, setup.alg, setup.key)}`
}

/** The value of a field as the plugin parses it: `undefined` when absent. */
function valueOf (field: Field, name: keyof Fields, setup: Setup, now: number): unknown {
  if (field.kind === 'absent') return undefined
  const text = field.kind === 'good' ? goodText(name, setup, now) : field.text
  return text === undefined ? undefined : JSON.parse(text)
}

/**
 * Whether the plugin may accept it: the header names our key (a single secret's encrypted tokens have no kid, its
 * signed ones may have any), the times are numbers, its own claims well-typed.
 */
function acceptable (fields: Fields, setup: Setup, now: number): boolean {
  const value = (name: keyof Fields): unknown => valueOf(fields[name], name, setup, now)
  const isString = (name: keyof Fields): boolean => typeof value(name) === 'string' && value(name) !== ''
  const encrypted = setup.format === 'encrypted'
  const kidNamesKey = setup.kid === undefined ? !encrypted || value('kid') === undefined : value('kid') === setup.kid
  return value('alg') === setup.alg && kidNamesKey && (!encrypted || value('enc') === 'A256GCM') &&
    (['iat', 'exp', 'auth_time'] as const).every((name) => Number.isFinite(value(name))) &&
    (['sid', 'jti'] as const).every((name) => fields[name].kind === 'absent' || isString(name)) &&
    fields.tc.kind !== 'hostile'
}

function problemsOf (response: LightMyRequestResponse, route: string, source: string, expectClear: boolean): string[] {
  const problems: string[] = []
  const { statusCode } = response
  if (statusCode >= 500 || statusCode === 400) problems.push(`${statusCode} ${response.body}`)
  if (statusCode === 401 && !rejectionCodes.includes(response.json().code)) problems.push(`401 with code ${response.json().code}`)
  if (route === '/public' && statusCode !== 200) problems.push(`public route answered ${statusCode}`)
  const cleared = tokenCookieOf(response)?.attributes['max-age'] === '0'
  if (source === 'cookie' && cleared !== expectClear) problems.push(expectClear ? 'refused cookie not cleared' : 'cookie cleared')
  if (source === 'header' && tokenCookieOf(response) !== undefined) problems.push('a header token touched the cookie')
  return problems
}

async function exchange (app: FastifyInstance, token: string, source: 'cookie' | 'header', route: string): Promise<LightMyRequestResponse> {
  const headers = source === 'cookie' ? { cookie: `token=${token}` } : { authorization: `Bearer ${token}` }
  return await app.inject({ url: route, headers })
}

const rsa = pemKeys('rsa')
const keyList = [{ kid: 'k2', secret: otherSecret }, { kid: 'k1', secret }]
const setups: Setup[] = [
  { name: 'one secret', format: 'signed', options: {}, alg: 'HS256', kid: undefined, key: secret },
  { name: 'a key list', format: 'signed', options: { secret: keyList }, alg: 'HS256', kid: 'k1', key: secret },
  { name: 'an RSA key', format: 'signed', options: { secret: rsa }, alg: 'RS256', kid: undefined, key: rsa.private },
  { name: 'one secret, encrypted', format: 'encrypted', options: { encrypt: true }, alg: 'dir', kid: undefined, key: secret },
  { name: 'a key list, encrypted', format: 'encrypted', options: { encrypt: true, secret: keyList }, alg: 'dir', kid: 'k1', key: secret }
]

for (const setup of setups) {
  test(`token values of any JSON type, ${setup.name}: 401 or 200, never a 5xx or a 400`, async (t) => {
    fakeClock(t)
    const app = await buildApp(t, { ...setup.options, bearer: true, renewAfter: 1 })
    const now = nowSeconds()
    let accepted = 0
    await fc.assert(fc.asyncProperty(fieldsArb, async (fields) => {
      const token = tokenOf(fields, setup, now)
      const problems: string[] = []
      for (const source of ['cookie', 'header'] as const) {
        const protectedResponse = await exchange(app, token, source, '/private')
        const refused = protectedResponse.statusCode === 401
        if (!refused) accepted++
        if (!refused && !acceptable(fields, setup, now)) problems.push(`${source}: accepted with a malformed field`)
        problems.push(...problemsOf(protectedResponse, '/private', source, refused))
        problems.push(...problemsOf(await exchange(app, token, source, '/public'), '/public', source, refused))
      }
      if (problems.length > 0) throw new Error(`${token}\n${problems.join('\n')}`)
    }), { seed, numRuns: fuzzRuns(150), endOnFailure: true })
    t.ok(accepted > 0, `some generated tokens were good (${accepted} accepted): the property reached the accepting path`)
  })
}

test('the tokens of the security review: a 401, never a 500, on public and protected routes alike', async (t) => {
  fakeClock(t)
  const setup = setups[0]
  const app = await buildApp(t, { bearer: true })
  const now = nowSeconds()
  const good = allGood
  for (const alg of ['{"toString":1}', '{"toString":{}}', '[{"toString":1}]', '{"valueOf":1,"toString":1}']) {
    const token = tokenOf({ ...good, alg: { kind: 'hostile', text: alg } }, setup, now)
    for (const source of ['cookie', 'header'] as const) {
      const refused = await exchange(app, token, source, '/private')
      t.equal(refused.statusCode, 401, `alg ${alg} by ${source}: 401`)
      t.equal(refused.json().code, 'FST_TOKEN_COOKIE_INVALID')
      t.match(refused.json().message, /algorithm an? (object|array) is not HS256/, 'the message names the type, not the value')
      t.equal((await exchange(app, token, source, '/public')).statusCode, 200, `alg ${alg} by ${source}: the public route works`)
    }
  }
  const keyList = await buildApp(t, { secret: [{ kid: 'k1', secret }] })
  const kidToken = tokenOf({ ...good, kid: { kind: 'hostile', text: '{"toString":1}' } }, { ...setup, kid: 'k1' }, now)
  const response = await exchange(keyList, kidToken, 'cookie', '/private')
  t.match(response.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_INVALID', message: /no key for kid an object/ })
})
