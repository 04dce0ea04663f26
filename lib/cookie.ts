// Cookie attributes of the token cookie, and the only place that writes it.
import type { FastifyReply } from 'fastify'
import { TokenTooLargeError } from './errors.js'
import type { ResolvedCookieAttributes } from './options.js'
import { cookieMaxAge, type Lifetime } from './policy.js'

/** RFC 6265 §6.1: browsers keep a cookie (name, value and attributes) of at most 4096 bytes. */
export const maxSetCookieBytes = 4096

type SerializeCookie = (name: string, value: string, options: Record<string, unknown>) => string

export interface CookieWriter {
  /** Sets the token cookie for a token issued at `iat`; throws `FST_TOKEN_COOKIE_TOO_LARGE` past 4096 bytes. */
  set: (reply: FastifyReply, token: string, lifetime: Lifetime, iat: number, exp: number) => void
  /** Expires the cookie with the Path and Domain it was set with. */
  clear: (reply: FastifyReply) => void
}

export function createCookieWriter (name: string, attributes: ResolvedCookieAttributes, serialize: SerializeCookie): CookieWriter {
  // Every attribute spelt out, so an app's own @fastify/cookie `parseOptions` (signed, domain…) never leaks in.
  const base = {
    httpOnly: attributes.httpOnly,
    secure: attributes.secure,
    sameSite: attributes.sameSite,
    path: attributes.path,
    domain: attributes.domain,
    partitioned: attributes.partitioned,
    priority: attributes.priority,
    signed: false,
    expires: undefined,
    maxAge: undefined
  }
  return {
    set (reply, token, lifetime, iat, exp) {
      const options = { ...base, maxAge: cookieMaxAge(lifetime, exp, iat) }
      // 'auto' may add `; Secure`: count it.
      const bytes = Buffer.byteLength(serialize(name, token, { ...options, secure: options.secure !== false }))
      if (bytes > maxSetCookieBytes) throw new TokenTooLargeError(bytes)
      reply.setCookie(name, token, options)
    },
    clear (reply) {
      reply.clearCookie(name, base)
    }
  }
}
