// Tokens too long for one cookie, split over chunk cookies `token.0`, `token.1`, …: the reading rules (examples and
// a property over random cookie sets), the lines the writer sends for every token size, and the plugin's requests
// from login to logout.
import fastifyCookie from '@fastify/cookie'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { test, type Test } from 'tap'
import { createCookieWriter } from '../lib/cookie.js'
import type { ResolvedCookieAttributes } from '../lib/options.js'
import type { Lifetime } from '../lib/policy.js'
import { noCookies, plainCookie, readCookie, type CarriedCookies } from '../lib/request-token.js'
import tokenCookie from '../index.js'
import { claimsOf, fakeClock, secret } from './helpers/app.js'
import { signSegments, timeClaims } from './helpers/craft.js'
import { asLines, buildChunkApp, effects, Jar, largestPad, parseSetCookie, tokenIn } from './helpers/chunks.js'
import { fuzzRuns, fuzzSeed } from './helpers/fuzz.js'

const INVALID = 'FST_TOKEN_COOKIE_INVALID'
const carried = (plain: boolean, chunks: number[]): CarriedCookies => ({ plain, chunks })

// ---------------------------------------------------------------------------------------------------------
// Reading

test('reading: chunks make the token only when the token cookie is absent', async (t) => {
  t.same(readCookie('token.0=ab; token.1=cd', 'token', 3), { kind: 'token', source: 'cookie', token: 'abcd', carried: carried(false, [0, 1]) }, 'in order')
  t.same(readCookie('token.2=ef; token.0=ab; token.1=cd', 'token', 3), { kind: 'token', source: 'cookie', token: 'abcdef', carried: carried(false, [0, 1, 2]) }, 'in any order')
  t.same(readCookie('token.0=ab', 'token', 3), { kind: 'token', source: 'cookie', token: 'ab', carried: carried(false, [0]) }, 'one chunk')
  t.same(readCookie('token.0="ab"; token.1=c%64', 'token', 3), { kind: 'token', source: 'cookie', token: 'abcd', carried: carried(false, [0, 1]) }, 'quoted and percent-encoded values, as for the token cookie')
  t.same(readCookie('token=plain; token.0=ab; token.1=cd', 'token', 3), { kind: 'token', source: 'cookie', token: 'plain', carried: carried(true, [0, 1]) }, 'the token cookie wins; its chunks are carried')
  t.same(readCookie('token=plain; token.1=cd', 'token', 3), { kind: 'token', source: 'cookie', token: 'plain', carried: carried(true, [1]) }, 'even beside chunks that make no token')
  t.same(readCookie('token=; token.0=ab', 'token', 3), { kind: 'token', source: 'cookie', token: 'ab', carried: carried(true, [0]) }, 'an empty token cookie is no token: the chunks are read')
  t.same(readCookie('token=a; token=b; token.0=ab', 'token', 3), { kind: 'duplicate', source: 'cookie', tokens: ['a', 'b'], carried: carried(true, [0]) }, 'the token cookie twice')
  t.same(readCookie('token=abc', 'token', 3), { kind: 'token', source: 'cookie', token: 'abc', carried: plainCookie }, 'the token cookie alone')
  t.equal(readCookie('token=', 'token', 3), undefined, 'an empty token cookie alone: no token')
  t.equal(readCookie('other=1; token.exp=e=1&a=2; token.10=x; token.01=x; token.x=1; tokens.0=x; xtoken.0=x', 'token', 10), undefined,
    'the expiry hint and other names are no chunks')
  t.equal(readCookie('session=1', 'token', 3), undefined, 'a header without the name')
  t.equal(readCookie(undefined, 'token', 3), undefined, 'no Cookie header')
})

