// Property-based tests: arbitrary Cookie and Authorization headers, and tokens mutated
// from valid ones, thrown at a protected and a public route. Never a 5xx or a 400; authenticated only by a
// token the plugin issued (or its documented cookie spelling: quoted, percent-encoded); never a renewal for
// a bad token; a bad cookie is cleared, a bad Bearer header leaves the cookie alone.
// Each property runs against apps that sign their tokens and apps that encrypt them (`encrypt: true`, JWE).
// Fixed seed; FUZZ_RUNS=<n> for longer runs (`npm run fuzz`), FUZZ_SEED=<n> to explore other seeds.
import { setImmediate as nextTurn } from 'node:timers/promises'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { test } from 'tap'
import type { LoginOptions } from '../index.js'
import { buildApp, fakeClock, login, secret, setCookies, tokenCookieOf } from './helpers/app.js'
import { jweKeyOf } from './helpers/craft.js'
import {
  authorizationArb, carriesCookie, check, claimsIn, cookieHeaderArb, cookieValue, cookieValueArb, expectationsFor, fuzzRuns, fuzzSeed,
  INVALID, mutate, mutationsArb, REVOKED, type CookieStyle, type Issued, type RequestHeaders, type Route, type Target, type TokenFormat
} from './helpers/fuzz.js'

type Tap = Parameters<Parameters<typeof test>[0]>[0]

const seed = fuzzSeed(20300101)
// fast-check prints the seed, the path and the shrunk counterexample on failure; `includeErrorInReport`
// puts the failed check (request, expected answers, actual response) in the same message.
const foreignSecret = 'a-foreign-secret-of-at-least-32-bytes!'
const keys = { foreign: foreignSecret, ours: secret }

interface App extends Target {
  name: string
  app: FastifyInstance
}

/** The apps of a run: signing (the default) or encrypting. */
interface Mode {
  name: string
  encrypt: boolean
  /** Each property's runs, before FUZZ_RUNS. */
  runs: { headers: number, mutated: number, cleared: number }
}

// Fewer encrypted runs, to keep the file's time down: the arbitrary headers mostly exercise the cookie and header
// parsing both formats share, the mutated tokens the part that differs.
const modes: Mode[] = [
  { name: '', encrypt: false, runs: { headers: 1500, mutated: 1500, cleared: 1000 } },
  { name: ' (encrypt: true)', encrypt: true, runs: { headers: 500, mutated: 1200, cleared: 700 } }
]

interface Fixture {
  /** How the apps' tokens carry their claims. */
  format: TokenFormat
  /** Sliding by default, `renewAfter: 0`, revokes `sub: 'revoked'`. */
  cookieApp: App
  /** `bearer: true`, `renewAfter: 0`. Same secret: each app accepts the other's tokens. */
  bearerApp: App
  /** The oracle: every token the plugin issued, with the policy it was issued with. */
  issued: Map<string, Issued>
  tokens: string[]
  /**
   * Tokens of the same plugin with another secret, in the apps' format: never valid here. Encrypting apps get a token
   * signed with their own secret too: a JWS is never valid where tokens are encrypted.
   */
  foreign: string[]
  /** An issued sliding token that is not revoked. */
  sliding: string
  session: string
}

const authenticate = async (request: { verifyToken: () => Promise<unknown> }): Promise<void> => { await request.verifyToken() }

