// Cookie attributes of the token cookie, and the only place that writes it.
import type { FastifyReply } from 'fastify'
import { TokenTooLargeError } from './errors.js'
import type { ResolvedCookieAttributes } from './options.js'
import { absoluteExpiresAt, cookieMaxAge, type Lifetime, type TimeClaims } from './policy.js'

/** RFC 6265 §6.1: browsers keep a cookie (name, value and attributes) of at most 4096 bytes. */
export const maxSetCookieBytes = 4096

type SerializeCookie = (name: string, value: string, options: Record<string, unknown>) => string

export interface CookieWriter {
  /** Sets the token cookie (and its expiry hint); throws `FST_TOKEN_COOKIE_TOO_LARGE` past 4096 bytes. */
  set: (reply: FastifyReply, token: string, lifetime: Lifetime, claims: TimeClaims) => void
  /** Expires the cookie (and its expiry hint) with the Path and Domain it was set with. */
  clear: (reply: FastifyReply) => void
}

/** The readable cookie beside the token cookie that tells scripts when the session ends. */
export function expiryHintName (cookieName: string): string {
  return `${cookieName}.exp`
}

// `e=…&a=…` goes on the wire as written, so `new URLSearchParams(value)` reads it.
const asWritten = (value: string): string => value

export function createCookieWriter (name: string, attributes: ResolvedCookieAttributes, expiryHint: boolean, serialize: SerializeCookie): CookieWriter {
  const hintName = expiryHintName(name)
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
    set (reply, token, lifetime, claims) {
      const options = { ...base, maxAge: cookieMaxAge(lifetime, claims.exp, claims.iat) }
      // 'auto' may add `; Secure`: count it.
      const bytes = Buffer.byteLength(serialize(name, token, { ...options, secure: options.secure !== false }))
      if (bytes > maxSetCookieBytes) throw new TokenTooLargeError(bytes)
      reply.setCookie(name, token, options)
      if (expiryHint) {
        const hint = `e=${claims.exp}&a=${absoluteExpiresAt(lifetime, claims)}`
        reply.setCookie(hintName, hint, { ...options, httpOnly: false, encode: asWritten })
      }
    },
    clear (reply) {
      reply.clearCookie(name, base)
      if (expiryHint) reply.clearCookie(hintName, { ...base, httpOnly: false })
    }
  }
}