test('reading: chunk sets that make no token are malformed, and say what the request carried', async (t) => {
  const cases: Array<[string, string, number[], RegExp]> = [
    ['gap', 'token.0=ab; token.2=ef', [0, 2], /missing/],
    ['no first chunk', 'token.1=cd; token.2=ef', [1, 2], /missing/],
    ['a chunk twice', 'token.0=ab; token.1=cd; token.0=ab', [0, 1], /more than once/],
    ['a chunk past maxChunks', 'token.0=ab; token.1=cd; token.2=ef; token.3=gh', [0, 1, 2, 3], /more than 3 chunk cookies/],
    ['only a chunk past maxChunks', 'token.9=x', [9], /more than 3/],
    ['an empty chunk', 'token.0=ab; token.1=', [0, 1], /empty/],
    ['a quoted empty chunk', 'token.0=""; token.1=cd', [0, 1], /empty/]
  ]
  for (const [label, header, chunks, reason] of cases) {
    const found = readCookie(header, 'token', 3)
    t.match(found, { kind: 'malformed', source: 'cookie', reason, carried: { plain: false, chunks } }, label)
  }
})

test('reading with maxChunks 1: chunk cookies are not read, nor counted as carried', async (t) => {
  t.equal(readCookie('token.0=ab; token.1=cd', 'token', 1), undefined)
  t.same(readCookie('token=plain; token.0=ab', 'token', 1), { kind: 'token', source: 'cookie', token: 'plain', carried: plainCookie })
  t.same(readCookie('token=a; token=b', 'token'), { kind: 'duplicate', source: 'cookie', tokens: ['a', 'b'], carried: plainCookie }, 'maxChunks 1 by default')
})

// The reading rule, written from the documentation: `<name>` decides when present and not empty (twice: duplicate);
// else the names `<name>.0` to `<name>.9` must be `.0` to `.k-1`, k <= maxChunks, each once and not empty.
type Expected =
  | { kind: 'none' }
  | { kind: 'token', token: string }
  | { kind: 'duplicate' }
  | { kind: 'malformed' }

const unquoted = (value: string): string => {
  const bare = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  try {
    return decodeURIComponent(bare)
  } catch {
    return bare
  }
}

function expectedReading (pairs: Array<[string, string]>, maxChunks: number): { expected: Expected, carried: CarriedCookies } {
  const plain = pairs.filter(([name]) => name === 'token').map(([, value]) => value)
  const chunkPairs = maxChunks === 1 ? [] : pairs.filter(([name]) => /^token\.[0-9]$/.test(name))
  const indexes = [...new Set(chunkPairs.map(([name]) => Number(name.slice(6))))].sort((a, b) => a - b)
  const carriedCookies = { plain: plain.length > 0, chunks: indexes }
  if (plain.length > 1) return { expected: { kind: 'duplicate' }, carried: carriedCookies }
  if (plain.length === 1 && plain[0] !== '' && plain[0] !== '""') return { expected: { kind: 'token', token: unquoted(plain[0]) }, carried: carriedCookies }
  if (indexes.length === 0) return { expected: { kind: 'none' }, carried: carriedCookies }
  const values = indexes.map((index) => chunkPairs.filter(([name]) => name === `token.${index}`).map(([, value]) => unquoted(value)))
  const valid = indexes.every((index, position) => index === position) && indexes.length <= maxChunks &&
    values.every((each) => each.length === 1 && each[0] !== '')
  return { expected: valid ? { kind: 'token', token: values.map(([value]) => value).join('') } : { kind: 'malformed' }, carried: carriedCookies }
}

const cookieNameArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant('token') },
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 9 }).map((index) => `token.${index}`) },
  { weight: 1, arbitrary: fc.constantFrom('token.exp', 'token.10', 'token.01', 'token.a', 'tokens', 'other', 'xtoken.0') }
)
const cookieValueArb = fc.oneof(
  fc.constantFrom('', '""', '"q"', 'a%62', '%zz'),
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/)
)
const pairsArb = fc.array(fc.tuple(cookieNameArb, cookieValueArb), { maxLength: 8 })

test('property: readCookie follows the reading rule for random cookie sets', async (t) => {
  fc.assert(fc.property(pairsArb, fc.integer({ min: 1, max: 10 }), (pairs, maxChunks) => {
    const header = pairs.map(([name, value]) => `${name}=${value}`).join('; ')
    const { expected, carried: carriedCookies } = expectedReading(pairs, maxChunks)
    const found = readCookie(header, 'token', maxChunks)
    if (expected.kind === 'none') return found === undefined
    if (found === undefined || found.kind !== expected.kind) return false
    if (found.kind === 'token' && expected.kind === 'token' && found.token !== expected.token) return false
    return JSON.stringify(found.carried) === JSON.stringify(carriedCookies)
  }), { numRuns: fuzzRuns(3000), seed: fuzzSeed(20310101) })
  t.pass('the reading rule held for every cookie set')
})