/** The apps of a property, built once, and the tokens they issued; the clock then moves on so renewals are due. */
async function setup (t: Tap, mode: Mode): Promise<Fixture> {
  const clock = fakeClock(t)
  const { encrypt } = mode
  const format: TokenFormat = encrypt ? { kind: 'encrypted', key: jweKeyOf(secret) } : { kind: 'signed' }
  const cookieApp = await buildApp(t, { encrypt, renewAfter: 0, isRevoked: (payload) => payload.sub === 'revoked' })
  const bearerApp = await buildApp(t, { encrypt, renewAfter: 0, bearer: true })
  const foreignApp = await buildApp(t, { encrypt, secret: foreignSecret, renewAfter: 0 })
  for (const app of [cookieApp, bearerApp]) {
    // Unsafe methods on the same routes (buildApp has GET only): for the cross-site guard to come.
    app.route({ method: ['POST', 'PUT', 'PATCH', 'DELETE'], url: '/private', preHandler: authenticate, handler: async (request) => request.user })
    app.route({ method: ['POST', 'PUT', 'PATCH', 'DELETE'], url: '/public', handler: async () => ({ ok: true }) })
  }
  const logins: Array<[FastifyInstance, Record<string, unknown>, LoginOptions?]> = [
    [cookieApp, { sub: 'alice' }],
    [cookieApp, { sub: 'bob', roles: ['admin'] }, { policy: 'session' }],
    [cookieApp, { sub: 'carol', n: 42 }, { policy: 'persistent', maxAge: '7d' }],
    [cookieApp, { sub: 'zoë ☃ 𝄞', nested: { a: [1, null, 'x'] } }, { sessionCookie: true }],
    [cookieApp, { sub: 'revoked' }],
    [bearerApp, { sub: 'dave', scope: 'read write' }],
    [bearerApp, { sub: 'erin' }, { policy: 'persistent' }]
  ]
  const issued = new Map<string, Issued>()
  for (const [app, payload, options] of logins) {
    const { token } = await login(app, { payload, ...(options ? { login: options } : {}) })
    issued.set(token, { policy: options?.policy ?? 'sliding', claims: claimsIn(token, format) })
  }
  const foreign = [(await login(foreignApp, { payload: { sub: 'alice' } })).token, (await login(foreignApp, { payload: { sub: 'mallory', roles: ['admin'] } })).token]
  if (encrypt) foreign.push((await login(await buildApp(t, { renewAfter: 0 }), { payload: { sub: 'alice' } })).token)
  clock.tick(5_000)
  const tokens = [...issued.keys()]
  return {
    format,
    cookieApp: { name: 'cookieApp', app: cookieApp, bearer: false, revoked: (claims) => claims.sub === 'revoked' },
    bearerApp: { name: 'bearerApp', app: bearerApp, bearer: true, revoked: () => false },
    issued,
    tokens,
    foreign,
    sliding: tokens[0],
    session: tokens[1]
  }
}

function headersOf (headers: RequestHeaders, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string> = {}
  for (const [name, value] of Object.entries({ ...headers, ...extra })) if (value !== undefined) all[name] = value
  return all
}

/** Sends one request and checks the response against the oracle; resolves to the response. */
async function exchange (f: Fixture, target: App, method: string, route: Route, headers: RequestHeaders, extra: Record<string, string | undefined> = {}): Promise<LightMyRequestResponse> {
  const sent = headersOf(headers, extra)
  const url = `/${route}`
  const response = await target.app.inject({ method: method as 'GET', url, headers: sent })
  const unsafe = !['GET', 'HEAD', 'OPTIONS'].includes(method)
  check({ app: target.name, method, url, headers: sent }, response, expectationsFor(headers, target, route, f.issued), {
    crossSiteAllowed: unsafe && carriesCookie(headers),
    format: f.format
  })
  return response
}

/**
 * Runs `run`, then gives the event loop a turn. inject() resolves in microtasks and leaves each response's
 * cleanup to a setImmediate: without a turn, a property's requests pile up (about 20 KB each) until it ends,
 * gigabytes for `npm run fuzz`.
 */
function settled<T extends unknown[]> (run: (...input: T) => Promise<void>): (...input: T) => Promise<void> {
  return async (...input) => {
    try {
      await run(...input)
    } finally {
      await nextTurn()
    }
  }
}

/** Fails the property with the request and the response. */
function violated (what: string, request: unknown, response: LightMyRequestResponse): never {
  throw new Error(`${what}\n  request: ${JSON.stringify(request)}\n  got: ${response.statusCode} ${response.body.slice(0, 300)} set-cookie ${JSON.stringify(response.headers['set-cookie'])}`)
}

/** Set-Cookie lines for `token` with a value: an issued or renewed token. */
function tokenWritten (response: LightMyRequestResponse): boolean {
  return setCookies(response).some((cookie) => cookie.name === 'token' && cookie.value !== '')
}

