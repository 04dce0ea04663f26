// Chunked token cookies in tests: an app whose tokens grow with a `pad` claim, a cookie jar that applies Set-Cookie
// lines as a browser does, and the largest token an app writes.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import tokenCookie, { type TokenCookieOptions } from '../../index.js'
import { parseSetCookie, secret, type SetCookie as ParsedCookie } from './app.js'

/** A cookie line's name, value and attributes (lower-case names). */
export { parseSetCookie, type SetCookie as ParsedCookie } from './app.js'

/** Set-Cookie header values as lines, whatever shape the response gives them in. */
export function asLines (value: unknown): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)]
}

/** A line that expires its cookie. */
export function isClearing (cookie: ParsedCookie): boolean {
  return cookie.value === '' && cookie.attributes['max-age'] === '0'
}

/** The names a response sets (a non-empty value) and the names it expires. */
export function effects (lines: string[]): { set: string[], cleared: string[] } {
  const cookies = lines.map(parseSetCookie)
  return { set: cookies.filter((cookie) => !isClearing(cookie)).map(({ name }) => name), cleared: cookies.filter(isClearing).map(({ name }) => name) }
}

/** Cookies by name, kept as a browser keeps them: a line sets its cookie, a clearing line removes it. */
export class Jar {
  readonly cookies = new Map<string, string>()

  apply (lines: string[]): void {
    for (const cookie of lines.map(parseSetCookie)) {
      if (isClearing(cookie)) this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
  }

  /** The Cookie header a browser would send (the expiry hint left out, as the server never reads it). */
  header (): string {
    return [...this.cookies].filter(([name]) => !name.endsWith('.exp')).map(([name, value]) => `${name}=${value}`).join('; ')
  }

  names (): string[] {
    return [...this.cookies.keys()].sort()
  }
}

/** The token held by a jar: `token`, or its chunks joined. */
export function tokenIn (jar: Jar, name = 'token'): string | undefined {
  const plain = jar.cookies.get(name)
  if (plain !== undefined) return plain
  const chunks: string[] = []
  for (let index = 0; jar.cookies.has(`${name}.${index}`); index++) chunks.push(jar.cookies.get(`${name}.${index}`) as string)
  return chunks.length === 0 ? undefined : chunks.join('')
}

/**
 * The plugin with `options`, and routes: POST /login `{ pad, sub? }` (a `pad` claim of that many characters), GET /me
 * (protected: `{ sub, pad, sid }`), POST /update `{ pad }` (the session's claims, re-padded), POST /logout.
 */
export async function buildChunkApp (t: Test, options: Partial<TokenCookieOptions>, fastify: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ forceCloseConnections: true, ...fastify })
  t.teardown(() => app.close())
  await app.register(tokenCookie, { secret, ...options })
  app.post<{ Body: { pad: number, sub?: string } }>('/login', async (request, reply) => {
    await reply.setTokenCookie({ sub: request.body.sub ?? 'alice', pad: 'x'.repeat(request.body.pad) })
    return { ok: true }
  })
  app.get('/me', async (request) => {
    const user = await request.verifyToken()
    return { sub: user.sub, pad: (user.pad as string).length, sid: user.sid }
  })
  app.post<{ Body: { pad: number } }>('/update', async (request, reply) => {
    const user = await request.verifyToken()
    await reply.updateTokenCookie({ sub: user.sub, pad: 'x'.repeat(request.body.pad) })
    return { ok: true }
  })
  app.post('/logout', async (request, reply) => {
    await reply.clearTokenCookie()
    return { ok: true }
  })
  return app
}

/** The longest `pad` whose login `app` writes (a longer one is FST_TOKEN_COOKIE_TOO_LARGE): the largest token. */
export async function largestPad (app: FastifyInstance): Promise<number> {
  const fits = async (pad: number): Promise<boolean> => {
    const response = await app.inject({ method: 'POST', url: '/login', payload: { pad } })
    if (response.statusCode === 200) return true
    if (response.json().code !== 'FST_TOKEN_COOKIE_TOO_LARGE') throw new Error(`login failed: ${response.body}`)
    return false
  }
  let low = 0
  let high = 64 * 1024
  while (low < high) {
    const middle = Math.ceil((low + high) / 2)
    if (await fits(middle)) low = middle
    else high = middle - 1
  }
  return low
}