test('property: through the app, a chunked token authenticates only as the rule says; every refusal clears exactly what was carried', async (t) => {
  fakeClock(t)
  const app = await buildChunkApp(t, { maxChunks: 3, expiryHint: true })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { pad: 4000 } })
  const jar = new Jar()
  jar.apply(asLines(login.headers['set-cookie']))
  const token = tokenIn(jar) as string
  t.same(jar.names(), ['token.0', 'token.1', 'token.exp'], 'the token is in two chunks')
  // Values: garbage, or a piece of the real token, so that some sets put it back together and some almost do.
  const third = Math.ceil(token.length / 3)
  const pieces = [token, token.slice(0, third), token.slice(third, 2 * third), token.slice(2 * third), jar.cookies.get('token.0') as string,
    jar.cookies.get('token.1') as string, token.slice(0, -1)]
  const valueArb = fc.oneof(cookieValueArb, fc.constantFrom(...pieces))
  const requestArb = fc.array(fc.tuple(cookieNameArb, valueArb), { maxLength: 6 })
  await fc.assert(fc.asyncProperty(requestArb, async (pairs) => {
    const header = pairs.map(([name, value]) => `${name}=${value}`).join('; ')
    const { expected, carried: carriedCookies } = expectedReading(pairs, 3)
    const response = await app.inject({ method: 'GET', url: '/me', headers: { cookie: header } })
    const { set, cleared } = effects(asLines(response.headers['set-cookie']))
    if (set.length > 0) return false
    if (expected.kind === 'none') return response.statusCode === 401 && response.json().code === 'FST_TOKEN_COOKIE_MISSING' && cleared.length === 0
    if (expected.kind === 'token' && expected.token === token) return response.statusCode === 200 && cleared.length === 0
    const carriedNames = [...(carriedCookies.plain ? ['token'] : []), ...carriedCookies.chunks.map((index) => `token.${index}`), 'token.exp']
    return response.statusCode === 401 && response.json().code === INVALID && JSON.stringify(cleared.sort()) === JSON.stringify(carriedNames.sort())
  }), { numRuns: fuzzRuns(400), seed: fuzzSeed(20310102) })
  t.pass('every request was answered as the rule says')
})

// ---------------------------------------------------------------------------------------------------------
// Writing

type Serialize = (name: string, value: string, options: Record<string, unknown>) => string
const sliding: Lifetime = { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200, sessionCookie: false }
const session: Lifetime = { ...sliding, policy: 'session' }
const claims = { iat: 1_900_000_000, exp: 1_900_001_800, auth_time: 1_899_990_000 }
const over = (protocol: 'http' | 'https'): FastifyRequest => ({ protocol, hostname: 'localhost' }) as FastifyRequest
const tokenOfLength = (length: number): string => 'abcdefghijklmnopqrstuvwxyz0123456789-_.'.repeat(Math.ceil(length / 39)).slice(0, length)

async function serializer (t: Test): Promise<Serialize> {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.ready()
  t.teardown(() => app.close())
  return app.serializeCookie as Serialize
}

/** What the serializer writes after `name=value` with these attributes: `; Max-Age=…; Domain=…; Path=…`, … */
function suffixOf (serialize: Serialize, attributes: ResolvedCookieAttributes, secure: boolean, maxAge: object): string {
  return serialize('x', '', { ...attributes, secure, ...maxAge }).slice('x='.length)
}

/**
 * What is wrong with the lines written for `token`, if anything: each must be at most 4096 bytes and be what the
 * serializer writes for its name (every attribute, the lifetime), the chunks must put the token back together and
 * differ in length by one at most, and a chunked token clears the token cookie. `longest` is the suffix with Secure.
 */