/** The properties are only as good as their oracle: the fixture behaves as the properties assume. */
async function controls (t: Tap, f: Fixture): Promise<void> {
  const alice = await f.cookieApp.app.inject({ url: '/private', headers: { cookie: `token=${f.sliding}` } })
  t.equal(alice.statusCode, 200, 'control: a valid sliding cookie authenticates')
  const renewed = tokenCookieOf(alice)?.value ?? ''
  t.ok(renewed !== '' && renewed !== f.sliding, 'control: a valid sliding cookie is renewed (renewAfter: 0, clock moved on)')
  if (renewed !== '') t.equal(claimsIn(renewed, f.format).auth_time, f.issued.get(f.sliding)!.claims.auth_time, 'control: the renewal keeps auth_time')

  const session = await f.cookieApp.app.inject({ url: '/private', headers: { cookie: `token=${f.session}` } })
  t.equal(session.statusCode, 200, 'control: a valid session cookie authenticates')
  t.equal(tokenCookieOf(session), undefined, 'control: a session token is never renewed')

  const bearer = await f.bearerApp.app.inject({ url: '/private', headers: { authorization: `Bearer ${f.sliding}` } })
  t.equal(bearer.statusCode, 200, 'control: a valid Bearer header authenticates')
  t.equal(tokenCookieOf(bearer), undefined, 'control: a Bearer token is never renewed through a cookie')

  const revoked = [...f.issued].find(([, entry]) => entry.claims.sub === 'revoked')![0]
  const rejected = await f.cookieApp.app.inject({ url: '/private', headers: { cookie: `token=${revoked}` } })
  t.equal(rejected.json().code, REVOKED, 'control: isRevoked rejects its token')
  t.equal(tokenCookieOf(rejected)?.attributes['max-age'], '0', 'control: a revoked cookie is cleared')

  for (const token of f.foreign) {
    const foreign = await f.cookieApp.app.inject({ url: '/private', headers: { cookie: `token=${token}` } })
    t.equal(foreign.json().code, INVALID, `control: a foreign token is INVALID (${token.split('.').length} segments)`)
  }

  // The oracle agrees with the plugin on every issued token, in every documented spelling, on both apps.
  for (const token of f.tokens) {
    for (const style of ['raw', 'quoted', 'percent', 'quoted-percent'] as const) {
      for (const target of [f.cookieApp, f.bearerApp]) {
        for (const route of ['private', 'public'] as const) await exchange(f, target, 'GET', route, { cookie: `a=1; token=${cookieValue(token, style)}` })
      }
    }
    await exchange(f, f.bearerApp, 'GET', 'private', { authorization: `bearer ${token}`, cookie: `token=${f.foreign[0]}` })
  }
  t.pass('control: the oracle agrees on every issued token')
}

const cookieStyles: CookieStyle[] = ['raw', 'raw', 'quoted', 'percent', 'quoted-percent', 'as-is']

