// A small app around the plugin, as a user would write it, plus a fake clock for time-dependent tests.
import { generateKeyPairSync } from 'node:crypto'
import FakeTimers from '@sinonjs/fake-timers'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import tokenCookie, { type LoginOptions, type TokenCookieOptions } from '../../index.js'

export const secret = 'a-test-secret-of-at-least-32-bytes!'
export const start = Date.UTC(2030, 0, 1)

/** Freezes `Date` at `start`; advance it with `clock.tick(ms)`. */
export function fakeClock (t: Test, now = start): ReturnType<typeof FakeTimers.install> {
  const clock = FakeTimers.install({ now, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  return clock
}

export async function buildApp (t: Test, options: Partial<TokenCookieOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, ...options })
  app.post<{ Body: { login?: LoginOptions, payload?: Record<string, unknown> } | undefined }>('/login', async (request, reply) => {
    const token = await reply.setTokenCookie(request.body?.payload ?? { sub: 'alice' }, request.body?.login)
    return { access_token: token }
  })
  app.get('/private', { preHandler: async (request) => { await request.verifyToken() } }, async (request) => request.user)
  app.get('/public', async () => ({ ok: true }))
  app.get('/poll', { config: { tokenCookie: { renew: false } }, preHandler: async (request) => { await request.verifyToken() } }, async () => ({ ok: true }))
  app.post('/logout', async (request, reply) => {
    reply.clearTokenCookie()
    return { ok: true }
  })
  return app
}

export interface SetCookie {
  name: string
  value: string
  attributes: Record<string, string | true>
}

/** The Set-Cookie headers of a response, parsed. */
export function setCookies (response: LightMyRequestResponse): SetCookie[] {
  const header = response.headers['set-cookie']
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return lines.map(parseSetCookie)
}

/** One Set-Cookie line: its name, value and attributes (names in lower case; `true` for a flag). */
export function parseSetCookie (line: string): SetCookie {
  const [pair, ...rest] = line.split('; ')
  const equals = pair.indexOf('=')
  const attributes: Record<string, string | true> = {}
  for (const attribute of rest) {
    const at = attribute.indexOf('=')
    if (at === -1) attributes[attribute.toLowerCase()] = true
    else attributes[attribute.slice(0, at).toLowerCase()] = attribute.slice(at + 1)
  }
  return { name: pair.slice(0, equals), value: pair.slice(equals + 1), attributes }
}

/** Asserts that registering the plugin with `options` fails with FST_TOKEN_COOKIE_OPTIONS and `message`. */
export async function rejectsRegistration (t: Test, options: unknown, message: RegExp): Promise<void> {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(tokenCookie, options as TokenCookieOptions)
    await app.ready()
  }, { code: 'FST_TOKEN_COOKIE_OPTIONS', message })
}

/** The token cookie a response sets, if any. */
export function tokenCookieOf (response: LightMyRequestResponse, name = 'token'): SetCookie | undefined {
  return setCookies(response).find((cookie) => cookie.name === name)
}

export async function login (app: FastifyInstance, body?: { login?: LoginOptions, payload?: Record<string, unknown> }): Promise<{ cookie: string, token: string, response: LightMyRequestResponse }> {
  const response = await app.inject({ method: 'POST', url: '/login', ...(body ? { payload: body } : {}) })
  const set = tokenCookieOf(response)
  if (response.statusCode !== 200 || set === undefined) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return { cookie: `token=${set.value}`, token: set.value, response }
}

/** The decoded payload of a token, without verifying it. */
export function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
}

/** A PEM key pair, as `secret: { private, public }` takes it. */
export function pemKeys (type: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'x25519', namedCurve?: string): { private: string, public: string } {
  const encoding = { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }
  const options = type.startsWith('rsa') ? { modulusLength: 2048, ...encoding } : { namedCurve, ...encoding }
  // One call for every key type: node's overloads want a literal type each.
  const keys = generateKeyPairSync(type as 'rsa', options as never) as unknown as { privateKey: string, publicKey: string }
  return { private: keys.privateKey, public: keys.publicKey }
}