function problemOf (name: string, suffix: string, longest: string, cleared: string, token: string, lines: string[]): string | undefined {
  if (lines.some((line) => Buffer.byteLength(line) > 4096)) return 'a line over 4096 bytes'
  if (name.length + 1 + token.length + longest.length <= 4096) return lines.length === 1 && lines[0] === `${name}=${token}${suffix}` ? undefined : 'not one cookie'
  const parts = lines.slice(0, -1).map((line) => parseSetCookie(line).value)
  if (lines.some((line, index) => line !== (index === parts.length ? cleared : `${name}.${index}=${parts[index]}${suffix}`))) return 'not the serializer\'s lines'
  if (parts.join('') !== token) return 'the chunks do not make the token'
  const lengths = parts.map((part) => part.length)
  return Math.max(...lengths) - Math.min(...lengths) <= 1 ? undefined : 'uneven chunks'
}

test('writer: every Set-Cookie line is at most 4096 bytes, for every token size up to the limit, with each attribute set', async (t) => {
  const serialize = await serializer(t)
  const combinations: Array<[string, ResolvedCookieAttributes, string]> = [
    ['defaults', { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }, 'token'],
    ['Secure, Domain, a long Path, partitioned, priority', {
      httpOnly: true, secure: true, sameSite: 'none', path: `/${'p'.repeat(300)}`, domain: 'app.example.com', partitioned: true, priority: 'high'
    }, 'token'],
    ['secure: auto', { httpOnly: true, secure: 'auto', sameSite: 'strict', path: '/api' }, 'token'],
    ['a __Host- name', { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }, '__Host-session']
  ]
  for (const [label, attributes, name] of combinations) {
    for (const lifetime of [sliding, session]) {
      const writer = createCookieWriter(name, attributes, { expiryHint: false, maxChunks: 3 }, serialize, () => {})
      const maxAge = lifetime.policy === 'session' ? {} : { maxAge: 1800 }
      const overHttp = attributes.secure === true
      const suffixes = { https: suffixOf(serialize, attributes, true, maxAge), http: suffixOf(serialize, attributes, overHttp, maxAge) }
      const clearing = {
        https: serialize(name, '', { ...attributes, secure: true, maxAge: 0, expires: new Date(0) }),
        http: serialize(name, '', { ...attributes, secure: overHttp, maxAge: 0, expires: new Date(0) })
      }
      const problems: string[] = []
      let length = 1
      for (; ; length++) {
        const token = tokenOfLength(length)
        let lines: string[]
        try {
          lines = writer.set(over('https'), token, lifetime, claims, noCookies)
        } catch (error) {
          t.match(error, { code: 'FST_TOKEN_COOKIE_TOO_LARGE' }, `${label}, ${lifetime.policy}: past ${length - 1} characters, TOO_LARGE`)
          break
        }
        const overHttp = writer.set(over('http'), token, lifetime, claims, noCookies)
        const problem = problemOf(name, suffixes.https, suffixes.https, clearing.https, token, lines) ??
          problemOf(name, suffixes.http, suffixes.https, clearing.http, token, overHttp)
        if (problem !== undefined) problems.push(`a token of ${length}: ${problem}`)
      }
      t.same(problems.slice(0, 3), [], `${label}, ${lifetime.policy}: every line fits, with the attributes, for tokens of 1 to ${length - 1} characters`)
      // The largest token fills the three lines: one character more would not fit.
      const lines = writer.set(over('https'), tokenOfLength(length - 1), lifetime, claims, noCookies)
      t.equal(lines.length, 4, 'three chunks, and the token cookie cleared')
      t.ok(lines.slice(0, 3).some((line) => Buffer.byteLength(line) === 4096), `${label}: a chunk is full (${lines.map((line) => line.length).join(', ')} bytes)`)
    }
  }
})

