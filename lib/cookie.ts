// Cookie attributes of the token cookie, and the Set-Cookie lines that set or clear it.
import type { FastifyRequest } from 'fastify'
import { TokenTooLargeError } from './errors.js'
import type { ResolvedCookieAttributes } from './options.js'
import { absoluteExpiresAt, cookieMaxAge, type Lifetime, type TimeClaims } from './policy.js'

/** RFC 6265 §6.1: browsers keep a cookie (name, value and attributes) of at most 4096 bytes. */
export const maxSetCookieBytes = 4096

type SerializeCookie = (name: string, value: string, options: Record<string, unknown>) => string

export interface CookieWriter {
  /** The lines that set the token cookie (and its expiry hint); throws `FST_TOKEN_COOKIE_TOO_LARGE` past 4096 bytes. */
  set: (request: FastifyRequest, token: string, lifetime: Lifetime, claims: TimeClaims) => string[]
  /** The lines that expire the cookie (and its expiry hint) with the Path and Domain it was set with. */
  clear: (request: FastifyRequest) => readonly string[]
}

/** The readable cookie beside the token cookie that tells scripts when the session ends. */
export function expiryHintName (cookieName: string): string {
  return `${cookieName}.exp`
}

// `e=…&a=…` goes on the wire as written, so `new URLSearchParams(value)` reads it.
const asWritten = (value: string): string => value
const epoch = new Date(0)

/**
 * Everything but the value and Max-Age of a Set-Cookie line is the same for every response, so @fastify/cookie's
 * serializer formats it once, here, for each value `Secure` can take; a response only joins the parts:
 * `name=value; Max-Age=…` and the attributes, in the order the serializer writes them.
 */
export function createCookieWriter (
  name: string, attributes: ResolvedCookieAttributes, expiryHint: boolean, serialize: SerializeCookie, warnInsecure: (request: FastifyRequest) => void
): CookieWriter {
  const hintName = expiryHintName(name)
  const base = {
    httpOnly: attributes.httpOnly,
    sameSite: attributes.sameSite,
    path: attributes.path,
    domain: attributes.domain,
    partitioned: attributes.partitioned,
    priority: attributes.priority
  }
  const formatted = [false, true].map((secure) => {
    const options = { ...base, secure }
    const hintOptions = { ...options, httpOnly: false, encode: asWritten }
    const cleared = { maxAge: 0, expires: epoch }
    return {
      // What follows `name=value` (an empty value formats as nothing).
      attributes: serialize(name, '', options).slice(name.length + 1),
      hintAttributes: serialize(hintName, '', hintOptions).slice(hintName.length + 1),
      clear: expiryHint
        ? [serialize(name, '', { ...options, ...cleared }), serialize(hintName, '', { ...hintOptions, ...cleared })]
        : [serialize(name, '', { ...options, ...cleared })]
    }
  })
  // 'auto' writes `; Secure` over HTTPS only; the size limit counts it either way.
  const formattedFor = (request: FastifyRequest): typeof formatted[number] =>
    formatted[Number(attributes.secure === 'auto' ? request.protocol === 'https' : attributes.secure)]
  const longestAttributes = formatted[Number(attributes.secure !== false)].attributes
  let warned = false

  return {
    set (request, token, lifetime, claims) {
      const maxAge = cookieMaxAge(lifetime, claims.exp, claims.iat)
      const maxAgeAttribute = maxAge === undefined ? '' : `; Max-Age=${maxAge}`
      // Tokens are base64url and dots, and the attributes ASCII: one byte a character.
      const bytes = name.length + 1 + token.length + maxAgeAttribute.length + longestAttributes.length
      if (bytes > maxSetCookieBytes) throw new TokenTooLargeError(bytes)
      // Browsers drop a Secure cookie sent over plain http (loopback hosts aside), and say nothing: this instance does, once.
      if (!warned && attributes.secure === true && request.protocol === 'http' && !isLoopback(request.hostname)) {
        warned = true
        warnInsecure(request)
      }
      const lines = formattedFor(request)
      const cookie = `${name}=${token}${maxAgeAttribute}${lines.attributes}`
      if (!expiryHint) return [cookie]
      const hint = `e=${claims.exp}&a=${absoluteExpiresAt(lifetime, claims)}`
      return [cookie, `${hintName}=${hint}${maxAgeAttribute}${lines.hintAttributes}`]
    },
    clear: (request) => formattedFor(request).clear
  }
}

/** Hosts on which browsers keep Secure cookies over plain http. */
function isLoopback (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}