for (const mode of modes) {
  test(`fuzz: arbitrary Cookie and Authorization headers${mode.name}`, async (t) => {
    const f = await setup(t, mode)
    await controls(t, f)
    const numRuns = fuzzRuns(mode.runs.headers)
    const headers = fc.record({
      cookie: fc.option(cookieHeaderArb(f.tokens), { nil: undefined, freq: 8 }),
      authorization: fc.option(authorizationArb(f.tokens), { nil: undefined, freq: 2 })
    })
    await fc.assert(fc.asyncProperty(headers, settled(async (headers) => {
      for (const target of [f.cookieApp, f.bearerApp]) {
        for (const route of ['private', 'public'] as const) await exchange(f, target, 'GET', route, headers)
      }
    })), { seed, numRuns, includeErrorInReport: true })
    t.pass(`${numRuns} runs, seed ${seed}`)
  })

  test(`fuzz: tokens mutated from valid ones${mode.name}`, async (t) => {
    const f = await setup(t, mode)
    await controls(t, f)
    const numRuns = fuzzRuns(mode.runs.mutated)
    const pool = [...f.tokens, ...f.foreign]
    const input = fc.record({
      base: fc.constantFrom(...pool),
      mutations: mutationsArb(pool, 0, f.format.kind),
      style: fc.constantFrom(...cookieStyles),
      scheme: fc.constantFrom('Bearer', 'bearer', 'BEARER'),
      // A valid cookie beside the Bearer header: the header alone decides, and a bad one does not clear it.
      besideValidCookie: fc.boolean()
    })
    await fc.assert(fc.asyncProperty(input, settled(async ({ base, mutations, style, scheme, besideValidCookie }) => {
      const token = mutate(base, mutations, keys)
      const good = f.issued.has(token)
      const asCookie = { cookie: `token=${cookieValue(token, style)}` }
      const asBearer = { authorization: `${scheme} ${token}`, cookie: besideValidCookie ? `token=${f.sliding}` : undefined }
      const sent: Array<[App, Route, RequestHeaders, boolean]> = [
        [f.cookieApp, 'private', asCookie, style !== 'as-is'],
        [f.cookieApp, 'public', asCookie, style !== 'as-is'],
        [f.bearerApp, 'private', asBearer, true],
        [f.bearerApp, 'private', asCookie, style !== 'as-is']
      ]
      for (const [target, route, headers, carriesExactly] of sent) {
        const response = await exchange(f, target, 'GET', route, headers)
        // Stated on its own, whatever the oracle: only an issued token authenticates or is renewed.
        if (!carriesExactly || good) continue
        const request = { app: target.name, route, headers, base, mutations }
        if (route === 'private' && response.statusCode === 200) violated(`authenticated by a token that was not issued: ${JSON.stringify(token)}`, request, response)
        if (tokenWritten(response)) violated(`a token cookie written for a token that was not issued: ${JSON.stringify(token)}`, request, response)
      }
    })), { seed, numRuns, includeErrorInReport: true })
    t.pass(`${numRuns} runs, seed ${seed}`)
  })

  test(`fuzz: a bad token from a cookie is cleared, from a Bearer header left alone, on every method${mode.name}`, async (t) => {
    const f = await setup(t, mode)
    const numRuns = fuzzRuns(mode.runs.cleared)
    const pool = [...f.tokens, ...f.foreign]
    const bad = fc.oneof(
      { arbitrary: fc.tuple(fc.constantFrom(...pool), mutationsArb(pool, 1, f.format.kind)).map(([base, mutations]) => mutate(base, mutations, keys)), weight: 3 },
      { arbitrary: fc.constantFrom(...f.foreign), weight: 1 },
      { arbitrary: cookieValueArb(f.tokens), weight: 2 }
    )
    const anyText = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }))
    const input = fc.record({
      token: bad,
      via: fc.constantFrom('cookie', 'cookie', 'bearer'),
      style: fc.constantFrom<CookieStyle>('raw', 'quoted', 'percent'),
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'),
      route: fc.constantFrom<Route>('private', 'public'),
      origin: fc.option(fc.oneof(fc.constantFrom('https://evil.example', 'null', 'http://localhost', 'http://localhost:80', 'https://localhost', 'http://localhost:80/', ''), anyText), { nil: undefined }),
      fetchSite: fc.option(fc.oneof(fc.constantFrom('cross-site', 'same-site', 'same-origin', 'none', ''), anyText), { nil: undefined })
    })
    await fc.assert(fc.asyncProperty(input, settled(async ({ token, via, style, method, route, origin, fetchSite }) => {
      fc.pre(token !== '' && !f.issued.has(token))
      const extra = { origin, 'sec-fetch-site': fetchSite }
      const targets: Array<[App, RequestHeaders]> = via === 'cookie'
        ? [[f.cookieApp, { cookie: `token=${cookieValue(token, style)}` }], [f.bearerApp, { cookie: `token=${cookieValue(token, style)}` }]]
        : [[f.bearerApp, { authorization: `Bearer ${token}` }]]
      for (const [target, headers] of targets) {
        const response = await exchange(f, target, method, route, headers, extra)
        const request = { app: target.name, method, route, headers, extra }
        const lines = setCookies(response).filter((cookie) => cookie.name === 'token')
        if (via === 'bearer') {
          if (lines.length > 0) violated('a bad Bearer token touched the token cookie', request, response)
        } else if (response.statusCode !== 403) {
          if (lines.length === 0 || lines.some((cookie) => cookie.value !== '' || cookie.attributes['max-age'] !== '0')) {
            violated('a bad cookie was not cleared (token=; Max-Age=0)', request, response)
          }
        }
      }
    })), { seed, numRuns, includeErrorInReport: true })
    t.pass(`${numRuns} runs, seed ${seed}`)
  })
}