test('writer: the token cookies a request carried are replaced or cleared, with the expiry hint written once', async (t) => {
  const serialize = await serializer(t)
  const attributes: ResolvedCookieAttributes = { httpOnly: true, secure: true, sameSite: 'lax', path: '/app', domain: 'example.com' }
  const writer = createCookieWriter('token', attributes, { expiryHint: true, maxChunks: 3 }, serialize, () => {})
  const names = (lines: readonly string[]): Array<[string, string]> => lines.map((line) => {
    const { name, value } = parseSetCookie(line)
    return [name, value === '' ? 'cleared' : 'set']
  })
  const small = tokenOfLength(100)
  const large = tokenOfLength(7000)
  t.same(names(writer.set(over('https'), small, sliding, claims, carried(true, [0, 1, 2]))),
    [['token', 'set'], ['token.exp', 'set'], ['token.0', 'cleared'], ['token.1', 'cleared'], ['token.2', 'cleared']], 'in one cookie: every chunk carried cleared')
  t.same(names(writer.set(over('https'), large, sliding, claims, carried(false, [0, 1, 2]))),
    [['token.0', 'set'], ['token.1', 'set'], ['token.exp', 'set'], ['token.2', 'cleared'], ['token', 'cleared']], 'in two chunks: the third carried cleared, and the token cookie')
  t.same(names(writer.set(over('https'), large, sliding, claims, noCookies)),
    [['token.0', 'set'], ['token.1', 'set'], ['token.exp', 'set'], ['token', 'cleared']], 'the token cookie is cleared even when not carried')
  t.same(names(writer.set(over('https'), small, sliding, claims, carried(true, [9]))), [['token', 'set'], ['token.exp', 'set'], ['token.9', 'cleared']],
    'a chunk name past maxChunks is cleared too')
  const cleared = { ...attributes, maxAge: 0, expires: new Date(0) }
  const hint = serialize('token.exp', '', { ...cleared, httpOnly: false })
  t.same(writer.clear(over('https'), carried(true, [0, 2])), [serialize('token', '', cleared), serialize('token.0', '', cleared), serialize('token.2', '', cleared), hint],
    'clear: each cookie carried, with its Path and Domain, and the hint')
  t.same(writer.clear(over('https'), carried(false, [1])), [serialize('token.1', '', cleared), hint], 'clear: not the token cookie when it was not carried')
  t.same(writer.clear(over('https'), plainCookie), [serialize('token', '', cleared), hint])
  t.same(writer.clear(over('https'), noCookies), [hint], 'nothing carried: the hint alone')
})

test('writer with maxChunks 1: a token over one cookie is TOO_LARGE, and chunk names are never written or cleared', async (t) => {
  const serialize = await serializer(t)
  const writer = createCookieWriter('token', { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }, { expiryHint: false, maxChunks: 1 }, serialize, () => {})
  t.throws(() => writer.set(over('https'), tokenOfLength(4096), sliding, claims, plainCookie), { code: 'FST_TOKEN_COOKIE_TOO_LARGE', message: /would be \d+ bytes/ })
  t.same(writer.set(over('https'), 'abc', sliding, claims, plainCookie).map((line) => parseSetCookie(line).name), ['token'])
  const long = createCookieWriter('n'.repeat(4080), { httpOnly: true, secure: true, sameSite: 'lax', path: '/' }, { expiryHint: false, maxChunks: 10 }, serialize, () => {})
  t.throws(() => long.set(over('https'), 'abc', sliding, claims, noCookies), { code: 'FST_TOKEN_COOKIE_TOO_LARGE' }, 'a name that leaves no room for a chunk')
})

// ---------------------------------------------------------------------------------------------------------
// The plugin, login to logout

async function exchange (app: FastifyInstance, jar: Jar, method: 'GET' | 'POST', url: string, payload?: object) {
  const response = await app.inject({ method, url, headers: { cookie: jar.header() }, ...(payload === undefined ? {} : { payload }) })
  const lines = asLines(response.headers['set-cookie'])
  jar.apply(lines)
  return { response, lines, ...effects(lines) }
}

test('a chunked login, renewals, updates that change the chunk count, and a logout that leaves nothing behind', async (t) => {
  const clock = fakeClock(t)
  const app = await buildChunkApp(t, { maxChunks: 3, maxAge: '10m', expiryHint: true, store: true })
  const jar = new Jar()
  const login = await exchange(app, jar, 'POST', '/login', { pad: 4000 })
  t.same(login.set, ['token.0', 'token.1', 'token.exp'], 'a token past one cookie: two chunks and the hint')
  t.same(login.cleared, ['token'], 'and the token cookie cleared')
  for (const line of login.lines.filter((line) => /^token\.\d=/.test(line))) {
    t.ok(Buffer.byteLength(line) <= 4096, 'each line at most 4096 bytes')
    t.match(parseSetCookie(line).attributes, { 'max-age': '600', path: '/', httponly: true, secure: true, samesite: 'Lax' }, 'the cookie\'s attributes and lifetime')
  }
  const first = tokenIn(jar) as string
  t.ok(first.length > 4096, `a token of ${first.length} bytes, longer than one cookie holds`)

  const me = await exchange(app, jar, 'GET', '/me')
  t.equal(me.response.statusCode, 200, 'the chunks authenticate')
  t.same(me.lines, [], 'nothing written before the renewal is due')
  const sid = me.response.json().sid

  clock.tick(301_000)
  const renewed = await exchange(app, jar, 'GET', '/me')
  t.same(renewed.set, ['token.0', 'token.1', 'token.exp'], 'the renewal is chunked too')
  t.same(renewed.cleared, ['token'])
  t.not(tokenIn(jar), first, 'a new token')
  t.equal(claimsOf(tokenIn(jar) as string).sid, sid, 'same session')

  const grown = await exchange(app, jar, 'POST', '/update', { pad: 7000 })
  t.same(grown.set, ['token.0', 'token.1', 'token.2', 'token.exp'], 'claims that grow: three chunks')
  const shrunk = await exchange(app, jar, 'POST', '/update', { pad: 10 })
  t.same([shrunk.set, shrunk.cleared], [['token', 'token.exp'], ['token.0', 'token.1', 'token.2']], 'claims that shrink to one cookie: every chunk cleared')
  t.same(jar.names(), ['token', 'token.exp'])
  const regrown = await exchange(app, jar, 'POST', '/update', { pad: 4000 })
  t.same([regrown.set, regrown.cleared], [['token.0', 'token.1', 'token.exp'], ['token']], 'back to two chunks: the token cookie cleared')
  t.same(jar.names(), ['token.0', 'token.1', 'token.exp'])
  t.equal((await exchange(app, jar, 'GET', '/me')).response.json().pad, 4000)

  const stolen = jar.header()
  const logout = await exchange(app, jar, 'POST', '/logout')
  t.same(logout.cleared.sort(), ['token', 'token.0', 'token.1', 'token.exp'], 'logout clears the token cookie, each chunk carried, the hint')
  t.same(jar.names(), [], 'no cookie left behind')
  const replay = await app.inject({ method: 'GET', url: '/me', headers: { cookie: stolen } })
  t.match(replay.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_REVOKED' }, 'the chunked token\'s session is revoked')
})

test('past maxChunks, a login is TOO_LARGE; the incoming limit is maxChunks × 4096 bytes', async (t) => {
  const app = await buildChunkApp(t, { maxChunks: 2 })
  const largest = await largestPad(app)
  const jar = new Jar()
  await exchange(app, jar, 'POST', '/login', { pad: largest })
  t.same(jar.names(), ['token.0', 'token.1'], 'the largest token: two chunks')
  const tooLarge = await app.inject({ method: 'POST', url: '/login', payload: { pad: largest + 3 } })
  t.match(tooLarge.json(), { statusCode: 500, code: 'FST_TOKEN_COOKIE_TOO_LARGE' })
  t.equal((await exchange(app, jar, 'GET', '/me')).response.statusCode, 200)

  const token = tokenIn(jar) as string
  const padded = `${token}${'A'.repeat(8192 - token.length + 1)}`
  const refused = await app.inject({ method: 'GET', url: '/me', headers: { cookie: `token.0=${padded.slice(0, 4100)}; token.1=${padded.slice(4100)}` } })
  t.match(refused.json(), { code: INVALID, message: /longer than 8192 bytes/ }, 'over 2 × 4096: INVALID before decoding')
  t.same(effects(asLines(refused.headers['set-cookie'])).cleared.sort(), ['token.0', 'token.1'], 'and cleared')
})

test('maxChunks 1 (the default): chunk cookies are neither read nor cleared', async (t) => {
  const chunked = await buildChunkApp(t, { maxChunks: 3 })
  const jar = new Jar()
  await exchange(chunked, jar, 'POST', '/login', { pad: 5000 })
  const app = await buildChunkApp(t, {})
  const me = await app.inject({ method: 'GET', url: '/me', headers: { cookie: jar.header() } })
  t.match(me.json(), { statusCode: 401, code: 'FST_TOKEN_COOKIE_MISSING' }, 'chunks are not a token')
  t.same(asLines(me.headers['set-cookie']), [], 'nor cleared')
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: jar.header() } })
  t.same(effects(asLines(logout.headers['set-cookie'])).cleared, ['token'], 'a logout clears the token cookie alone')
  t.match((await app.inject({ method: 'POST', url: '/login', payload: { pad: 5000 } })).json(), { code: 'FST_TOKEN_COOKIE_TOO_LARGE' })
})

test('a request with a Bearer token: a login still clears the chunk cookies it carried', async (t) => {
  for (const maxChunks of [1, 3]) {
    const app = await buildChunkApp(t, { maxChunks, bearer: true })
    const small = await app.inject({ method: 'POST', url: '/login', payload: { pad: 10 } })
    const bearer = parseSetCookie(asLines(small.headers['set-cookie'])[0]).value
    const login = await app.inject({ method: 'POST', url: '/login', payload: { pad: 10 }, headers: { authorization: `Bearer ${bearer}`, cookie: 'token.0=a; token.1=b' } })
    t.same(effects(asLines(login.headers['set-cookie'])), { set: ['token'], cleared: maxChunks === 1 ? [] : ['token.0', 'token.1'] }, `maxChunks ${maxChunks}`)
    const logout = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${bearer}`, cookie: 'token.1=b' } })
    t.same(effects(asLines(logout.headers['set-cookie'])).cleared, maxChunks === 1 ? ['token'] : ['token', 'token.1'], `maxChunks ${maxChunks}: logout`)
  }
})

for (const maxChunks of [0, 11, 1.5, -1, Number.NaN, '3', null]) {
  test(`maxChunks ${String(maxChunks)} fails registration`, async (t) => {
    await t.rejects(buildChunkApp(t, { maxChunks: maxChunks as number }), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /maxChunks must be an integer from 1 to 10/ })
  })
}

test('maxChunks 10 registers, and a misspelling names it', async (t) => {
  const app = await buildChunkApp(t, { maxChunks: 10 })
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { pad: 28000 } })).statusCode, 200, 'a token of some 37 KB in ten cookies')
  await t.rejects(buildChunkApp(t, { maxchunks: 3 } as object), { code: 'FST_TOKEN_COOKIE_OPTIONS', message: /did you mean maxChunks\?/ })
})

test('a chunked token nested deeper than the stack: verified, copied for request.user, its renewal skipped, never a 500', async (t) => {
  fakeClock(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, maxChunks: 10, bearer: true, renewAfter: 0, sessionCookie: false })
  app.get('/sub', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => {
    let depth = 0
    const user = request.user as { sub: string, deep: unknown }
    for (let level = user.deep; Array.isArray(level); level = level[0]) depth++
    return { sub: user.sub, depth }
  })
  // `[[…]]` 14,000 levels deep: a 37 KB token, under the 40 KB limit of 10 chunks, and past JSON.stringify's stack.
  const levels = 14_000
  const claims = JSON.stringify({ sub: 'deep', sid: 's', ...timeClaims(), tc: { policy: 'sliding', maxAge: 1800, absoluteMaxAge: 43200 } })
  const payload = `${claims.slice(0, -1)},"deep":${'['.repeat(levels)}${']'.repeat(levels)}}`
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')
  const token = signSegments(header, Buffer.from(payload).toString('base64url'), 'HS256', secret)
  t.ok(token.length > 4096 * 9 && token.length <= 4096 * 10, `a token of ${token.length} bytes`)
  const bearer = await app.inject({ url: '/sub', headers: { authorization: `Bearer ${token}` } })
  t.equal(bearer.statusCode, 200)
  t.same(bearer.json(), { sub: 'deep', depth: levels })
  const size = Math.ceil(token.length / 10)
  const cookie = Array.from({ length: 10 }, (_, index) => `token.${index}=${token.slice(index * size, (index + 1) * size)}`).join('; ')
  const chunked = await app.inject({ url: '/sub', headers: { cookie } })
  t.equal(chunked.statusCode, 200, 'by chunked cookies too')
  t.same(chunked.json(), { sub: 'deep', depth: levels })
  t.notOk(chunked.headers['set-cookie'], 'the renewal (renewAfter: 0) could not be signed, and is not sent: the cookies stay valid')
})
